// Store::Impl: one process's attachment to a store, shared by the files
// that implement Store (store.cpp: lifecycle and statistics;
// store_sessions.cpp: session operations; store_locks.cpp: process locks;
// recovery.cpp: check, recover and the rebuild into a new generation).
//
// A store is one segment at a time. A rebuild (shm/recovery.md) copies the
// live records into a fresh segment, a new *generation*, that replaces the
// old one under the store's name; every attached process moves to it on its
// next access. Impl keeps every generation this process mapped (the
// pointers of an operation running on another thread must stay valid) and
// `current`, the one operations use.
//
// Thread safety: a Generation's segment fields are set at attach and never
// change afterwards; all shared state is in the segment, guarded by shard
// locks. The per-process lock bookkeeping of a generation (process slot,
// held locks) is guarded by its `locks_mutex`; the list of generations by
// `generations_mutex`. Lock order: a shard lock, then locks_mutex;
// generations_mutex, then watcher_mutex, then locks_mutex (fork's prepare
// handler takes all three, in that order, for every Store).
//
// fork(): every Impl is in a process-wide registry; pthread_atfork handlers
// take each one's process-private mutexes before the fork and release them
// on both sides after (the watcher, or any thread inside a Store call, may
// hold one at the fork, and no thread would be left in the child to let it
// go). The child has no watcher thread: its Store forgets the handle.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/interprocess/managed_shared_memory.hpp>

#include "shm/change_feed.hpp"
#include "shm/detail/lock_queue.hpp"
#include "shm/detail/robust_mutex.hpp"
#include "shm/detail/segment_bounds.hpp"
#include "shm/detail/segment_format.hpp"
#include "shm/detail/session_table.hpp"
#include "shm/store.hpp"

namespace shmsession {

namespace shm::detail {

// Thrown inside an operation that finds its generation replaced (under a
// shard lock, or at the entry of a lock-free operation); Store::Impl::run
// moves to the new generation and runs the operation again. Never leaves
// shm/.
struct GenerationMoved {};

// Thrown by Generation::allocate when the segment allocator's own mutex is
// poisoned (a process died inside it); Store::Impl::run rebuilds the store
// into a new generation (or waits for the process already doing it) and
// runs the operation again there. Never leaves shm/.
struct AllocatorPoisoned {
  std::string why;
};

// One mapped generation of the store's segment.
struct Generation {
  std::string name;  // the store's name (for messages)
  bip::managed_shared_memory segment;
  SegmentHeader* header = nullptr;
  StoreRoot* root = nullptr;
  Shard* shards = nullptr;
  LockTable* lock_tables = nullptr;  // one per shard
  ChangeSlot* ring = nullptr;
  std::uint32_t shard_mask = 0;
  // root->change_capacity and the lanes, read here on every change: the
  // root's first cache line holds next_change_seq, which the sequencer writes.
  std::uint32_t change_capacity = 0;
  ChangeLane* lanes = nullptr;
  ChangeSlot* lane_slots = nullptr;
  std::uint32_t lane_count = 0;
  std::uint32_t lane_capacity = 0;
  std::uint64_t* shard_sequenced = nullptr;  // root->shard_sequenced
  SegmentBounds bounds;                      // the segment manager's bytes: links are checked against them

  // Process locks held through this generation (guarded by locks_mutex).
  Mutex locks_mutex;
  std::uint32_t process_slot GUARDED_BY(locks_mutex) = 0;  // ProcessSlot index + 1, claimed on first acquire
  pid_t process_slot_pid GUARDED_BY(locks_mutex) = 0;      // the pid it was claimed for (a fork must claim anew)
  std::unordered_map<std::string, std::uint64_t> held GUARDED_BY(locks_mutex);  // session -> token

  LockContext lock_context() const noexcept { return {root, root->waiters.get(), root->processes.get()}; }
  // This process's slot (claimed lazily; 0 if the table is full).
  std::uint32_t own_process_slot();
  void remember_lock(std::string_view id, std::uint64_t token);
  // Forgets `id` if it is held with `token` (not a lock acquired again since).
  void forget_lock(std::string_view id, std::uint64_t token);
  // Makes this process's release-request watcher look at its held locks
  // again (a lock granted with a release request already made).
  void nudge_watcher() noexcept;
  // Releases the locks held through this generation and its process slot.
  void release_held_locks() noexcept;

  // The slots of lane `lane` (< lane_count).
  ChangeSlot* lane_ring(std::uint32_t lane) const noexcept { return lane_slots + std::uint64_t{lane} * lane_capacity; }

