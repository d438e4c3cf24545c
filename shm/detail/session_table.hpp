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

#include "shm/detail/segment_bounds.hpp"
#include "shm/detail/segment_format.hpp"

namespace shmsession::shm::detail {

inline constexpr std::uint64_t kInitialBuckets = 16;

std::uint64_t hash_session_id(std::string_view id) noexcept;

// Bytes of a bucket table with `buckets` heads (no lock needed).
std::uint64_t bucket_table_bytes(std::uint64_t buckets) noexcept;
// Formats fresh memory as an empty table (no lock needed).
BucketTable* init_bucket_table(void* memory, std::uint64_t buckets, std::uint32_t parity) noexcept;

inline std::string_view record_id(const SessionRecord* r) noexcept { return {r->id(), r->id_size}; }

SessionRecord* find_record(Shard& shard, std::string_view id, std::uint64_t hash) noexcept REQUIRES(shard.mutex);
void link_record(Shard& shard, SessionRecord* record) noexcept REQUIRES(shard.mutex);
void unlink_record(Shard& shard, SessionRecord* record) noexcept REQUIRES(shard.mutex);

// Whether the table is loaded past one session per bucket.
bool table_wants_growth(const Shard& shard) noexcept REQUIRES(shard.mutex);
// Rehashes every record into `fresh` (twice the buckets, other parity) and
// publishes it. Returns the old table, which the caller frees after
// unlocking; or nullptr if `fresh` no longer fits (another process grew the
// table meanwhile) or a chain of the old one is damaged (a bad link or a
// loop: the table stays as it is, for check and recover to find), in which
// case the caller frees `fresh`.
struct ShardBounds;
BucketTable* grow_table(Shard& shard, BucketTable* fresh, const ShardBounds& where) noexcept REQUIRES(shard.mutex);

// Where the records of one shard may be: inside the segment, and hashed to
// this shard (the shard of a hash is (hash >> 32) & shard_mask).
struct ShardBounds {
  SegmentBounds segment;
  std::uint32_t shard_mask = 0;
  std::uint32_t shard_index = 0;
};

// find_record for the paths that hand data out (reads, the tools): every
// link is checked as for_each_record checks it before it is followed, at
// the cost of a few comparisons per record on the chain. `damaged` is set
// when the search met a bad table, link or loop before finding the record
// (record is then nullptr).
struct CheckedFind {
  SessionRecord* record = nullptr;
  bool damaged = false;
};
CheckedFind find_record_checked(Shard& shard, const ShardBounds& where, std::string_view id,
                                std::uint64_t hash) noexcept REQUIRES(shard.mutex);

// What a walk of a shard found wrong with its links. A chain is cut at the
// first link that leaves the segment, is misaligned, or reaches something
// that is no record of this shard's bucket; the records beyond are
// unreachable through it (a rebuild looks for them, recovery.cpp).
struct ChainDamage {
  bool bad_table = false;          // the bucket table itself fails its bounds
  std::uint64_t broken_links = 0;  // chains cut at a bad link
  std::uint64_t cycles = 0;        // chains that loop back on themselves

  std::uint64_t total() const noexcept { return (bad_table ? 1 : 0) + broken_links + cycles; }
};

// Whether `r` may be read as a record: it and its id lie inside the
// segment, aligned, with the record magic and an id size in range.
bool record_fits(const SessionRecord* r, const SegmentBounds& bounds) noexcept;

// Whether the shard's current table lies inside the segment with a sane
// bucket count and parity.
bool table_fits(const BucketTable* t, const SegmentBounds& bounds) noexcept;

// How many records the chain from `first` holds before it ends, is cut at a
// bad link, or loops (Brent's cycle detection: bounded work, no memory);
// each counted record passes record_fits and belongs to `bucket`.
struct ChainLength {
  std::uint64_t records = 0;
  bool cut = false;
  bool cycle = false;
};
ChainLength measure_chain(SessionRecord* first, std::uint32_t parity, std::uint64_t bucket, std::uint64_t bucket_count,
                          const ShardBounds& where) noexcept;

// Calls visit(record) once for every record reachable from the shard's
// current table through links that pass the checks above; never follows a
// link outside the segment, never loops, and returns what it found wrong.
// Cheap enough for every walk (a few comparisons per record and a second
// pass over each chain); the hot lookup (find_record) does not pay it.
template <typename Visit>
ChainDamage for_each_record(Shard& shard, const ShardBounds& where, Visit&& visit) REQUIRES(shard.mutex) {
  ChainDamage damage;
  BucketTable* t = shard.table.get();
  if (!table_fits(t, where.segment)) {
    damage.bad_table = true;
    return damage;
  }
  const std::uint32_t p = t->parity;
  for (std::uint64_t b = 0; b < t->bucket_count; ++b) {
    SessionRecord* first = t->heads()[b].get();
    const ChainLength chain = measure_chain(first, p, b, t->bucket_count, where);
    damage.broken_links += chain.cut ? 1 : 0;
    damage.cycles += chain.cycle ? 1 : 0;
    SessionRecord* r = first;
    for (std::uint64_t i = 0; i < chain.records; ++i) {
      SessionRecord* next = r->next[p].get();  // read first: visit may retire r
      visit(r);
      r = next;
    }
  }
  return damage;
}

struct ShardRepair {
  BucketTable* abandoned_table = nullptr;  // to free after unlocking
  std::uint64_t broken_records = 0;        // records cut from their chain
};

// After the previous holder died inside the critical section: drops a
// half-built table, cuts chains at records that fail their magic checks and
// recounts the shard's statistics. The pending change-log slot is finished
// by the caller, which knows the ring.
ShardRepair repair_shard_table(Shard& shard, const ShardBounds& where) noexcept REQUIRES(shard.mutex);

}  // namespace shmsession::shm::detail
