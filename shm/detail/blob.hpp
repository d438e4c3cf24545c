// Building and reading session blobs (one immutable version of a session's
// attributes, see segment_format.md).
//
// A commit first turns the caller's CommitBatch into a PreparedBatch (names
// validated, sorted, checksummed: all outside any lock), then measures the
// merged blob, allocates it outside the lock, and builds it under the shard
// lock from the current blob.
//
// Thread safety: functions are pure over their arguments; the caller holds
// the shard lock whenever a blob reachable from a record is read.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include <boost/container/small_vector.hpp>
#include <vector>

#include "shm/detail/segment_bounds.hpp"
#include "shm/detail/segment_format.hpp"
#include "shm/session.hpp"

namespace shmsession::shm::detail {

struct PreparedOp {
  std::string_view name;
  std::string_view value;
  std::uint32_t flags = 0;
  std::uint32_t checksum = 0;  // stored_checksum of the value
  bool remove = false;
};

// Ops sorted by name, each name once.
struct PreparedBatch {
  // A request's commit puts an attribute or three: held inline, no
  // allocation per commit.
  boost::container::small_vector<PreparedOp, 4> ops;
};

// Throws: Error(InvalidArgument) for bad names, sizes or a name used twice.
PreparedBatch prepare_batch(const CommitBatch& batch);

struct MergePlan {
  std::uint64_t size = 0;  // bytes of the merged blob
  std::uint32_t attr_count = 0;
  bool changes = false;  // false: the batch leaves the session as it is
};

// Throws: Error(InvalidArgument) if the result exceeds kMaxAttributesPerSession.
MergePlan plan_merge(const BlobHeader* current, const PreparedBatch& batch);

// Writes the merged blob into `memory` (`capacity` >= plan.size bytes; a
// capacity of 4 GiB or more is recorded as 4 GiB - 1, never more than the
// block).
void build_blob(void* memory, std::uint64_t capacity, const MergePlan& plan, const BlobHeader* current,
                const PreparedBatch& batch, std::uint64_t version, std::uint64_t commit_seq);

inline const AttributeEntry* blob_entries(const BlobHeader* b) noexcept {
  return reinterpret_cast<const AttributeEntry*>(b + 1);
}
inline std::string_view entry_name(const BlobHeader* b, const AttributeEntry& e) noexcept {
  return {reinterpret_cast<const char*>(b) + e.value_offset - e.name_size, e.name_size};
}
inline std::string_view entry_value(const BlobHeader* b, const AttributeEntry& e) noexcept {
  return {reinterpret_cast<const char*>(b) + e.value_offset, static_cast<std::size_t>(e.value_size)};
}

// The sum of the value sizes (what the shard counts as payload).
// Requires: blob_fits, or a blob this process just built.
std::uint64_t blob_payload_bytes(const BlobHeader* b) noexcept;

// Whether the blob lies inside the segment and its header, entry table,
// names and values inside the blob: what must hold before any entry is
// followed. No checksum is computed.
bool blob_fits(const BlobHeader* b, const SegmentBounds& bounds) noexcept;

// blob_fits, and every value matches its checksum (what check and the
// rebuild ask of a blob they keep).
bool blob_is_sound(const BlobHeader* b, const SegmentBounds& bounds) noexcept;

// The entry of that name, or nullptr (binary search). Requires: blob_fits.
const AttributeEntry* find_entry(const BlobHeader* b, std::string_view name) noexcept;

// Copies all attributes (names empty) or the named ones of session `id`
// into `out`, reusing its buffers, after checking that the blob fits and
// that every value copied matches its checksum: damaged bytes are never
// handed out. Costs one XXH3 pass over each value copied (shmbench primary
// measures it).
// Throws: Error(Corrupt) naming the session (and the attribute whose value
// fails its checksum); `out` is then unspecified.
// Copies the attributes `names` (all if empty) out of `b` into `out`,
// verifying the blob and each copied value's checksum. An attribute that
// `known` (sorted by name) holds at its version is listed without its value
// (value_omitted). Throws: Corrupt.
void copy_attributes(const BlobHeader* b, const SegmentBounds& bounds, std::string_view id,
                     std::span<const std::string_view> names, std::vector<Attribute>& out,
                     std::span<const KnownAttribute> known = {});

// XXH3-64 of the value; an AttributeEntry keeps its low 32 bits
// (stored_checksum).
std::uint64_t value_checksum(std::string_view value) noexcept;
inline std::uint32_t stored_checksum(std::uint64_t checksum) noexcept { return static_cast<std::uint32_t>(checksum); }

}  // namespace shmsession::shm::detail
