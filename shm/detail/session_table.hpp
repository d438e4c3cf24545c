// The session table of one shard: a chained hash table of SessionRecords in
// shared memory, built so that a process killed at any instruction inside
// the shard's critical section leaves chains a reader can walk.
//
// Crash safety: every change becomes visible through one aligned 8-byte
// pointer store (link a fully built record at a chain head; unlink by
// pointing its predecessor past it; publish a rebuilt table). A table grow
// builds the new chains on the records' other link (parity), so the old table
// stays intact until the new one is published.
//
// Thread and process safety: every function requires the shard's robust
// mutex to be held by the caller, except where noted.
#pragma once

#include <cstdint>
#include <string_view>

#include "shm/detail/segment_format.hpp"

namespace shmsession::shm::detail {

inline constexpr std::uint64_t kInitialBuckets = 16;

std::uint64_t hash_session_id(std::string_view id) noexcept;

// Bytes of a bucket table with `buckets` heads (no lock needed).
std::uint64_t bucket_table_bytes(std::uint64_t buckets) noexcept;
// Formats fresh memory as an empty table (no lock needed).
BucketTable* init_bucket_table(void* memory, std::uint64_t buckets, std::uint32_t parity) noexcept;

inline std::string_view record_id(const SessionRecord* r) noexcept { return {r->id(), r->id_size}; }

SessionRecord* find_record(Shard& shard, std::string_view id, std::uint64_t hash) noexcept;
void link_record(Shard& shard, SessionRecord* record) noexcept;
void unlink_record(Shard& shard, SessionRecord* record) noexcept;

// Whether the table is loaded past one session per bucket.
bool table_wants_growth(const Shard& shard) noexcept;
// Rehashes every record into `fresh` (twice the buckets, other parity) and
// publishes it. Returns the old table, which the caller frees after
// unlocking; or nullptr if `fresh` no longer fits (another process grew the
// table meanwhile), in which case the caller frees `fresh`.
BucketTable* grow_table(Shard& shard, BucketTable* fresh) noexcept;

// Calls visit(record) for every record of the shard's current table.
template <typename Visit>
void for_each_record(Shard& shard, Visit&& visit) {
  BucketTable* t = shard.table.get();
  std::uint32_t p = t->parity;
  for (std::uint64_t b = 0; b < t->bucket_count; ++b)
    for (SessionRecord* r = t->heads()[b].get(); r != nullptr; r = r->next[p].get()) visit(r);
}

struct ShardRepair {
  BucketTable* abandoned_table = nullptr;  // to free after unlocking
  std::uint64_t broken_records = 0;        // records cut from their chain
};

// After the previous holder died inside the critical section: drops a
// half-built table, cuts chains at records that fail their magic checks and
// recounts the shard's statistics. The pending change-log slot is finished
// by the caller, which knows the ring.
ShardRepair repair_shard_table(Shard& shard) noexcept;

}  // namespace shmsession::shm::detail
