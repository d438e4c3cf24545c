// frame_fuzz_seeds DIR: writes the seed corpus of frame_fuzz into DIR (which
// it empties first): streams of valid frames of every type, encoded with the
// fuzz key by the current codec, and the same frames as records, each with a
// few chunkings, so the seeds never go stale.
// Built with the project's compiler; run by CTest before frame_fuzz_smoke.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "sync/wire/frame.hpp"
#include "sync/wire/payloads.hpp"
#include "test/fuzz/frame_fuzz_input.hpp"

namespace {

using namespace shmsession;
using namespace shmsession::sync::wire;
using shmsession::fuzz::FrameMode;

struct Seeds {
  std::filesystem::path dir;
  int count = 0;

  void write(FrameMode mode, std::uint8_t chunking, const std::string& payload) {
    const std::filesystem::path file = dir / ("seed-" + std::to_string(count++));
    std::ofstream out(file, std::ios::binary);
    out.put(static_cast<char>(mode));
    out.put(static_cast<char>(chunking));
    out.write(payload.data(), static_cast<std::streamsize>(payload.size()));
    if (!out) throw std::runtime_error("cannot write " + file.string());
  }
};

// What each side sends in a session: the agent's Hello, deltas and a full
// resync; the backup's Welcome, acks, a resend request and an error.
std::vector<std::vector<Frame>> conversations() {
  StoreId store{};
  for (std::size_t i = 0; i < store.size(); ++i) store[i] = static_cast<std::uint8_t>(i * 17 + 3);
  const std::string delta = std::string("SDLT\x01\x00\x00\x00", 8) + std::string(40, 'd');
  return {
      {make_hello(Hello{kProtocolVersion, store, 10}), Frame{FrameType::Delta, 10, delta},
       Frame{FrameType::Delta, 11, delta + "more"}},
      {make_hello(Hello{kProtocolVersion, store, 1}), Frame{FrameType::SnapshotBegin, 7, {}},
       Frame{FrameType::SnapshotSession, 7, std::string(300, 's')}, Frame{FrameType::SnapshotEnd, 7, {}}},
      {make_welcome(Welcome{store, 9}), make_ack(10), make_ack(11), make_resend_session("session-42")},
      {make_welcome(Welcome{}), make_error("store id mismatch: this backup holds another store")},
  };
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: frame_fuzz_seeds DIR\n");
    return 2;
  }
  try {
    Seeds seeds{argv[1]};
    std::filesystem::remove_all(seeds.dir);
    std::filesystem::create_directories(seeds.dir);
    const FrameCodec codec(fuzz::frame_fuzz_key(), fuzz::frame_fuzz_limits());
    for (const std::vector<Frame>& frames : conversations()) {
      std::string stream;
      std::string records;
      for (const Frame& frame : frames) {
        stream += codec.encode(frame);
        fuzz::append_record(records, static_cast<std::uint8_t>(frame.type), frame.seq, frame.payload);
      }
      for (std::uint8_t chunking : {0, 1, 7, 64}) {
        seeds.write(FrameMode::Stream, chunking, stream);
        seeds.write(FrameMode::Records, chunking, records);
      }
    }
    std::printf("frame_fuzz_seeds: %d seeds in %s\n", seeds.count, seeds.dir.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "frame_fuzz_seeds: %s\n", e.what());
    return 1;
  }
}
