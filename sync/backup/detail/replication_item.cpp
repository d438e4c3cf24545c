#include "sync/backup/detail/replication_item.hpp"

#include <string>

#include "diff/detail/byte_io.hpp"
#include "sync/detail/foreign_errors.hpp"
#include "sync/wire/detail/payloads.hpp"

namespace shmsession::sync::detail {

wire::detail::Frame make_item_frame(const Outgoing& item, wire::detail::FrameType type, std::uint64_t seq) {
  if (item.kind == Outgoing::Kind::Removal) return wire::detail::make_removal(seq, item.delta.session_id);
  if (type != wire::detail::FrameType::Delta && type != wire::detail::FrameType::SnapshotSession)
    throw Error(Errc::InvalidArgument, "a session delta travels in a Delta or SnapshotSession frame, not " +
                                           std::string(wire::detail::frame_type_name(type)));
  wire::detail::Frame frame{type, seq, {}};
  diff::detail::ByteWriter(frame.payload).u32(item.idle_timeout_s);
  frame.payload +=
      item.encoded.empty() ? detail::with_store_errors([&] { return diff::encode_delta(item.delta); }) : item.encoded;
  return frame;
}

Outgoing parse_item_frame(const wire::detail::Frame& frame) {
  Outgoing item;
  item.seq = frame.seq;
  if (frame.type == wire::detail::FrameType::Removal) {
    item.kind = Outgoing::Kind::Removal;
    item.delta.session_id = wire::detail::parse_removal(frame);
    return item;
  }
  if (frame.type != wire::detail::FrameType::Delta && frame.type != wire::detail::FrameType::SnapshotSession)
    throw Error(Errc::Corrupt, "expected a Delta, SnapshotSession or Removal frame, got " +
                                   std::string(wire::detail::frame_type_name(frame.type)));
  diff::detail::ByteReader reader(frame.payload, wire::detail::frame_type_name(frame.type), detail::throw_corrupt);
  item.idle_timeout_s = reader.u32("idle timeout");
  item.delta = detail::with_store_errors([&] { return diff::decode_delta(reader.rest()); });
  return item;
}

}  // namespace shmsession::sync::detail
