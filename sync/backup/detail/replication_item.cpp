#include "sync/backup/detail/replication_item.hpp"

#include <algorithm>
#include <string>

#include "diff/detail/byte_io.hpp"
#include "sync/detail/foreign_errors.hpp"
#include "sync/wire/detail/payloads.hpp"

namespace shmsession::sync::detail {
namespace {

using diff::AttributeChange;
using diff::detail::ByteReader;
using diff::detail::ByteWriter;
using diff::detail::varint_size;
using Kind = AttributeChange::Kind;
using wire::detail::FrameType;

// The head byte of a session payload (wire_format.md, "Session payloads").
constexpr std::uint8_t kBaseMask = 0x03;
constexpr std::uint8_t kBaseZero = 0;      // the whole session
constexpr std::uint8_t kBasePrevious = 1;  // new version - 1
constexpr std::uint8_t kBaseGiven = 2;     // a varint follows
constexpr std::uint8_t kIdleTimeoutGiven = 0x04;
constexpr std::uint8_t kKnownHeadBits = kBaseMask | kIdleTimeoutGiven;

[[noreturn]] void invalid(const std::string& message) {
  throw Error(Errc::InvalidArgument, "session payload: " + message);
}

void check_size(std::size_t size, std::size_t cap, const std::string& what) {
  if (size > cap) invalid(what + " of " + std::to_string(size) + " bytes exceeds the limit of " + std::to_string(cap));
}

std::uint8_t base_form(const diff::SessionDelta& delta) {
  if (delta.base_version == 0) return kBaseZero;
  if (delta.base_version >= delta.new_version)
    invalid("session '" + delta.session_id + "' goes from version " + std::to_string(delta.base_version) + " to " +
            std::to_string(delta.new_version));
  return delta.base_version + 1 == delta.new_version ? kBasePrevious : kBaseGiven;
}

// The changes in payload order (by name), after checking them and the id.
std::vector<const AttributeChange*> payload_changes(const diff::SessionDelta& delta) {
  return with_store_errors([&] { return diff::checked_changes(delta); });
}

std::size_t changes_bytes(const std::vector<const AttributeChange*>& changes) {
  std::size_t n = varint_size(changes.size());
  for (const AttributeChange* c : changes) {
    n += varint_size(c->name.size()) + c->name.size() + 1;
    if (c->kind == Kind::Remove) continue;
    n += varint_size(c->flags) + varint_size(c->bytes.size()) + c->bytes.size();
    if (c->kind == Kind::Patch) n += 8;
  }
  return n;
}

void write_changes(ByteWriter& writer, const std::vector<const AttributeChange*>& changes) {
  writer.varint(changes.size());
  for (const AttributeChange* c : changes) {
    writer.sized_bytes(c->name);
    writer.u8(static_cast<std::uint8_t>(c->kind));
    if (c->kind == Kind::Remove) continue;
    writer.varint(c->flags);
    if (c->kind == Kind::Patch) writer.u64(c->checksum);
    writer.sized_bytes(c->bytes);
  }
}

Outgoing removal_item(const wire::detail::Frame& frame) {
  Outgoing item;
  item.seq = frame.seq;
  item.kind = Outgoing::Kind::Removal;
  item.delta.session_id = wire::detail::parse_removal(frame);
  return item;
}

}  // namespace

wire::detail::Frame ItemEncoder::frame(const Outgoing& item, FrameType type, std::uint64_t seq) {
  if (item.kind == Outgoing::Kind::Removal) return wire::detail::make_removal(seq, item.delta.session_id);
  if (type != FrameType::Delta && type != FrameType::SnapshotSession)
    throw Error(Errc::InvalidArgument, "a session delta travels in a Delta or SnapshotSession frame, not " +
                                           std::string(wire::detail::frame_type_name(type)));
  const diff::SessionDelta& delta = item.delta;
  const std::vector<const AttributeChange*> changes = payload_changes(delta);
  const std::uint8_t base = base_form(delta);
  const bool idle_given = idle_timeout_s_ != item.idle_timeout_s;
  const auto known = slot_of_.find(delta.session_id);

  wire::detail::Frame frame{type, seq, {}};
  ByteWriter writer(frame.payload);
  writer.u8(static_cast<std::uint8_t>(base | (idle_given ? kIdleTimeoutGiven : 0)));
  if (known != slot_of_.end()) {
    writer.varint(std::uint64_t{known->second} + 1);
  } else {
    writer.varint(0);
    writer.sized_bytes(delta.session_id);
  }
  writer.varint(delta.new_version);
  if (base == kBaseGiven) writer.varint(delta.base_version);
  if (idle_given) writer.varint(item.idle_timeout_s);
  write_changes(writer, changes);
  check_size(frame.payload.size(), diff::DeltaLimits{}.max_frame_bytes, "session '" + delta.session_id + "'");

  // The frame is made: remember what the decoder will.
  idle_timeout_s_ = item.idle_timeout_s;
  if (known == slot_of_.end()) {
    if (ids_.size() < kIdSlots) {
      ids_.push_back(delta.session_id);
    } else {
      slot_of_.erase(ids_[next_slot_]);
      ids_[next_slot_] = delta.session_id;
    }
    slot_of_[delta.session_id] = next_slot_;
    next_slot_ = (next_slot_ + 1) % kIdSlots;
  }
  return frame;
}

Outgoing ItemDecoder::item(const wire::detail::Frame& frame) {
  if (frame.type == FrameType::Removal) return removal_item(frame);
  if (frame.type != FrameType::Delta && frame.type != FrameType::SnapshotSession)
    throw Error(Errc::Corrupt, "expected a Delta, SnapshotSession or Removal frame, got " +
                                   std::string(wire::detail::frame_type_name(frame.type)));
  const diff::DeltaLimits limits;
  ByteReader reader(frame.payload, wire::detail::frame_type_name(frame.type), detail::throw_corrupt);
  Outgoing item;
  item.seq = frame.seq;
  diff::SessionDelta& delta = item.delta;

  const std::uint8_t head = reader.u8("head");
  if ((head & ~kKnownHeadBits) != 0) reader.fail("unknown head bits " + std::to_string(head));
  const std::uint8_t base = head & kBaseMask;
  if (base != kBaseZero && base != kBasePrevious && base != kBaseGiven)
    reader.fail("unknown base form " + std::to_string(base));
  const std::uint64_t reference = reader.varint_at_most(kIdSlots, "session reference");
  std::optional<std::uint32_t> slot;  // where a literal id goes
  if (reference == 0) {
    delta.session_id = std::string(reader.sized_bytes(limits.max_id_bytes, "session id"));
    if (delta.session_id.empty()) reader.fail("empty session id");
    slot = next_slot_;
  } else {
    if (reference > ids_.size())
      reader.fail("session reference " + std::to_string(reference) + " to a slot never filled");
    delta.session_id = ids_[reference - 1];
  }
  delta.new_version = reader.varint("new version");
  if (base == kBasePrevious) {
    if (delta.new_version == 0) reader.fail("new version 0 has no previous version");
    delta.base_version = delta.new_version - 1;
  } else if (base == kBaseGiven) {
    delta.base_version = reader.varint("base version");
    // Canonical: base 0 and new - 1 have their own forms.
    if (delta.base_version == 0 || delta.base_version + 1 >= delta.new_version)
      reader.fail("base version " + std::to_string(delta.base_version) + " given for new version " +
                  std::to_string(delta.new_version));
  }
  std::optional<std::uint32_t> idle = idle_timeout_s_;
  if ((head & kIdleTimeoutGiven) != 0) {
    idle = static_cast<std::uint32_t>(reader.varint_at_most(UINT32_MAX, "idle timeout"));
  }
  if (!idle) reader.fail("no idle timeout given yet on this connection");
  item.idle_timeout_s = *idle;

  const std::size_t count = reader.varint_at_most(limits.max_changes, "change count");
  // The smallest change is 3 bytes (a one-byte name and its kind): never
  // reserve more than the payload can hold.
  if (count > reader.remaining() / 3) reader.fail(std::to_string(count) + " changes cannot fit the payload");
  delta.changes.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    AttributeChange change;
    change.name = std::string(reader.sized_bytes(limits.max_name_bytes, "attribute name"));
    if (change.name.empty()) reader.fail("empty attribute name");
    if (!delta.changes.empty() && !(delta.changes.back().name < change.name))
      reader.fail("attribute '" + change.name + "' out of order");
    const std::uint8_t kind = reader.u8("change kind");
    if (kind != static_cast<std::uint8_t>(Kind::Put) && kind != static_cast<std::uint8_t>(Kind::Patch) &&
        kind != static_cast<std::uint8_t>(Kind::Remove))
      reader.fail("attribute '" + change.name + "' has unknown change kind " + std::to_string(kind));
    change.kind = static_cast<Kind>(kind);
    if (change.kind != Kind::Remove) {
      change.flags = static_cast<std::uint32_t>(reader.varint_at_most(UINT32_MAX, "attribute flags"));
      if (change.kind == Kind::Patch) change.checksum = reader.u64("value checksum");
      change.bytes = std::string(reader.sized_bytes(limits.max_value_bytes, "value"));
      if (change.kind == Kind::Put) change.checksum = diff::value_checksum(change.bytes);
    }
    delta.changes.push_back(std::move(change));
  }
  if (!reader.at_end()) reader.fail(std::to_string(reader.remaining()) + " bytes after the last change");