  Shard& shard_for(std::uint64_t hash) noexcept { return shards[(hash >> 32) & shard_mask]; }
  // The lock states of `shard` (guarded by its mutex; see lock_table.hpp).
  LockTable& lock_table(const Shard& shard) noexcept { return lock_tables[&shard - shards]; }
  // Where `shard`'s records may be, for the checked walks (for_each_record).
  ShardBounds bounds_of(const Shard& shard) const noexcept {
    return {bounds, shard_mask, static_cast<std::uint32_t>(&shard - shards)};
  }

  // A validated session id, its hash and its shard. Throws: InvalidArgument.
  struct Place {
    std::uint64_t hash;
    Shard& shard;
  };
  Place place(std::string_view id);

  // Segment memory, or nullptr when the segment is full.
  // Throws: AllocatorPoisoned when a process died inside the allocator.
  void* allocate(std::uint64_t bytes);
  // Frees; a poisoned allocator leaks the block (a rebuild reclaims it).
  void deallocate(void* p) noexcept;
  // Boost's own consistency check of the allocator; false with the reason
  // when it fails or the allocator is poisoned.
  bool allocator_sane(std::string& why);
  [[noreturn]] void throw_full(std::uint64_t bytes, const char* what) const;

  // Runs when a shard lock is taken over from a dead holder.
  void repair(Shard& shard) noexcept REQUIRES(shard.mutex);

  // A change-log entry in two halves around the change itself (shard lock
  // held): begin takes a position in the lane of this CPU and records the
  // pending change; end stamps the lane slot and clears it. begin returns
  // the change's id (change_id: its lane and position; never 0), which
  // end takes and a blob records as its commit_seq. end leaves waking the
  // followers to the writer's finish_changes, after the shard lock.
  std::uint64_t begin_change(Shard& shard, SessionRecord* record, ChangeKind kind) noexcept REQUIRES(shard.mutex);
  void end_change(Shard& shard, std::uint64_t change, ChangeKind kind, std::uint64_t version,
                  std::string_view id) noexcept REQUIRES(shard.mutex);
  // Wakes the followers asleep on the log (ChangeFeed::wait), if any.
  void wake_followers() noexcept;
};

// Moves the entries the lanes hold into the change log (change_ring.hpp)
// and returns the log's next sequence: every change that ends after this
// returns is logged at that sequence or later. `unstick`: a lane whose
// next entry is still being written waits for its writer (or repairs a
// dead one) by taking that writer's shard lock, then goes on; without it
// the lane's entries wait for the next call. Throws: GenerationMoved, and
// Error(Corrupt) from a damaged shard lock.
std::uint64_t sequence_changes(Generation& g, bool unstick);
// Whether a lane holds entries not yet sequenced (seq_cst loads of each
// lane's head and cursor; no lock).
bool lanes_pending(const Generation& g) noexcept;
// What a writer does once its shard lock is given back, for the changes it
// made under it (end_change notes them, this thread):
// - it wakes the followers asleep on the log. Not under the lock: a
//   follower woken there would block on it at once to read the change
//   (Store::peek_moved), and wait for a second wake-up when it is given
//   back (the agent's lag at 5,000 commits/s: see shmbench replicate);
// - the writer's share of the sequencing. A lane holds a share of the log
//   only, and nobody may be following (an agent restarting, a link cut):
//   a change that finds its lane half full notes it, and its writer moves
//   the lanes into the log here. So the log's capacity, not a lane's,
//   bounds what a follower that is away may miss.
// Does nothing unless this thread noted a change; never throws (a
// follower's next call reports what stopped it).
void note_change_made() noexcept;
void note_lane_filling() noexcept;
void finish_changes(Generation& g) noexcept;
// The same as sequence_changes for a caller that holds g.root->sequencer_mutex and every
// shard lock (the rebuild): an entry still being written is damage and
// logged as lost.
void sequence_changes_locked(Generation& g);

// The segment's header, looked up in Boost's named-object index without
// its lock (nullptr if absent). Safe because the index is written only
// while a segment is built under a draft name (shm/detail/segment_file.hpp),
// before it is published under the store's name; so attach takes no lock
// at all, and a process killed at any point of attach holds nothing
// another process waits for.
SegmentHeader* find_header(bip::managed_shared_memory& segment);

// Maps the store's segment as it is now under `name` and checks its header.
// Throws: NotFound, Corrupt, LayoutMismatch, Io.
std::unique_ptr<Generation> attach_generation(const std::string& name);

// Who a new segment is: a new store (generation 1, fresh id) or the next
// generation of an existing one (its id and creation time kept).
struct NewGeneration {
  std::uint64_t generation = 1;
  const std::uint8_t* store_id = nullptr;  // 16 bytes; generation > 1 only
  std::uint64_t created_unix_ms = 0;
};

// Creates a segment `shm_name` with a root built from `options`; a new
// store's header (generation 1) is marked ready before it is published, a
// rebuilt generation's stays marked creating (the rebuilder marks it ready
// once the records are copied). It is built under a
// draft name of its own and linked to `shm_name` only once built, so a
// failure at any step removes only the draft. Throws: AlreadyExists,
// InvalidArgument (too small or too large), Io (including: its memory
// cannot be reserved).
std::unique_ptr<Generation> create_generation(const std::string& shm_name, const std::string& store_name,
                                              const CreateOptions& options, const NewGeneration& identity);

// Settles a rebuild whose builder died (root->rebuilding still set, its
// recovery mutex owner-dead): if the new generation already replaced this
// one under the store's name, marks this one moved; otherwise removes the
// half-built segment. Never blocks on a live rebuilder. Returns true if the
// generation is (now) moved.
bool settle_abandoned_rebuild(Generation& g) noexcept;

}  // namespace shm::detail

struct Store::Impl {
  std::string name;
  std::atomic<shm::detail::Generation*> current{nullptr};
  shm::detail::Mutex generations_mutex;
  // Every one mapped, oldest first.
  std::vector<std::unique_ptr<shm::detail::Generation>> generations GUARDED_BY(generations_mutex);

