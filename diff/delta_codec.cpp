// encode_delta / decode_delta: the frame of diff/delta_format.md.
#include <xxhash.h>

#include <algorithm>

#include "diff/delta.hpp"
#include "diff/delta_format.hpp"
#include "diff/detail/byte_io.hpp"
#include "diff/error.hpp"

namespace shmsession::diff {
namespace {

using detail::ByteReader;
using detail::ByteWriter;
using Kind = AttributeChange::Kind;

bool known_kind(std::uint8_t kind) noexcept {
  return kind >= static_cast<std::uint8_t>(Kind::Put) && kind <= static_cast<std::uint8_t>(Kind::Remove);
}

[[noreturn]] void invalid(const std::string& message) { throw RefusedInput("delta: " + message); }

void check_size(std::size_t size, std::size_t cap, std::string_view what) {
  if (size > cap)
    invalid(std::string(what) + " of " + std::to_string(size) + " bytes exceeds the limit of " + std::to_string(cap));
}

void validate_change(const AttributeChange& change, const DeltaLimits& limits) {
  if (change.name.empty()) invalid("empty attribute name");
  check_size(change.name.size(), limits.max_name_bytes, "attribute name");
  if (!known_kind(static_cast<std::uint8_t>(change.kind)))
    invalid("attribute '" + change.name + "' has an unknown change kind");
  check_size(change.bytes.size(), limits.max_value_bytes, "value of '" + change.name + "'");
  if (change.kind == Kind::Remove && (!change.bytes.empty() || change.flags != 0 || change.checksum != 0))
    invalid("removal of '" + change.name + "' carries bytes, flags or a checksum");
}

}  // namespace

std::vector<const AttributeChange*> checked_changes(const SessionDelta& delta, const DeltaLimits& limits) {
  if (delta.session_id.empty()) invalid("empty session id");
  check_size(delta.session_id.size(), limits.max_id_bytes, "session id");
  if (delta.changes.size() > limits.max_changes)
    invalid(std::to_string(delta.changes.size()) + " changes exceed the limit of " +
            std::to_string(limits.max_changes));
  std::vector<const AttributeChange*> sorted;
  sorted.reserve(delta.changes.size());
  for (const AttributeChange& change : delta.changes) {
    validate_change(change, limits);
    sorted.push_back(&change);
  }
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->name < b->name; });
  const auto same_name = [](auto* a, auto* b) { return a->name == b->name; };
  const auto same = std::adjacent_find(sorted.begin(), sorted.end(), same_name);
  if (same != sorted.end()) invalid("attribute '" + (*same)->name + "' changes twice");
  return sorted;
}

namespace {

[[noreturn]] void corrupt(const std::string& message) { throw CorruptInput("delta: " + message); }

// Checks the header and the frame checksum; returns the frame length.
std::size_t check_frame(std::string_view bytes, const DeltaLimits& limits) {
  if (bytes.size() < kDeltaMinFrameBytes)
    corrupt("truncated frame: " + std::to_string(bytes.size()) + " bytes, a frame has at least " +
            std::to_string(kDeltaMinFrameBytes));
  ByteReader header(bytes, "delta");
  if (header.u32("magic") != kDeltaMagic) corrupt("bad magic: not a session delta frame");
  const std::uint16_t version = header.u16("format version");
  if (version != kDeltaFormatVersion)
    corrupt("format version " + std::to_string(version) + " is not supported (this build reads " +
            std::to_string(kDeltaFormatVersion) + ")");
  if (header.u16("reserved") != 0) corrupt("reserved header bits are set");
  const std::uint64_t length = header.u64("frame length");
  if (length > limits.max_frame_bytes)
    corrupt("frame length " + std::to_string(length) + " exceeds the limit of " +
            std::to_string(limits.max_frame_bytes));
  if (length < kDeltaMinFrameBytes) corrupt("frame length " + std::to_string(length) + " is too small");
  if (length > bytes.size())
    corrupt("truncated frame: declares " + std::to_string(length) + " bytes, " + std::to_string(bytes.size()) +
            " received");
  if (length < bytes.size()) corrupt(std::to_string(bytes.size() - length) + " bytes follow the frame");
  const std::size_t body_end = static_cast<std::size_t>(length) - kDeltaChecksumBytes;
  if (XXH3_64bits(bytes.data(), body_end) != detail::load_u64(bytes.data() + body_end))
    corrupt("frame checksum mismatch");
  return static_cast<std::size_t>(length);
}

AttributeChange decode_change(ByteReader& reader, const DeltaLimits& limits) {
  AttributeChange change;
  change.name = reader.sized_bytes(limits.max_name_bytes, "attribute name");
  if (change.name.empty()) reader.fail("empty attribute name");
  const std::uint8_t kind = reader.u8("change kind");
  if (!known_kind(kind)) reader.fail("unknown change kind " + std::to_string(kind));
  change.kind = static_cast<Kind>(kind);
  change.flags = reader.u32("flags");
  change.checksum = reader.u64("checksum");
  change.bytes = reader.sized_bytes(limits.max_value_bytes, "value");
  if (change.kind == Kind::Remove && (!change.bytes.empty() || change.flags != 0 || change.checksum != 0))
    reader.fail("a removal carries bytes, flags or a checksum");
  return change;
}

}  // namespace