  // Read whole: remember what the encoder did.
  idle_timeout_s_ = idle;
  if (slot) {
    if (ids_.size() < kIdSlots)
      ids_.push_back(delta.session_id);
    else
      ids_[*slot] = delta.session_id;
    next_slot_ = (next_slot_ + 1) % kIdSlots;
  }
  return item;
}

wire::detail::Frame make_item_frame(const Outgoing& item, FrameType type, std::uint64_t seq) {
  return ItemEncoder{}.frame(item, type, seq);
}

Outgoing parse_item_frame(const wire::detail::Frame& frame) { return ItemDecoder{}.item(frame); }

std::size_t session_payload_bytes(const diff::SessionDelta& delta, std::uint32_t idle_timeout_s) {
  const std::vector<const AttributeChange*> changes = payload_changes(delta);
  const std::uint8_t base = base_form(delta);
  const std::size_t bytes =
      1 + 1 + varint_size(delta.session_id.size()) + delta.session_id.size() + varint_size(delta.new_version) +
      (base == kBaseGiven ? varint_size(delta.base_version) : 0) + varint_size(idle_timeout_s) + changes_bytes(changes);
  check_size(bytes, diff::DeltaLimits{}.max_frame_bytes, "session '" + delta.session_id + "'");
  return bytes;
}

}  // namespace shmsession::sync::detail
