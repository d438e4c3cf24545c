// frame_fuzz_seeds DIR: writes the seed corpus of frame_fuzz into DIR (which
// it empties first): streams of valid frames of every type (the fixed
// client's opening, then frames it seals with the fuzz key) made by the
// current codec, and the same frames as records (for the Records and Link
// modes), each with a few chunkings, so the seeds never go stale. Session payloads are real: made by make_item_frame
// from deltas. Built with the project's compiler; run by CTest before frame_fuzz_smoke.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "diff/delta.hpp"
#include "sync/backup/detail/replication_item.hpp"
#include "sync/wire/detail/frame.hpp"
#include "sync/wire/detail/payloads.hpp"
#include "test/fuzz/frame_fuzz_input.hpp"

namespace {

using namespace shmsession;
using namespace shmsession::sync::wire;
using namespace shmsession::sync::wire::detail;
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

sync::detail::Outgoing session_item(const std::string& id, std::uint64_t base, std::uint64_t version,
                                    const diff::AttributeMap& from, const diff::AttributeMap& to) {
  sync::detail::Outgoing item;
  item.delta = diff::make_delta(id, base, version, from, to);
  item.idle_timeout_s = 1800;
  return item;
}

std::string cart(int items) {
  std::string out;
  for (int i = 0; i < items; ++i) out += "item{id=" + std::to_string(1000 + i) + ",qty=" + std::to_string(i % 7) + "};";
  return out;
}

// A real agent's stream to the backup (its session payloads made by one
// ItemEncoder, as on a connection): Hello, a full resync of two sessions,
// a patch and a put, a removal, a heartbeat, then a delta on a base the
// standby lacks (it asks for the session in full) and the whole session.
std::vector<Frame> replication(const StoreId& store) {
  const diff::AttributeMap v3{{"cart", {cart(12), 0}}, {"user", {"alice", 1}}};
  diff::AttributeMap v4 = v3;
  v4["cart"].first[40] = '9';
  v4["lang"] = {"fr", 0};
  diff::AttributeMap v10 = v4;
  v10.erase("lang");
  v10["cart"].first += "item{id=2000,qty=1};";
  sync::detail::Outgoing removal;
  removal.kind = sync::detail::Outgoing::Kind::Removal;
  removal.delta.session_id = "s2";
  // One encoder, as the agent's connection has: later payloads of s1 name
  // it by its dictionary slot, and leave the idle timeout out.
  sync::detail::ItemEncoder items;
  // (A braced list is evaluated in order.)
  return {
      make_hello(Hello{kProtocolVersion, store, 5}),
      Frame{FrameType::SnapshotBegin, 5, {}},
      items.frame(session_item("s1", 0, 3, {}, v3), FrameType::SnapshotSession, 5),
      items.frame(session_item("s2", 0, 1, {}, {{"user", {"bob", 0}}}), FrameType::SnapshotSession, 5),
      Frame{FrameType::SnapshotEnd, 5, {}},
      items.frame(session_item("s1", 3, 4, v3, v4), FrameType::Delta, 7),
      items.frame(removal, FrameType::Delta, 8),
      make_heartbeat(9),
      items.frame(session_item("s1", 9, 10, v4, v10), FrameType::Delta, 10),
      items.frame(session_item("s1", 0, 10, {}, v10), FrameType::Delta, 10),
  };
}

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
      replication(store),
      {make_restore_request()},
  };
}

// Link mode only: bad input after a good start (garbage, a frame of
// another connection under another key, a frame cut short), as raw records.
std::vector<std::string> bad_link_records() {
  StoreId store{};
  store.fill(0x5c);
  const std::vector<Frame> good = replication(store);
  Key::Bytes other_bytes{};
  other_bytes.fill(0x99);
  const std::unique_ptr<FrameCodec> other = fuzz::keyed_frame_fuzz_client(fuzz::frame_fuzz_limits(), Key(other_bytes));
  const std::unique_ptr<FrameCodec> same =
      fuzz::keyed_frame_fuzz_client(fuzz::frame_fuzz_limits(), fuzz::frame_fuzz_key());
  const std::string delta = same->encode(good[5]);
  std::vector<std::string> out;
  const std::string garbage = "GET / HTTP/1.1\r\nHost: backup\r\n\r\n";
  for (const std::string& raw : {garbage, other->encode(good[5]), delta, delta.substr(0, delta.size() / 2)}) {
    std::string records;
    for (std::size_t i = 0; i < 5; ++i)
      fuzz::append_record(records, static_cast<std::uint8_t>(good[i].type), good[i].seq, good[i].payload);
    fuzz::append_record(records, fuzz::kRawRecordType, 0, raw);
    out.push_back(records);
  }
  return out;
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
    for (const std::vector<Frame>& frames : conversations()) {
      const std::unique_ptr<FrameCodec> codec =
          fuzz::keyed_frame_fuzz_client(fuzz::frame_fuzz_limits(), fuzz::frame_fuzz_key());
      std::string stream = codec->opening();
      std::string records;
      for (const Frame& frame : frames) {
        stream += codec->encode(frame);
        fuzz::append_record(records, static_cast<std::uint8_t>(frame.type), frame.seq, frame.payload);
      }
      for (std::uint8_t chunking : {0, 1, 7, 64}) {
        seeds.write(FrameMode::Stream, chunking, stream);
        seeds.write(FrameMode::Records, chunking, records);
        seeds.write(FrameMode::Link, chunking, records);
      }
    }
    for (const std::string& records : bad_link_records())
      for (std::uint8_t chunking : {0, 7}) seeds.write(FrameMode::Link, chunking, records);
    std::printf("frame_fuzz_seeds: %d seeds in %s\n", seeds.count, seeds.dir.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "frame_fuzz_seeds: %s\n", e.what());
    return 1;
  }
}
