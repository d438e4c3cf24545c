// libFuzzer target for the agent <-> backup wire codec: FrameCodec decoding
// an untrusted byte stream fed in chunks, and the typed payload parsers on
// every frame that comes out. Only shmsession::Error may escape the library;
// any other exception, a crash, a sanitizer report, an allocation over
// -malloc_limit_mb, or a broken oracle (trap) is a finding. Input layout:
// frame_fuzz_input.hpp.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shm/error.hpp"
#include "sync/wire/frame.hpp"
#include "sync/wire/payloads.hpp"
#include "test/fuzz/frame_fuzz_input.hpp"

namespace {

using namespace shmsession;
using namespace shmsession::sync::wire;
using shmsession::fuzz::FrameMode;

// Each parser must accept only the canonical encoding: what parses must
// re-encode (without an error) to the same frame.
template <class Parse, class Make>
void check_canonical(const Frame& frame, Parse parse, Make make) {
  std::optional<decltype(parse(frame))> value;
  try {
    value = parse(frame);
  } catch (const Error&) {
    return;
  }
  if (make(*value) != frame) __builtin_trap();
}

void parse_payloads(const Frame& frame) {
  check_canonical(frame, parse_hello, make_hello);
  check_canonical(frame, parse_welcome, make_welcome);
  check_canonical(frame, parse_ack, make_ack);
  check_canonical(frame, parse_resend_session, [](const std::string& id) { return make_resend_session(id); });
  try {
    const std::string reason = parse_error(frame);
    if (reason.size() != frame.payload.size() ||
        std::any_of(reason.begin(), reason.end(), [](char c) { return c < 0x20 || c > 0x7e; }))
      __builtin_trap();
  } catch (const Error&) {
  }
}

// Feeds `stream` in chunks; every frame returned must be exactly the bytes
// it was decoded from (so the decoder cannot skip, reorder or misread).
void decode_stream(std::string_view stream, std::uint8_t chunking) {
  FrameCodec codec(fuzz::frame_fuzz_key(), fuzz::frame_fuzz_limits());
  fuzz::ChunkSizes sizes(chunking);
  std::string reencoded;
  try {
    for (std::size_t pos = 0; pos < stream.size();) {
      const std::size_t size = std::min(sizes.next(stream.size() - pos), stream.size() - pos);
      codec.feed(stream.substr(pos, size));
      pos += size;
      while (std::optional<Frame> frame = codec.next()) {
        reencoded += codec.encode(*frame);
        if (stream.substr(0, reencoded.size()) != reencoded) __builtin_trap();
        parse_payloads(*frame);
      }
    }
  } catch (const Error&) {
    return;
  }
  if (reencoded.size() + codec.buffered_bytes() != stream.size()) __builtin_trap();
}

// Encodes the records with the fuzz key into a stream.
std::string encode_records(std::string_view payload) {
  const FrameCodec codec(fuzz::frame_fuzz_key(), fuzz::frame_fuzz_limits());
  diff::detail::ByteReader reader(payload, "records");
  std::string stream;
  try {
    while (reader.remaining() >= fuzz::kRecordHeaderBytes) {
      const auto type = static_cast<FrameType>(reader.u8("type"));
      const std::uint64_t seq = reader.u64("seq");
      const std::uint16_t size = reader.u16("size");
      const std::string_view bytes = reader.bytes(std::min<std::size_t>(size, reader.remaining()), "payload");
      try {
        stream += codec.encode(Frame{type, seq, std::string(bytes)});
      } catch (const Error& e) {
        if (e.code() != Errc::InvalidArgument) __builtin_trap();
      }
    }
  } catch (const Error&) {
  }
  return stream;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < fuzz::kFramePrefixBytes) return 0;
  const std::string_view payload(reinterpret_cast<const char*>(data) + fuzz::kFramePrefixBytes,
                                 size - fuzz::kFramePrefixBytes);
  switch (static_cast<FrameMode>(data[0] % fuzz::kFrameModeCount)) {
    case FrameMode::Stream: decode_stream(payload, data[1]); break;
    case FrameMode::Records: decode_stream(encode_records(payload), data[1]); break;
  }
  return 0;
}
