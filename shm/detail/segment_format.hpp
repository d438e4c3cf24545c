// The bytes of a shmsession segment. See shm/segment_format.md for the prose.
//
// Invariant (all structures here): position independent (offset_ptr or
// offsets, fixed-width integers, lock-free atomics), standard layout, and
// only ever written under the owning shard's robust mutex unless noted.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include <boost/interprocess/offset_ptr.hpp>

#include "shm/detail/thread_annotations.hpp"

namespace shmsession::shm::detail {

namespace bip = boost::interprocess;

inline constexpr std::uint64_t kSegmentMagic = 0x31'4E'4F'49'53'53'45'53ULL;  // "SESSION1"
inline constexpr std::uint32_t kLayoutVersion = 15;
inline constexpr char kHeaderObjectName[] = "shmsession.header";

inline constexpr std::uint32_t kInitCreating = 1;
inline constexpr std::uint32_t kInitReady = 2;

// The one named object of the segment, looked up once at attach. Its layout
// never changes between layout versions, so any build can read it and
// report a mismatch.
struct SegmentHeader {
  std::uint64_t magic;
  std::uint32_t layout_version;
  std::uint32_t root_size;  // sizeof(StoreRoot) of the creating build
  std::atomic<std::uint32_t> init_state;
  std::uint32_t reserved;
  std::uint8_t store_id[16];  // random, identifies the store to a backup
  std::uint64_t created_unix_ms;
  std::uint64_t root_handle;  // segment handle (offset) of StoreRoot
};
static_assert(std::is_standard_layout_v<SegmentHeader>);
static_assert(sizeof(SegmentHeader) == 56);

// A process-shared robust pthread mutex; see robust_mutex.hpp.
struct CAPABILITY("mutex") RobustMutexStorage {
  pthread_mutex_t native;
};

// One version of a session's attributes, immutable once published.
// Layout: BlobHeader, AttributeEntry[attr_count] sorted by name, then per
// attribute its name immediately followed by its value, at the offsets
// the entries give. Sizes and offsets are 32-bit: a blob is < 4 GiB
// (plan_merge refuses more). The sum of the value sizes is not stored:
// blob_payload_bytes adds it up (a few entries; a commit walks them anyway).
struct BlobHeader {
  std::uint32_t magic;
  std::uint32_t attr_count;
  std::uint32_t size;      // total bytes of the blob
  std::uint32_t capacity;  // bytes allocated (>= size when a spare is reused)
  std::uint64_t version;
  std::uint64_t commit_seq;  // change-log sequence that published it
};
inline constexpr std::uint32_t kBlobMagic = 0x424C4F42;  // "BLOB"
static_assert(sizeof(BlobHeader) == 32);

// One attribute of a blob. Its name is the name_size bytes just before its
// value (value_offset - name_size), so no name offset is stored.
struct AttributeEntry {
  std::uint32_t value_offset;  // from the blob start
  std::uint32_t value_size;
  std::uint64_t version;
  std::uint32_t checksum;  // low 32 bits of the value's XXH3-64 (value_checksum)
  std::uint8_t name_size;  // names are at most 255 bytes (kMaxAttributeNameBytes)
  std::uint8_t reserved;
  std::uint16_t flags;  // kAttributeFlagsMask: higher bits are refused at commit
};
static_assert(sizeof(AttributeEntry) == 24);

// The process lock of one session (see shm/lock.hpp). Guarded by the shard
// mutex. Waiters are WaiterSlot indexes + 1 (0: none), chained by
// WaiterSlot::next in FIFO order.
struct LockState {
  std::uint64_t token;         // current token; 0: not held
  std::uint64_t holder_start;  // holder's process start time
  std::int32_t holder_pid;
  std::uint32_t holder_process;  // ProcessSlot index + 1 (0: none registered)
  // Times in the segment (these two, WaiterSlot::enqueued_unix_ms and
  // SessionRecord::last_access_unix_ms) are segment_ms(), CLOCK_BOOTTIME,
  // despite the names (shm/detail/clock.hpp); only creation dates and the
  // agent's status are wall-clock.
  std::uint64_t acquired_unix_ms;
  std::uint64_t release_requested_unix_ms;  // 0: nobody asked
  std::uint32_t queue_head;
  std::uint32_t queue_tail;
  std::uint32_t queue_length;
  // The waiter being linked into or unlinked from this queue (index + 1),
  // 0 otherwise: the shard repair settles where a process killed halfway
  // left it (lock_queue.hpp, repair_lock_queue).
  std::uint32_t moving_waiter;
};
static_assert(sizeof(LockState) == 56);

// A slot of a shard's lock-state table (LockTable). Guarded by the shard
// mutex. A slot is in use while a record references it (owner != 0, the
// owner's lock_owner_tag), free otherwise (owner 0, chained by next_free).
struct LockSlot {
  LockState lock;
  std::uint32_t owner;      // lock_owner_tag of the referencing record; 0: free
  std::uint32_t next_free;  // next free slot (index + 1), 0: last; only while free
};
static_assert(sizeof(LockSlot) == 64);

// Chunk c of a lock table holds kLockChunkBase << c slots; slot indexes
// (1-based) run through the chunks in order, so index -> (chunk, offset)
// is arithmetic and a chunk never moves once published.
inline constexpr std::uint32_t kLockChunkBase = 16;
inline constexpr std::uint32_t kLockChunks = 24;  // up to 16 * (2^24 - 1) slots per shard

// A shard's lock states: only a session whose lock is held, waited for or
// asked back has one (SessionRecord::lock_slot); a free lock with nobody
// waiting needs none, so a session's record carries 4 bytes for its lock
// instead of 56. Guarded by the shard mutex (not annotated: it is reached
// through StoreRoot::lock_tables, indexed like the shards).
// Invariant (restored by the repair of a shard whose locker died): every
// slot below `capacity` is either referenced by exactly one record of the
// shard (owner set) or on the free list (owner 0); free_count is the free
// list's length; chunks[0, chunk_count) are published, the others null.
struct alignas(64) LockTable {
  std::uint32_t capacity;   // slots in the published chunks
  std::uint32_t free_head;  // index + 1 of the first free slot, 0: none
  std::uint32_t free_count;
  std::uint32_t chunk_count;
  bip::offset_ptr<LockSlot> chunks[kLockChunks];
};
static_assert(std::is_standard_layout_v<LockTable>);
static_assert(sizeof(LockTable) == 256);

// A live session. The id follows the struct (id_size bytes).
// Invariant: reachable from exactly one chain of its shard's current table.
struct SessionRecord {
  std::uint32_t magic;
  std::uint16_t id_size;
  std::uint16_t reserved;
  std::uint32_t idle_timeout_s;
  std::uint32_t created_unix_s;  // wall clock, seconds (shown only, never compared)
  std::uint64_t hash;
  std::uint64_t incarnation;
  std::atomic<std::uint64_t> last_access_unix_ms;  // segment_ms(); written without the lock
  bip::offset_ptr<BlobHeader> blob;                // null: version 0, no attributes
  // Chain links, one per table parity, so a table can be rebuilt without
  // breaking the chains of the table still in use.
  bip::offset_ptr<SessionRecord> next[2];
  // The session's lock state in its shard's LockTable (index + 1); 0: none
  // (the lock is free, nobody waits, nobody asked).
  std::uint32_t lock_slot;
  std::uint32_t reserved2;

