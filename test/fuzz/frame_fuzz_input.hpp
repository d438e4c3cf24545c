// The input layout of the frame_fuzz target, shared by the target
// (frame_fuzz.cpp, built with clang and libFuzzer) and the seed generator
// (frame_fuzz_seeds.cpp, built with the project's compiler).
//
// Byte 0 picks a mode (its value modulo kModeCount), byte 1 the chunking of
// the stream (chunk_sizes), the rest is the payload:
//   Stream:  bytes received from a peer, fed to a FrameCodec as they are;
//   Records: frames the target encodes itself with the fixed key (record
//            layout below), so mutations reach the typed payload parsers
//            behind a valid MAC; the stream is then fed like Stream;
//   Link:    records as in Records, except that one of type kRawRecordType
//            is sent as its bytes, unencoded (garbage, a cut frame, another
//            key); the stream goes to a StandbyLink over a scratch standby
//            store, record by record, each in chunks.
// Every frame that comes out is passed to the typed payload parsers and to
// the session payload parser (sync/backup/detail/replication_item.hpp).
//
// Thread safety: constants and pure functions only.
#pragma once

#include <cstddef>
#include <cstdint>
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
