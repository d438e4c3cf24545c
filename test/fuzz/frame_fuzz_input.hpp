// The input layout of the frame_fuzz target, shared by the target
// (frame_fuzz.cpp, built with clang and libFuzzer) and the seed generator
// (frame_fuzz_seeds.cpp, built with the project's compiler).
//
// Byte 0 picks a mode (its value modulo kModeCount), byte 1 the chunking of
// the stream (chunk_sizes), the rest is the payload:
//   Stream:  bytes received from a client, fed as they are to a server
//            FrameCodec of the fixed key and server nonce (so a stream that
//            begins with the opening of the fixed client nonce is keyed
//            alike in every run, and its sealed frames open);
//   Records: frames the target seals itself as that client (record layout
//            below), so mutations reach the typed payload parsers behind a
//            valid seal; the opening and frames are then fed like Stream;
//   Link:    records as in Records, except that one of type kRawRecordType
//            is sent as its bytes, unsealed (garbage, a cut frame, a frame
//            of another connection); the stream goes to a StandbyLink over
//            a scratch standby store after a real opening, record by
//            record, each in chunks.
// Every frame that comes out is passed to the typed payload parsers and to
// the session payload parser (sync/backup/detail/replication_item.hpp).
//
// Thread safety: constants and pure functions only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "diff/detail/byte_io.hpp"
#include "sync/wire/detail/frame.hpp"

namespace shmsession::fuzz {

enum class FrameMode : std::uint8_t { Stream = 0, Records = 1, Link = 2 };
inline constexpr std::uint8_t kFrameModeCount = 3;
// mode byte + chunking byte.
inline constexpr std::size_t kFramePrefixBytes = 2;

// The key both sides of every run use.
inline sync::wire::Key frame_fuzz_key() {
  sync::wire::Key::Bytes bytes{};
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(0x5a ^ (i * 7));
  return sync::wire::Key(bytes);
}

// The fixed nonces of Stream and Records inputs.
inline sync::wire::detail::ConnectionNonce frame_fuzz_nonce(sync::wire::detail::Side side) {
  sync::wire::detail::ConnectionNonce nonce{};
  for (std::size_t i = 0; i < nonce.size(); ++i)
    nonce[i] = static_cast<std::uint8_t>((side == sync::wire::detail::Side::Client ? 0x11 : 0x77) + i);
  return nonce;
}

// A server of the fuzz key and fixed nonce: what Stream inputs are fed to.
inline std::unique_ptr<sync::wire::detail::FrameCodec> frame_fuzz_server(const sync::wire::FrameLimits& limits) {
  using sync::wire::detail::Side;
  return std::make_unique<sync::wire::detail::FrameCodec>(frame_fuzz_key(), Side::Server, limits,
                                                          frame_fuzz_nonce(Side::Server));
}

// A client of `key` and the fixed client nonce, keyed against a server of
// the fixed server nonce (its opening answered): it seals the frames of
// Stream seeds and Records inputs. Throws what the codec throws (a key the
// server does not hold).
inline std::unique_ptr<sync::wire::detail::FrameCodec> keyed_frame_fuzz_client(const sync::wire::FrameLimits& limits,
                                                                               const sync::wire::Key& key) {
  using sync::wire::detail::FrameCodec;
  using sync::wire::detail::Side;
  auto client = std::make_unique<FrameCodec>(key, Side::Client, limits, frame_fuzz_nonce(Side::Client));
  FrameCodec server(key, Side::Server, limits, frame_fuzz_nonce(Side::Server));
  server.feed(client->opening());
  server.next();
  client->feed(server.take_answer());
  client->next();
  return client;
}

// Small caps keep every exec fast; any allocation much above them is a bug
// (the smoke test runs with -malloc_limit_mb=64).
inline sync::wire::FrameLimits frame_fuzz_limits() { return sync::wire::FrameLimits{std::size_t{1} << 16, 512}; }

// Record: type (u8, any value), sequence (u64), payload length (u16), payload.
inline constexpr std::size_t kRecordHeaderBytes = 1 + 8 + 2;
// Link mode: a record of this type (no frame type) carries raw stream bytes.
inline constexpr std::uint8_t kRawRecordType = 0;

inline void append_record(std::string& out, std::uint8_t type, std::uint64_t seq, std::string_view payload) {
  diff::detail::ByteWriter writer(out);
  writer.u8(type);
  writer.u64(seq);
  writer.u16(static_cast<std::uint16_t>(payload.size()));
  writer.bytes(payload.substr(0, 0xffff));
}

// Chunk sizes for feeding a stream: chunking 0 feeds it whole; otherwise a
// xorshift sequence seeded by `chunking` gives sizes in 1..chunking.
class ChunkSizes {
 public:
  explicit ChunkSizes(std::uint8_t chunking) noexcept : limit_(chunking), state_(chunking * 2654435761u + 1) {}
  std::size_t next(std::size_t remaining) noexcept {
    if (limit_ == 0) return remaining;
    state_ ^= state_ << 13;
    state_ ^= state_ >> 17;
    state_ ^= state_ << 5;
    return 1 + state_ % limit_;
  }

 private:
  std::uint32_t limit_;
  std::uint32_t state_;
};

}  // namespace shmsession::fuzz
