#include "sync/wire/detail/frame.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <utility>

#include "diff/detail/byte_io.hpp"
#include "sync/detail/foreign_errors.hpp"
#include "sync/wire/detail/sodium.hpp"

namespace shmsession::sync::wire::detail {

static_assert(kFrameMacBytes == crypto_auth_hmacsha256_BYTES);
static_assert(kFrameHeaderBytes == kFrameSeqOffset + 8);

namespace {

using diff::detail::ByteReader;
using diff::detail::ByteWriter;

bool is_known_type(std::uint8_t type) noexcept { return type >= kFirstFrameType && type <= kLastFrameType; }

std::string hex(std::uint64_t value, int digits) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%0*llx", digits, static_cast<unsigned long long>(value));
  return text;
}

}  // namespace

FrameCodec::FrameCodec(const Key& key, FrameLimits limits) : key_(key), limits_(limits) {
  if (limits_.max_payload_bytes > std::numeric_limits<std::uint32_t>::max())
    throw Error(Errc::InvalidArgument, "wire frame: max_payload_bytes " + std::to_string(limits_.max_payload_bytes) +
                                           " exceeds the u32 length field");
  detail::ensure_sodium();
}

std::string FrameCodec::encode(const Frame& frame) const {
  const auto type = static_cast<std::uint8_t>(frame.type);
  if (!is_known_type(type))
    throw Error(Errc::InvalidArgument, "wire frame: cannot encode unknown frame type " + std::to_string(type));
  if (frame.payload.size() > limits_.max_payload_bytes)
    throw Error(Errc::InvalidArgument, "wire frame: " + std::string(frame_type_name(frame.type)) + " payload of " +
                                           std::to_string(frame.payload.size()) + " bytes exceeds the limit of " +
                                           std::to_string(limits_.max_payload_bytes));
  std::string out;
  out.reserve(kFrameHeaderBytes + frame.payload.size() + kFrameMacBytes);
  ByteWriter writer(out);
  writer.u32(kFrameMagic);
  writer.u8(kFrameFormatVersion);
  writer.u8(type);
  writer.u16(0);
  writer.u32(static_cast<std::uint32_t>(frame.payload.size()));
  writer.u64(frame.seq);
  writer.bytes(frame.payload);
  unsigned char mac[kFrameMacBytes];
  crypto_auth_hmacsha256(mac, reinterpret_cast<const unsigned char*>(out.data()), out.size(), key_.data());
  writer.bytes(std::string_view(reinterpret_cast<const char*>(mac), sizeof mac));
  return out;
}

void FrameCodec::feed(std::string_view bytes) {
  if (failed_) return;  // the stream is dead; keep nothing more from it
  if (start_ > 0) {
    buffer_.erase(0, start_);
    start_ = 0;
  }
  buffer_.append(bytes);
}

std::optional<Frame> FrameCodec::next() {
  if (failed_) throw *failed_;
  try {
    return next_frame();
  } catch (const Error& e) {
    failed_ = e;
    buffer_.clear();
    start_ = 0;
    throw;
  }
}

std::size_t FrameCodec::payload_cap() const noexcept {
  return frames_decoded_ == 0 ? std::min(limits_.max_first_payload_bytes, limits_.max_payload_bytes)
                              : limits_.max_payload_bytes;
}

FrameCodec::Header FrameCodec::read_header(std::string_view header, const std::string& context) const {
  ByteReader reader(header, context, sync::detail::throw_corrupt);
  const std::uint32_t magic = reader.u32("magic");
  if (magic != kFrameMagic) reader.fail("bad magic " + hex(magic, 8) + " (not a shmsession wire frame)");
  const std::uint8_t version = reader.u8("format version");
  if (version != kFrameFormatVersion)
    reader.fail("format version " + std::to_string(version) + " is not supported (this build reads " +
                std::to_string(kFrameFormatVersion) + ")");
  const std::uint8_t type = reader.u8("type");
  if (!is_known_type(type)) reader.fail("unknown frame type " + std::to_string(type));
  const std::uint16_t flags = reader.u16("flags");
  if ((flags & ~kFrameKnownFlags) != 0) reader.fail("unknown flags " + hex(flags, 4));
  const std::uint32_t length = reader.u32("payload length");
  const std::size_t cap = payload_cap();
  if (length > cap)
    reader.fail(std::string(frame_type_name(static_cast<FrameType>(type))) + " payload length " +
                std::to_string(length) + " exceeds the limit of " + std::to_string(cap) +
                (frames_decoded_ == 0 ? " for a first frame" : ""));
  return Header{static_cast<FrameType>(type), length, reader.u64("sequence")};
}

std::optional<Frame> FrameCodec::next_frame() {
  const std::string_view pending = std::string_view(buffer_).substr(start_);
  if (pending.size() < kFrameHeaderBytes) return std::nullopt;
  const std::string context = "wire frame #" + std::to_string(frames_decoded_ + 1);
  const Header header = read_header(pending.substr(0, kFrameHeaderBytes), context);
  const std::size_t body_bytes = kFrameHeaderBytes + header.payload_bytes;
  if (pending.size() < body_bytes + kFrameMacBytes) return std::nullopt;
  const auto* body = reinterpret_cast<const unsigned char*>(pending.data());
  if (crypto_auth_hmacsha256_verify(body + body_bytes, body, body_bytes, key_.data()) != 0)
    throw Error(Errc::Corrupt, context + ": " + std::string(frame_type_name(header.type)) +
                                   " MAC mismatch: wrong key or damaged frame");
  Frame frame{header.type, header.seq, std::string(pending.substr(kFrameHeaderBytes, header.payload_bytes))};
  start_ += body_bytes + kFrameMacBytes;
  ++frames_decoded_;
  return frame;
}

}  // namespace shmsession::sync::wire::detail