  // The release-request watcher (store_locks.cpp). `watcher` runs in the
  // process `watcher_pid`; in a forked child it does not exist.
  shm::detail::Mutex watcher_mutex;
  std::function<void(const std::string&, LockToken)> on_release GUARDED_BY(watcher_mutex);
  std::unique_ptr<std::thread> watcher;
  pid_t watcher_pid = 0;
  std::atomic<bool> watcher_stop{false};
  std::atomic<bool> callback_failure_reported{false};  // a throwing callback is reported once

  explicit Impl(std::unique_ptr<shm::detail::Generation> first);
  ~Impl();

  // The generation operations use. Operations under a shard lock notice a
  // replaced generation there (ShardGuard); lock-free ones call
  // gen_checked(), which looks at the root's `moved` word (one atomic load).
  shm::detail::Generation& gen() noexcept { return *current.load(std::memory_order_acquire); }
  shm::detail::Generation& gen_checked();
  // The current generation for a noexcept read of a root word: the one this
  // Store is on when a newer one cannot be mapped (the next call that may
  // throw reports why).
  shm::detail::Generation& current_or_mapped() noexcept {
    try {
      return gen_checked();
    } catch (...) {
      return gen();
    }
  }
  // Maps the generation that replaced `from` and makes it current (if
  // another thread has not already). Throws: Corrupt when the name now
  // holds another store, and what attach throws.
  shm::detail::Generation& move_on(shm::detail::Generation& from);
  // Rebuilds `from` after `why` (or waits for the process doing it), then
  // moves on. Throws: SegmentFull, Io.
  void rebuild_after(shm::detail::Generation& from, const std::string& why);

  // Runs `op(generation)`, again on the next generation when the store was
  // rebuilt under it (GenerationMoved) or when it finds the allocator
  // poisoned (AllocatorPoisoned: rebuilds first). `op` must not have
  // published anything when it throws either (every publish happens under a
  // shard lock, after the guard's check).
  template <typename Op>
  decltype(auto) run(Op&& op) {
    for (int attempt = 0;; ++attempt) {
      shm::detail::Generation& g = attempt == 0 ? gen() : gen_checked();
      try {
        return op(g);
      } catch (const shm::detail::GenerationMoved&) {
        move_on(g);
      } catch (const shm::detail::AllocatorPoisoned& poisoned) {
        rebuild_after(g, poisoned.why);
      }
      if (attempt >= kMaxMoves) throw_unsettled();
    }
  }
  static constexpr int kMaxMoves = 16;
  [[noreturn]] void throw_unsettled() const;

  void stop_watcher();

