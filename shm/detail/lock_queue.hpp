// The mechanics of session process locks, all run under the session's shard
// mutex (see shm/lock.hpp for the behaviour). Waiter and process slots are
// claimed lock-free: their `state` word is (generation << 1 | used), so a
// slot reclaimed from a dead owner cannot be stolen back by a late claimer.
#pragma once

#include <cstdint>
#include <optional>

#include "shm/detail/process_identity.hpp"
#include "shm/detail/segment_format.hpp"

namespace shmsession {
struct LockInfo;
}

namespace shmsession::shm::detail {

struct LockContext {
  StoreRoot* root;
  WaiterSlot* waiters;
  ProcessSlot* processes;
};

// Claims a free (or dead owner's) slot; returns index + 1, or 0 if none.
std::uint32_t claim_waiter_slot(const LockContext& c, const ProcessIdentity& self, std::uint32_t process);
void free_waiter_slot(WaiterSlot& slot) noexcept;
std::uint32_t claim_process_slot(const LockContext& c, const ProcessIdentity& self);
void free_process_slot(ProcessSlot& slot) noexcept;

// Shard lock held for everything below.

// Grants the lock to `self` if free with nobody queued, returns the token
// this process already holds, or revokes a dead or overdue holder first.
std::optional<std::uint64_t> try_grant(const LockContext& c, LockState& lock, const ProcessIdentity& self,
                                       std::uint32_t process, std::uint64_t now_ms);
void enqueue_waiter(const LockContext& c, LockState& lock, std::uint32_t waiter) noexcept;
// Unlinks a waiter that gives up; false if it was no longer queued.
bool dequeue_waiter(const LockContext& c, LockState& lock, std::uint32_t waiter) noexcept;
// Marks the lock release-requested and wakes the holder's process.
void request_release(const LockContext& c, LockState& lock, std::uint64_t now_ms) noexcept;
// Ends the current hold and grants the lock to the first live waiter.
void hand_over(const LockContext& c, LockState& lock, std::uint64_t now_ms) noexcept;
// Revokes a holder (dead, overdue or forced) and hands over.
void revoke(const LockContext& c, LockState& lock, std::uint64_t now_ms) noexcept;
// A queued waiter's periodic look at the lock it waits for: revokes a dead
// or overdue holder, and finishes a hand-over whose process died halfway
// (the lock free with waiters queued, or this waiter off the queue but
// never granted). Every step is a whole hand-over, so a death in the middle
// of this one is finished by the next look.
void look_after_lock(const LockContext& c, LockState& lock, std::uint32_t waiter, std::uint64_t now_ms) noexcept;
// Whether the holder is dead or overdue (and so may be revoked).
bool holder_forfeits(const LockContext& c, const LockState& lock, std::uint64_t now_ms);
// Run by the repair of a shard whose locker died, for each lock there: a
// queue change cut short (its waiter in `moving_waiter`) is settled: the
// chain from the head is walked again (cut at a link out of range), its
// tail and length recounted, every waiter on it marked queued, and the
// moving waiter, if it ended up off the queue, marked not queued.
void repair_lock_queue(const LockContext& c, LockState& lock) noexcept;
// The session is going away: every waiter is told so and the lock ends.
void release_all_for_removal(const LockContext& c, LockState& lock) noexcept;

void fill_lock_info(const LockContext& c, const LockState& lock, std::uint64_t now_ms, LockInfo& out);

}  // namespace shmsession::shm::detail