std::string encode_delta(const SessionDelta& delta, const DeltaLimits& limits) {
  const std::vector<const AttributeChange*> changes = checked_changes(delta, limits);
  std::size_t estimate = kDeltaMinFrameBytes + delta.session_id.size() + 32;
  for (const AttributeChange* change : changes) estimate += change->name.size() + change->bytes.size() + 32;
  std::string out;
  out.reserve(estimate);
  ByteWriter writer(out);
  writer.u32(kDeltaMagic);
  writer.u16(kDeltaFormatVersion);
  writer.u16(0);
  writer.u64(0);  // frame length, filled in below
  writer.sized_bytes(delta.session_id);
  writer.u64(delta.base_version);
  writer.u64(delta.new_version);
  writer.varint(changes.size());
  for (const AttributeChange* change : changes) {
    writer.sized_bytes(change->name);
    writer.u8(static_cast<std::uint8_t>(change->kind));
    writer.u32(change->flags);
    writer.u64(change->checksum);
    writer.sized_bytes(change->bytes);
  }
  check_size(out.size() + kDeltaChecksumBytes, limits.max_frame_bytes, "frame");
  detail::store_u64(out.data() + kDeltaLengthOffset, out.size() + kDeltaChecksumBytes);
  writer.u64(XXH3_64bits(out.data(), out.size()));
  return out;
}

SessionDelta decode_delta(std::string_view bytes, const DeltaLimits& limits) {
  const std::size_t length = check_frame(bytes, limits);
  ByteReader reader(bytes.substr(0, length - kDeltaChecksumBytes), "delta");
  reader.bytes(kDeltaHeaderBytes, "header");
  SessionDelta delta;
  delta.session_id = reader.sized_bytes(limits.max_id_bytes, "session id");
  if (delta.session_id.empty()) reader.fail("empty session id");
  delta.base_version = reader.u64("base version");
  delta.new_version = reader.u64("new version");
  const std::uint64_t count = reader.varint("change count");
  if (count > limits.max_changes)
    reader.fail("change count " + std::to_string(count) + " exceeds the limit of " +
                std::to_string(limits.max_changes));
  if (count > reader.remaining() / kDeltaMinChangeBytes)
    reader.fail("change count " + std::to_string(count) + " cannot fit in " + std::to_string(reader.remaining()) +
                " bytes");
  delta.changes.reserve(static_cast<std::size_t>(count));
  for (std::uint64_t i = 0; i < count; ++i) {
    delta.changes.push_back(decode_change(reader, limits));
    if (i > 0 && delta.changes[i - 1].name >= delta.changes[i].name)
      reader.fail("attribute names are not sorted and unique (change " + std::to_string(i) + ")");
  }
  if (!reader.at_end()) reader.fail(std::to_string(reader.remaining()) + " bytes follow the last change");
  return delta;
}

}  // namespace shmsession::diff
