#include "sync/wire/detail/payloads.hpp"

#include <algorithm>

#include "diff/detail/byte_io.hpp"
#include "shm/session.hpp"  // kMaxSessionIdBytes
#include "sync/detail/foreign_errors.hpp"

namespace shmsession::sync::wire::detail {

namespace {

using diff::detail::ByteReader;
using diff::detail::ByteWriter;

// Checks the type and, for control frames, a zero sequence; returns a
// reader over the payload whose messages start with the frame type.
ByteReader open_payload(const Frame& frame, FrameType expected, bool zero_seq) {
  const std::string_view name = frame_type_name(expected);
  if (frame.type != expected)
    throw Error(Errc::Corrupt, std::string(name) + ": got a " + std::string(frame_type_name(frame.type)) + " frame");
  if (zero_seq && frame.seq != 0)
    throw Error(Errc::Corrupt, std::string(name) + ": sequence must be 0, got " + std::to_string(frame.seq));
  return ByteReader(frame.payload, name, sync::detail::throw_corrupt);
}

void expect_end(ByteReader& reader) {
  if (!reader.at_end()) reader.fail(std::to_string(reader.remaining()) + " trailing bytes");
}

void write_store_id(ByteWriter& writer, const StoreId& id) {
  writer.bytes(std::string_view(reinterpret_cast<const char*>(id.data()), id.size()));
}

StoreId read_store_id(ByteReader& reader) {
  const std::string_view bytes = reader.bytes(kStoreIdBytes, "store id");
  StoreId id{};
  std::copy(bytes.begin(), bytes.end(), id.begin());
  return id;
}

}  // namespace

Frame make_hello(const Hello& hello) {
  Frame frame{FrameType::Hello, 0, {}};
  ByteWriter writer(frame.payload);
  writer.u16(hello.protocol_version);
  write_store_id(writer, hello.store_id);
  writer.u64(hello.next_seq);
  writer.u64(hello.epoch);
  return frame;
}

Hello parse_hello(const Frame& frame) {
  ByteReader reader = open_payload(frame, FrameType::Hello, true);
  Hello hello;
  hello.protocol_version = reader.u16("protocol version");
  if (hello.protocol_version != kProtocolVersion)
    reader.fail("peer speaks protocol version " + std::to_string(hello.protocol_version) + ", this build speaks " +
                std::to_string(kProtocolVersion));
  hello.store_id = read_store_id(reader);
  hello.next_seq = reader.u64("next sequence");
  hello.epoch = reader.u64("epoch");
  if (hello.epoch == 0) reader.fail("epoch 0 (every store's epoch is at least 1)");
  expect_end(reader);
  return hello;
}

Frame make_welcome(const Welcome& welcome) {
  Frame frame{FrameType::Welcome, 0, {}};
  ByteWriter writer(frame.payload);
  write_store_id(writer, welcome.store_id);
  writer.u64(welcome.last_applied_seq);
  writer.u64(welcome.epoch);
  writer.u8(welcome.promoted ? kWelcomePromoted : 0);
  return frame;
}

Welcome parse_welcome(const Frame& frame) {
  ByteReader reader = open_payload(frame, FrameType::Welcome, true);
  Welcome welcome;
  welcome.store_id = read_store_id(reader);
  welcome.last_applied_seq = reader.u64("last applied sequence");
  welcome.epoch = reader.u64("epoch");
  if (welcome.epoch == 0) reader.fail("epoch 0 (every store's epoch is at least 1)");
  const std::uint8_t flags = reader.u8("flags");
  if ((flags & ~kWelcomePromoted) != 0) reader.fail("unknown flags " + std::to_string(flags));
  welcome.promoted = (flags & kWelcomePromoted) != 0;
  expect_end(reader);
  return welcome;
}

Frame make_ack(std::uint64_t applied_seq) { return Frame{FrameType::Ack, applied_seq, {}}; }

std::uint64_t parse_ack(const Frame& frame) {
  ByteReader reader = open_payload(frame, FrameType::Ack, false);
  expect_end(reader);
  return frame.seq;
}

namespace {

// ResendSession and Removal: a session id as `bytes`.
Frame make_id_frame(FrameType type, std::uint64_t seq, std::string_view session_id) {
  if (session_id.empty() || session_id.size() > kMaxSessionIdBytes)
    throw Error(Errc::InvalidArgument, std::string(frame_type_name(type)) + ": session id must be 1.." +
                                           std::to_string(kMaxSessionIdBytes) + " bytes, got " +
                                           std::to_string(session_id.size()));
  Frame frame{type, seq, {}};
  ByteWriter(frame.payload).sized_bytes(session_id);
  return frame;
}

std::string parse_id_frame(const Frame& frame, FrameType type, bool zero_seq) {
  ByteReader reader = open_payload(frame, type, zero_seq);
  const std::string_view id = reader.sized_bytes(kMaxSessionIdBytes, "session id");
  if (id.empty()) reader.fail("empty session id");
  expect_end(reader);
  return std::string(id);
}

}  // namespace

Frame make_resend_session(std::string_view session_id) {
  return make_id_frame(FrameType::ResendSession, 0, session_id);
}

std::string parse_resend_session(const Frame& frame) { return parse_id_frame(frame, FrameType::ResendSession, true); }

Frame make_removal(std::uint64_t seq, std::string_view session_id) {
  return make_id_frame(FrameType::Removal, seq, session_id);
}

std::string parse_removal(const Frame& frame) { return parse_id_frame(frame, FrameType::Removal, false); }

Frame make_restore_request() {
  Frame frame{FrameType::RestoreRequest, 0, {}};
  ByteWriter(frame.payload).u16(kProtocolVersion);
  return frame;
}

void parse_restore_request(const Frame& frame) {
  ByteReader reader = open_payload(frame, FrameType::RestoreRequest, true);
  const std::uint16_t version = reader.u16("protocol version");
  if (version != kProtocolVersion)
    reader.fail("peer speaks protocol version " + std::to_string(version) + ", this build speaks " +
                std::to_string(kProtocolVersion));
  expect_end(reader);
}

Frame make_heartbeat(std::uint64_t seq) { return Frame{FrameType::Heartbeat, seq, {}}; }

std::uint64_t parse_heartbeat(const Frame& frame) {
  ByteReader reader = open_payload(frame, FrameType::Heartbeat, false);
  expect_end(reader);
  return frame.seq;
}

Frame make_error(std::string_view reason) {
  return Frame{FrameType::Error, 0, std::string(reason.substr(0, kMaxErrorReasonBytes))};
}

std::string parse_error(const Frame& frame) {
  ByteReader reader = open_payload(frame, FrameType::Error, true);
  if (reader.remaining() > kMaxErrorReasonBytes)
    reader.fail("reason of " + std::to_string(reader.remaining()) + " bytes exceeds the limit of " +
                std::to_string(kMaxErrorReasonBytes));
  std::string reason(reader.rest());
  for (char& c : reason)
    if (c < 0x20 || c > 0x7e) c = '?';
  return reason;
}

}  // namespace shmsession::sync::wire::detail
