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
#include <vector>

#include "shm/detail/segment_format.hpp"
#include "shm/session.hpp"

namespace shmsession::shm::detail {

struct PreparedOp {
  std::string_view name;
  std::string_view value;
  std::uint32_t flags = 0;
  std::uint64_t checksum = 0;
  bool remove = false;
};

// Ops sorted by name, each name once.
struct PreparedBatch {
  std::vector<PreparedOp> ops;
};

// Throws: Error(InvalidArgument) for bad names, sizes or a name used twice.
PreparedBatch prepare_batch(const CommitBatch& batch);

struct MergePlan {
  std::uint64_t size = 0;        // bytes of the merged blob
  std::uint32_t attr_count = 0;
  bool changes = false;          // false: the batch leaves the session as it is
};

// Throws: Error(InvalidArgument) if the result exceeds kMaxAttributesPerSession.
MergePlan plan_merge(const BlobHeader* current, const PreparedBatch& batch);

// Writes the merged blob into `memory` (`capacity` >= plan.size bytes).
void build_blob(void* memory, std::uint64_t capacity, const MergePlan& plan, const BlobHeader* current,
                const PreparedBatch& batch, std::uint64_t version, std::uint64_t commit_seq);

inline const AttributeEntry* blob_entries(const BlobHeader* b) noexcept {
  return reinterpret_cast<const AttributeEntry*>(b + 1);
}
inline std::string_view entry_name(const BlobHeader* b, const AttributeEntry& e) noexcept {
  return {reinterpret_cast<const char*>(b) + e.name_offset, e.name_size};
}
inline std::string_view entry_value(const BlobHeader* b, const AttributeEntry& e) noexcept {
  return {reinterpret_cast<const char*>(b) + e.value_offset, static_cast<std::size_t>(e.value_size)};
}

// The entry of that name, or nullptr (binary search).
const AttributeEntry* find_entry(const BlobHeader* b, std::string_view name) noexcept;

// Copies all attributes (names empty) or the named ones into `out`,
// reusing its buffers.
void copy_attributes(const BlobHeader* b, std::span<const std::string_view> names,
                     std::vector<Attribute>& out);

// Whether the blob's header and entries are within its bounds and its
// values match their checksums.
bool blob_is_sound(const BlobHeader* b, std::uint64_t allocation_limit) noexcept;

std::uint64_t value_checksum(std::string_view value) noexcept;

}  // namespace shmsession::shm::detail