  // Membership of the fork registry for this Impl's life (declared last:
  // it leaves the registry before any mutex it names is destroyed).
  struct ForkRegistration {
    explicit ForkRegistration(Impl* impl);
    ~ForkRegistration();
    ForkRegistration(const ForkRegistration&) = delete;
    ForkRegistration& operator=(const ForkRegistration&) = delete;
    Impl* impl;
  };
  ForkRegistration fork_registration{this};
};

namespace shm::detail {

// The shard lock with the store's repair routine attached. Throws
// GenerationMoved (lock released) if the store was rebuilt into a newer
// generation: the one atomic load every locked operation pays for it.
class SCOPED_CAPABILITY ShardGuard : public RobustLockGuard {
 public:
  ShardGuard(Generation& g, Shard& shard) ACQUIRE(shard.mutex)
      // The repair runs with the lock just taken (inside the base constructor).
      : RobustLockGuard(shard.mutex, [&]() NO_THREAD_SAFETY_ANALYSIS { g.repair(shard); }) {
    // Throwing here runs the base's destructor, which unlocks.
    if (shard.moved.load(std::memory_order_acquire) != 0) [[unlikely]]
      throw GenerationMoved{};
  }
  ~ShardGuard() RELEASE() {}
};

// Who changes sessions: an application (refused once the store is
// fenced), or a backup daemon making a standby follow its primary
// (Replica::apply and remove: refused once the store was promoted, so
// nothing its old primary sends lands after that; allowed on a fenced
// store, which may follow the store that superseded it).
enum class Writer { App, Replica };

// The Error(Fenced) that refuses `writer` on this store now, if any.
// Checked under the shard lock the change is made under: Replica::fence
// and promote pass through every shard lock once after changing the
// state, so none of the changes they refuse lands after they return.
// (Relaxed loads: the shard lock orders them after the state change.)
inline bool writer_allowed(const Generation& g, Writer writer) noexcept {
  return writer == Writer::App ? g.root->fenced_by.load(std::memory_order_relaxed) == 0
                               : (g.root->failover.load(std::memory_order_relaxed) & kPromotedBit) == 0;
}
Error writer_refusal(const Generation& g, Writer writer);
inline std::optional<Error> writer_refused(const Generation& g, Writer writer) {
  if (writer_allowed(g, writer)) [[likely]]
    return std::nullopt;
  return writer_refusal(g, writer);
}
inline void check_writer(const Generation& g, Writer writer) {
  if (!writer_allowed(g, writer)) [[unlikely]]
    throw writer_refusal(g, writer);
}

// Whether a session has idled past its timeout at `now_ms`.
inline bool expired(const SessionRecord* r, std::uint64_t now_ms) noexcept {
  if (r->idle_timeout_s == 0) return false;
  return now_ms > r->last_access_unix_ms.load(std::memory_order_relaxed) + std::uint64_t{r->idle_timeout_s} * 1000;
}

// The record of a session (expired or not) in a shard whose lock the caller
// holds, found with every link checked: the paths that change a session
// must not follow a damaged link either.
// Throws: Error(Corrupt) when the search met a bad table, link or loop.
inline SessionRecord* find_session(Generation& g, Shard& shard, std::string_view id, std::uint64_t hash)
    REQUIRES(shard.mutex) {
  const CheckedFind found = find_record_checked(shard, g.bounds_of(shard), id, hash);
  if (found.damaged)
    throw Error(Errc::Corrupt, "the session table of store '" + g.name + "' is damaged where session '" +
                                   std::string(id) + "' would be; run 'shmctl check'");
  return found.record;
}

// The shard lock of a session's shard, held for this object's life, and the
// session's record if it is there and not expired (else nullptr).
class LockedSession {
 public:
  // Throws: Error(Corrupt) when the search for the record met damage (a bad
  // table, link or loop): the session may be there, cut off its chain.
  LockedSession(Generation& g, std::string_view id, std::uint64_t now_ms)
      : place_(g.place(id)), guard_(g, place_.shard) {
    const CheckedFind found = find_record_checked(place_.shard, g.bounds_of(place_.shard), id, place_.hash);
    if (found.damaged)
      throw Error(Errc::Corrupt, "the session table of store '" + g.name + "' is damaged where session '" +
                                     std::string(id) + "' would be; run 'shmctl check'");
    record_ = found.record;
    if (record_ != nullptr && expired(record_, now_ms)) record_ = nullptr;
  }
  SessionRecord* record() const noexcept { return record_; }
  Shard& shard() const noexcept { return place_.shard; }

 private:
  Generation::Place place_;
  ShardGuard guard_;
  SessionRecord* record_ = nullptr;
};

}  // namespace shm::detail
}  // namespace shmsession
