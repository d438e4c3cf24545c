// Crash recovery by hand: check_store verifies a store and reports what it
// found; recover_store repairs it, rebuilding it into a fresh generation of
// the segment when a repair in place cannot do. shm/recovery.md says what a
// killed process leaves behind and what repairs each case; most of it is
// repaired by the next access without these (a shard whose lock holder
// died, a dead lock holder). `shmctl check` and `shmctl recover` call them.
//
// Free functions over a Store: each is one whole-store operation that keeps
// nothing between calls, so a view would add a name and nothing else.
//
// Thread safety: either may be called from any thread while other threads
// use the same Store. Cross-process safety: either may run while other
// processes use the store. A check takes each shard lock in turn (one at a
// time, bounded work). A rebuild holds every shard lock of the old
// generation while it copies; processes attached meanwhile wait for it and
// move to the new generation on their next access. A rebuilder killed at
// any point leaves the store usable (shm/recovery.md, the rebuild rows).
// fork(): as the Store.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "shm/store.hpp"

namespace shmsession {

// What check_store found. A check is an access like any other: a shard
// lock whose holder died is repaired as the next commit would repair it
// (counted in shard_repairs, not a problem). `problems` lists what the
// store cannot fix on its own access path: only recover_store (or the
// automatic rebuild on the next allocation) clears them.
struct CheckReport {
  std::uint64_t generation = 0;
  std::uint64_t sessions = 0;                  // records walked
  std::uint64_t attributes = 0;                // attribute values whose checksum was verified
  std::uint64_t damaged_sessions = 0;          // record or blob failing its magic, bounds or a checksum
  std::vector<std::string> damaged_ids;        // the first few of them
  std::uint64_t broken_links = 0;              // bucket tables and chain links failing their bounds, magic
                                               // or bucket (the records beyond are unreachable), and loops
  std::uint64_t damaged_lock_queues = 0;       // session lock states whose queue or holder slot is out of range
  std::uint64_t damaged_lock_references = 0;   // sessions whose lock-state reference is out of range, or
                                               // leads to a free slot or another session's
  std::uint64_t damaged_lock_tables = 0;       // shards whose lock-state table is inconsistent (chunks, free list,
                                               // slots neither free nor referenced)
  std::vector<std::string> lock_table_damage;  // the first few findings, one line each
  std::uint64_t lock_states = 0;               // lock states in use (referenced by a session)
  std::uint64_t shard_repairs = 0;             // shard locks this check took over from a dead holder
  std::uint64_t miscounted_shards = 0;         // shard counters that disagree with a recount
  std::uint64_t damaged_spares = 0;            // shard spare blobs claiming more bytes than their block
  std::uint64_t dead_lock_holders = 0;         // session locks held by processes that no longer run
  std::uint64_t dead_waiters = 0;              // lock waiter slots of processes that no longer run
  std::uint64_t dead_process_slots = 0;        // process slots of processes that no longer run
  bool allocator_ok = true;                    // the segment allocator's mutex and free tree are sound
  bool index_ok = true;                        // the segment's named-object index is usable
  bool moved = false;                          // this generation was replaced by a newer one
  std::uint64_t unreferenced_bytes = 0;        // allocated but reachable from no record (a killed
                                               // process's unpublished or unfreed blocks); exact only
                                               // on a quiet store; freed by a rebuild
  std::vector<std::string> problems;           // one line each

  bool clean() const noexcept { return problems.empty(); }
};

// What recover_store did.
struct RecoveryReport {
  // "none": nothing needed; "repaired": record-level fixes only (shard
  // repairs, dead holders' locks revoked, dead processes' slots freed);
  // "rebuilt": the live records were copied into a fresh generation.
  std::string action = "none";
  std::string reason;  // why it rebuilt (empty otherwise)
  std::uint64_t from_generation = 0;
  std::uint64_t to_generation = 0;
  std::uint64_t shard_repairs = 0;
  std::uint64_t locks_revoked = 0;      // dead holders' locks (and, on a rebuild, every lock)
  std::uint64_t slots_freed = 0;        // waiter and process slots of dead processes
  std::uint64_t sessions_copied = 0;    // rebuild: records verified and copied
  std::uint64_t sessions_dropped = 0;   // rebuild: records that failed verification
  std::uint64_t sessions_relinked = 0;  // rebuild: sound records found outside every chain (a broken
                                        // link cut them off), copied too (counted in sessions_copied)
  std::vector<std::string> dropped_ids;
  std::uint64_t bytes_reclaimed = 0;  // rebuild: used bytes before minus after
};

// Verifies the store: the header, every record and blob (magic, bounds,
// every value's checksum), every chain link and bucket table (bounds,
// bucket, loops), shard counters, lock and process slots whose
// owners are dead, the allocator's mutex and free tree, the named-object
// index. Repairs nothing beyond what any access repairs (a shard whose
// lock holder died). Requires: `store` is not moved-from. Throws: Io.
CheckReport check_store(const Store& store);

// Runs the recovery by hand: repairs every shard, revokes locks held by
// dead processes, frees their slots; and when the allocator or the index
// is poisoned, a record, link, lock state, lock-state reference or
// lock-state table is damaged, or `rebuild` is
// true, copies every verified live record (also those a broken link cut
// off its chain) into a fresh generation of the segment (under the
// same name and store id) that attached processes move to on their next
// access. A rebuild revokes every process lock (holders get StaleToken).
// Requires: `store` is not moved-from. Throws: SegmentFull (the new
// generation could not be built; the store is left as it was), Io.
RecoveryReport recover_store(Store& store, bool rebuild = false);

}  // namespace shmsession
