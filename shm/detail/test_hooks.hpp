// Test-only hooks: named points inside dangerous sections where a test can
// park or kill a process on purpose (a test forces the interleaving rather
// than hoping a sleep finds it). Compiled to nothing unless the build defines
// SHMSESSION_TEST_HOOKS.
//
// Thread safety: set_test_hook is meant for a test's single thread, or a
// forked child, before it calls into the store; the hook then runs on any
// thread of the process.
#pragma once

namespace shmsession::shm::detail {

enum class HookPoint {
  // Inside a shard critical section of a commit, after the new blob is
  // built and before it is published.
  kCommitBeforePublish,
  // Inside a shard critical section of a commit, after the record points
  // at the new blob and before the change-log slot is stamped.
  kCommitAfterPublish,
  // Inside a shard critical section of a commit, after the change-log slot
  // is stamped (end_change).
  kCommitLogged,
  // Inside a shard critical section while a bucket table is rebuilt.
  kTableGrow,
  // Holding the agent claim mutex, halfway through writing an agent status
  // copy (claim, publish or release): the copy's generation is odd.
  kAgentStatusWrite,
  // Holding the replica position's mutex, halfway through writing the
  // position's spare copy (the primary's id written, its sequence not).
  kReplicaPositionWrite,
  // Holding the replica position's mutex inside Replica::promote (before
  // and after its deciding store) or Replica::fence (after it).
  kFailoverWrite,
  // Holding every lock of a standby in ResyncDraft::publish, the draft
  // ready and carrying the standby's state, before it takes the name.
  kResyncBeforeRename,
  // Holding the segment allocator's own (Boost) mutex, as a process inside
  // allocate() does: a kill here poisons the allocator. Runs on every
  // allocation of a test-hooks build while a hook is set.
  kInsideAllocator,
  // Holding the segment's named-object index mutex, as a process inside
  // attach's lookup does: a kill here poisons the index.
  kInsideIndex,
  // Holding every shard lock in the middle of a rebuild, before the new
  // generation replaces the old one under the store's name.
  kRebuildBeforeRename,
  // The same, after the rename and before the old generation is marked
  // moved.
  kRebuildAfterRename,
  // Inside a shard critical section, halfway through handing a process
  // lock over (release or revoke): the lock is free and its first waiter
  // is off the queue but not yet granted.
  kLockHandOver,
  // In a process whose wait for a process lock just ended in a grant,
  // before it records the lock as held (no shard lock held).
  kWaiterGranted,
  // In a commit that planned under its shard lock and allocated the new
  // blob outside it, before it locks the shard again to publish (no lock
  // held): another process may move the session meanwhile.
  kCommitAllocated,
  // Inside a shard critical section, halfway through unlinking a waiter
  // from a lock's queue (a hand-over's dequeue, a waiter giving up, a
  // removal): the queue's head or the previous waiter already points past
  // it, its length and the waiter's own `queued` flag not yet updated.
  kLockQueueUnlink,
  // The release-request watcher thread, at the top of each turn, before it
  // looks up the store's current generation (no lock held).
  kWatcherLooks,
  // The release-request watcher thread holding its generation's
  // process-private `locks_mutex` (copying the locks it holds).
  kWatcherHoldingLocks,
  // Inside a shard critical section, a lock state's slot just taken from
  // the shard's free list (owned, off the list) and not yet referenced by
  // its session's record.
  kLockStateTaken,
  // Inside a shard critical section, a session's record no longer
  // referencing its lock state's slot, the slot not yet back on the free
  // list.
  kLockStateGivenBack,
  // In fork()'s prepare handler (pthread_atfork), before it takes every
  // Store's process-private mutexes.
  kForkPrepare,
  // In sync::Client's sweep of idle locks kept on the lean's word (the
  // lean turned to per-request), about to look at one listed session (no
  // lock held).
  kSweepLooks,
  // A locker of one of the segment's robust mutexes found it held and is
  // about to spin before it sleeps (robust_mutex.cpp; the mutex not held).
  kRobustLockSpins,
  // The change sequencer logged a lane entry and has not yet moved the
  // lane's cursor past it (change_feed.cpp; sequencer's lock held).
  kSequencerLogged,
  // The change sequencer loaded one lane's head and not yet the next
  // lane's (change_feed.cpp; sequencer's lock held).
  kSequencerHeadLoaded,
};

using TestHook = void (*)(HookPoint);

#ifdef SHMSESSION_TEST_HOOKS
inline constexpr bool kTestHooksCompiled = true;
void set_test_hook(TestHook hook) noexcept;
void run_test_hook(HookPoint point) noexcept;
// Whether a hook is set (points that must take a lock to be reached ask
// first, so a test-hooks build without a hook pays nothing for them).
bool test_hook_active() noexcept;
#else
inline constexpr bool kTestHooksCompiled = false;
inline void set_test_hook(TestHook) noexcept {}
inline void run_test_hook(HookPoint) noexcept {}
inline bool test_hook_active() noexcept { return false; }
#endif

}  // namespace shmsession::shm::detail