  char* id() noexcept { return reinterpret_cast<char*>(this + 1); }
  const char* id() const noexcept { return reinterpret_cast<const char*>(this + 1); }
};
inline constexpr std::uint32_t kRecordMagic = 0x53455353;  // "SESS"
static_assert(std::is_standard_layout_v<SessionRecord>);
static_assert(sizeof(SessionRecord) == 72);

// A shard's bucket array; `heads` follows the struct.
struct BucketTable {
  std::uint64_t bucket_count;  // power of two
  std::uint32_t parity;        // which SessionRecord::next link this table uses
  std::uint32_t reserved;

  bip::offset_ptr<SessionRecord>* heads() noexcept {
    return reinterpret_cast<bip::offset_ptr<SessionRecord>*>(this + 1);
  }
};
static_assert(sizeof(BucketTable) == 16);

// A change in flight, recorded so that a shard recovering from a dead holder
// can finish the lane slot the holder was writing.
struct PendingChange {
  std::atomic<std::uint64_t> seq;  // lane position; 0: none; read without the lock by the sequencer
  bip::offset_ptr<SessionRecord> record;
  std::uint32_t kind;
  std::atomic<std::uint32_t> lane;  // read without the lock by the sequencer
};

inline constexpr unsigned kShardSpares = 8;  // one cache line of offset pointers
inline constexpr std::uint32_t kMaxChangeLanes = 64;

struct alignas(64) Shard {
  RobustMutexStorage mutex;
  // 1 once a rebuild replaced this generation: read under the mutex by
  // every locked operation (same cache line), which then moves on.
  std::atomic<std::uint32_t> moved;
  std::uint32_t reserved;
  bip::offset_ptr<BucketTable> table GUARDED_BY(mutex);
  bip::offset_ptr<BucketTable> growing GUARDED_BY(mutex);  // non-null only while a table is rebuilt
  std::uint64_t sessions GUARDED_BY(mutex);
  std::uint64_t attributes GUARDED_BY(mutex);
  std::uint64_t payload_bytes GUARDED_BY(mutex);
  PendingChange pending;
  // Commits published in this shard (Store::stats adds StoreRoot::commits).
  std::uint64_t commits GUARDED_BY(mutex);
  // Changes logged in this shard: each lane entry carries its number, so
  // that the sequencer keeps one shard's entries (one session's) in the
  // order they were made, whichever lanes they were written to.
  std::uint64_t changes GUARDED_BY(mutex);
  // Retired blobs kept for the next commits of this shard that fit in
  // them, so that steady same-size updates never touch the segment
  // allocator (whose mutex every process would otherwise contend on). One
  // per CPU (modulo kShardSpares): a commit takes and leaves the spare of
  // the CPU it runs on, so the blob it writes is one this CPU itself read
  // last. With one spare per shard, half the commits of two processes
  // wrote a blob the other core had just read, and each of its lines (~20
  // for a 1 KiB attribute) had to be taken back from that core.
  bip::offset_ptr<BlobHeader> spares[kShardSpares] GUARDED_BY(mutex);
};
static_assert(std::is_standard_layout_v<Shard>);
static_assert(sizeof(Shard) == 192, "three cache lines: a shard shares none with its neighbours");

inline constexpr std::size_t kChangeIdBytes = 128;

// One change-log ring slot. `stamp` is the sequence of the entry it holds,
// kStampWriting while a writer fills it, 0 when never written. Slots start
// on cache lines: an entry of an id up to 46 bytes is written in one line,
// and consecutive entries, which processes committing at once write at the
// same time, share none.
struct alignas(64) ChangeSlot {
  std::atomic<std::uint64_t> stamp;
  std::uint64_t version;
  std::uint8_t kind;
  std::uint8_t id_size;
  char id[kChangeIdBytes];
  // In a lane slot: the shard of the change and its Shard::changes number
  // (0 in the log's slots).
  std::uint32_t shard;
  std::uint64_t shard_change;
};
inline constexpr std::uint64_t kStampWriting = ~std::uint64_t{0};
static_assert(sizeof(ChangeSlot) == 192);
static_assert(offsetof(ChangeSlot, id) + 46 == 64, "the stamp, version, kind and 46 id bytes fill the first line");

// A process waiting for a session lock. Claimed by CAS on `state`; the
// waiter sleeps on `outcome` (a futex word) until the releaser sets it.
struct WaiterSlot {
  std::atomic<std::uint32_t> state;    // generation << 1 | used (slot_in_use)
  std::atomic<std::uint32_t> outcome;  // kWaitPending / kWaitGranted / kWaitGone
  std::int32_t pid;
  std::uint32_t process;  // ProcessSlot index + 1 of the waiter (0: none)
  std::uint64_t start_time;
  std::uint64_t token;  // granted token, valid once outcome is kWaitGranted
  std::uint64_t enqueued_unix_ms;
  std::uint32_t next;    // next waiter in the session's queue (index + 1)
  std::uint32_t queued;  // 1 while linked in a queue
};
static_assert(sizeof(WaiterSlot) == 48);

// A process that may hold locks: its `requests` futex word is bumped (and
// woken) whenever a waiter asks one of its locks to be released.
struct ProcessSlot {
  std::atomic<std::uint32_t> state;  // generation << 1 | used (slot_in_use)
  std::atomic<std::uint32_t> requests;
  std::int32_t pid;
  std::uint32_t reserved;
  std::uint64_t start_time;
};
static_assert(sizeof(ProcessSlot) == 24);

inline constexpr std::uint32_t kSlotFree = 0;
inline constexpr std::uint32_t kSlotUsed = 1;
// A slot's `state` is (generation << 1 | used): a freed slot is not 0 (its
// generation counts on), so "in use" is the low bit, never a compare with
// kSlotFree.
constexpr bool slot_in_use(std::uint32_t state) noexcept { return (state & kSlotUsed) != 0; }
inline constexpr std::uint32_t kWaitPending = 0;
inline constexpr std::uint32_t kWaitGranted = 1;
inline constexpr std::uint32_t kWaitGone = 2;

// Text in an agent status copy: byte 0 is the length, the bytes follow, all
// packed into 64-bit words in memory order (so 1 + kMaxAgent*Bytes fills the
// words exactly).
inline constexpr std::size_t kAgentBackupWords = 8;  // 63 bytes of text
inline constexpr std::size_t kAgentErrorWords = 24;  // 191 bytes of text

// One copy of the replication agent's status, written under a seqlock.
// One copy of a standby's replication position (StoreRoot::replica_positions).
// The first epoch of every store (StoreRoot::failover).
inline constexpr std::uint64_t kFirstEpoch = 1;
inline constexpr std::uint64_t kPromotedBit = 1;
struct ReplicaPositionCopy {
  std::uint8_t primary_store_id[16];
  std::uint64_t applied_seq;
};

// Invariant: written only by the holder of AgentStatusBlock::claim_mutex,
// between an odd and the next even store of `generation`; every other word
// is an atomic written and read relaxed between the seqlock fences, so a
// reader copies the words and keeps the copy only if `generation` was the
// same even value before and after.
struct AgentStatusCopy {
  std::atomic<std::uint64_t> generation;  // odd while a writer fills this copy
  std::atomic<std::int32_t> pid;          // the claimant, or the last one; 0: never claimed
  std::atomic<std::uint32_t> claimed;     // 1 while `pid` holds the claim
  std::atomic<std::uint64_t> start_time;  // the claimant's process start time (liveness, as lock holders)
  std::atomic<std::uint32_t> state;       // AgentState
  // Sessions acknowledged a second while the backup was behind: the
  // agent's measured capacity (AgentStatus::shipped_per_s). Zero in stores whose
  // agents predate it (the word was reserved, zero).
  std::atomic<std::uint32_t> shipped_per_s;
  std::atomic<std::uint64_t> started_unix_ms;  // when the claim was made
  std::atomic<std::uint64_t> updated_unix_ms;
  std::atomic<std::uint64_t> connected_unix_ms;
  std::atomic<std::uint64_t> sent_seq;
  std::atomic<std::uint64_t> acked_seq;
  std::atomic<std::uint64_t> lag_ms;
  std::atomic<std::uint64_t> frames_sent;
  std::atomic<std::uint64_t> frames_per_s;
  std::atomic<std::uint64_t> wire_bytes;
  std::atomic<std::uint64_t> delta_bytes;
  std::atomic<std::uint64_t> whole_bytes;
  std::atomic<std::uint64_t> full_resyncs;
  std::atomic<std::uint64_t> partial_resyncs;
  std::atomic<std::uint64_t> reconnects;
  std::atomic<std::uint64_t> resends;
  std::atomic<std::uint64_t> backup[kAgentBackupWords];
  std::atomic<std::uint64_t> last_error[kAgentErrorWords];
};
static_assert(std::is_standard_layout_v<AgentStatusCopy>);
static_assert(sizeof(AgentStatusCopy) == 408);

// The replication agent's claim and status (see AgentSeat::claim). Writers
// (claim, publish, release) hold claim_mutex and fill the copy that is not
// current, then make it current; readers never lock and read the current
// copy, so a writer that stalls or dies mid-write leaves the last complete
// status readable.
struct AgentStatusBlock {
  RobustMutexStorage claim_mutex;
  std::atomic<std::uint64_t> published;  // copies written; copies[published % 2] is current
  AgentStatusCopy copies[2];
};
static_assert(std::is_standard_layout_v<AgentStatusBlock>);
static_assert(sizeof(AgentStatusBlock) == sizeof(RobustMutexStorage) + 8 + 2 * sizeof(AgentStatusCopy));

// One change lane (see shm/detail/change_ring.hpp): the entries of the
// changes made on the CPUs of this lane, in the order they were begun,
// before the sequencer gives them their place in the change log. `head`
// is written by those changes only, `cursor` by the sequencer only, each
// in a cache line of its own.
struct alignas(64) ChangeLane {
  std::atomic<std::uint64_t> head;  // lane positions handed out (the last one; 0: none)
  std::uint64_t reserved[7];
  std::atomic<std::uint64_t> cursor;  // lane positions sequenced (the last one)
  std::uint64_t reserved2[7];
};
static_assert(sizeof(ChangeLane) == 128);

struct StoreRoot {
  std::uint32_t shard_count;  // power of two
  std::uint32_t change_capacity;
  std::uint32_t default_idle_timeout_s;
  std::uint32_t lane_count;  // power of two, 1..kMaxChangeLanes
  // Next sequence of the change log (starts at 1). Only the sequencer
  // writes it, under sequencer_mutex; a change writes only its lane.
  std::atomic<std::uint64_t> next_change_seq;
  // Commits of the generations before this one (a rebuild carries the
  // total over); each Shard counts its own, so that commits to different
  // shards write no common cache line.
  std::atomic<std::uint64_t> commits;
  std::atomic<std::uint64_t> expirations;
  std::atomic<std::uint64_t> lock_recoveries;
  bip::offset_ptr<Shard> shards;
  bip::offset_ptr<ChangeSlot> ring;
  // Process locks.
  std::atomic<std::uint64_t> next_token;  // tokens only grow; starts at 1
  std::atomic<std::uint64_t> lock_revocations;
  std::uint32_t lock_lease_ms;  // 0: no lease
  std::uint32_t max_lock_queue;
  std::uint32_t waiter_capacity;
  std::uint32_t process_capacity;
  bip::offset_ptr<WaiterSlot> waiters;
  bip::offset_ptr<ProcessSlot> processes;
  // One LockTable per shard, indexed like `shards`.
  bip::offset_ptr<LockTable> lock_tables;
  // Replication position of a standby (all zero on a primary): which
  // primary it follows and the last change-log sequence of that primary it
  // has applied. Two copies: a writer (holding replica_mutex) fills the one
  // that is not current, then makes it current with one atomic store, so a
  // writer killed at any point leaves the last complete position current
  // (nothing to forget on repair). Readers hold replica_mutex too, so a
  // copy is never rewritten while one reads it. replica_current is 0 or 1
  // (a reader masks it: a damaged value never indexes out of the pair).
  RobustMutexStorage replica_mutex;
  ReplicaPositionCopy replica_positions[2];
  std::atomic<std::uint32_t> replica_current;
  std::uint32_t reserved_replica;
  // Failover (shm/replica.hpp), written under replica_mutex and read
  // without it (a commit reads them under its shard lock). failover:
  // epoch << 1 | promoted, one word so that a promotion raises the epoch
  // and marks the store promoted in one store. fenced_by: 0, or the epoch
  // that superseded this store (its own epoch when an operator demoted
  // it): commits, creations and removals are refused while it is set.
  // promoted_from: the position the store held when it was promoted.
  std::atomic<std::uint64_t> failover;
  std::atomic<std::uint64_t> fenced_by;
  ReplicaPositionCopy promoted_from;
  // The replication bound (Store::set_replication_bound): max_lag_ms << 32
  // | wait_ms, 0 when off. Read by every application write, outside any
  // lock, so it sits among words a primary never writes.
  std::atomic<std::uint64_t> replication_bound;
  // The replication agent of a primary (all zero until one claims it).
  AgentStatusBlock agent;
  // The change lanes: lane_count ChangeLanes and lane_count * lane_capacity
  // slots (lane l's are [l * lane_capacity, (l + 1) * lane_capacity)).
  std::uint32_t lane_capacity;  // power of two, 16..(1<<24)
  std::uint32_t reserved3;
  bip::offset_ptr<ChangeLane> lanes;
  bip::offset_ptr<ChangeSlot> lane_slots;
  // Per shard, the Shard::changes number of its last entry the sequencer
  // logged (shard_count words, written under sequencer_mutex).
  bip::offset_ptr<std::uint64_t> shard_sequenced;
  // Held by whoever moves lane entries into the change log (a follower;
  // change_ring.hpp): a sequencer that died is simply redone.
  RobustMutexStorage sequencer_mutex;
  // Followers of the change log asleep in ChangeFeed::wait, and the
  // futex word they sleep on: a change logged while one sleeps bumps it and
  // wakes them (one syscall, only while someone sleeps).
  std::atomic<std::uint32_t> change_waiters;
  std::atomic<std::uint32_t> change_signal;
  // Crash recovery (shm/recovery.md). generation: 1 for a created store,
  // the old one + 1 for a rebuild. moved: 1 once a newer generation
  // replaced this one under the store's name (every Shard::moved is set
  // too). rebuilding: 1 while the holder of recovery_mutex builds the next
  // generation (a rebuilder that died leaves it set for the next locker of
  // any shard to settle).
  std::uint64_t generation;
  std::atomic<std::uint32_t> moved;
  std::atomic<std::uint32_t> rebuilding;
  RobustMutexStorage recovery_mutex;
  // Memory accounting for check_store: segment bytes used by the fixed
  // structures (everything allocated at creation but the bucket tables),
  // and the allocator's overhead per block.
  std::uint64_t fixed_bytes;
  std::uint64_t block_overhead;
  // Taken around every call into Boost's segment allocator, so nobody ever
  // sleeps on Boost's own allocator mutex: a waiter asleep there when its
  // holder was killed was seen left asleep for seconds (the kill campaign;
  // Boost 1.81 gives the dead holder's mutex up as not recoverable). This
  // one is robust: the next locker learns of the death, and Boost's mutex,
  // then uncontended, says at once whether the allocator is poisoned.
  RobustMutexStorage allocator_mutex;
  // Sessions removed or expired, counted before the change is logged: a
  // Client that sees it unchanged after reading next_change_seq knows no
  // removal lies below that sequence (sync::Client drops removed sessions).
  std::atomic<std::uint64_t> retired;
  // The incarnation the next created session gets (starts at 1): tells a
  // session removed and created again from the one before, and the newer
  // of two records of one id (recovery).
  std::atomic<std::uint64_t> next_incarnation;
  // Edits a sync::Client could not commit (a failed flush), reported by
  // the clients of every process (shmctl info).
  std::atomic<std::uint64_t> unflushed_edits;
  // Application writes that waited for the agent to come within the
  // replication bound, and those refused when it did not in time.
  std::atomic<std::uint64_t> bound_waits;
  std::atomic<std::uint64_t> bound_refusals;
  // Writes asleep waiting for the agent's lag, and the futex word they
  // sleep on: the agent bumps and wakes it at each status it publishes
  // while one sleeps (AgentSeat::publish).
  std::atomic<std::uint32_t> bound_waiters;
  std::atomic<std::uint32_t> agent_signal;
};
static_assert(std::is_standard_layout_v<StoreRoot>);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(std::atomic<std::int32_t>::is_always_lock_free);

}  // namespace shmsession::shm::detail
