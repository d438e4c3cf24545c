#include "shm/detail/lock_queue.hpp"

#include <signal.h>

#include <atomic>
#include <cerrno>
#include <climits>

#include "shm/detail/clock.hpp"
#include "shm/detail/futex.hpp"
#include "shm/detail/test_hooks.hpp"
#include "shm/lock.hpp"

namespace shmsession::shm::detail {
namespace {

constexpr std::uint32_t next_generation(std::uint32_t state, std::uint32_t used_bit) {
  return ((state >> 1) + 1) << 1 | used_bit;
}

// Cheap liveness for the hand-over path (no /proc read): a reused pid is
// caught later by the holder check, which compares start times.
bool pid_exists(pid_t pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno != ESRCH); }

// CAS-claims `state` if free, or if used by an owner that is gone.
template <typename Owner>
bool try_claim(std::atomic<std::uint32_t>& state, Owner&& owner_gone) {
  std::uint32_t s = state.load(std::memory_order_acquire);
  if (slot_in_use(s) && !owner_gone()) return false;
  return state.compare_exchange_strong(s, next_generation(s, 1), std::memory_order_acq_rel);
}

void grant_to(const LockContext& c, LockState& lock, pid_t pid, std::uint64_t start, std::uint32_t process,
              std::uint64_t now_ms) {
  lock.token = c.root->next_token.fetch_add(1, std::memory_order_acq_rel);
  lock.holder_pid = pid;
  lock.holder_start = start;
  lock.holder_process = process;
  lock.acquired_unix_ms = now_ms;
  lock.release_requested_unix_ms = 0;
}

// A process can be killed between any two stores of a queue change, and
// the next locker of the shard repairs what it left (repair_lock_queue): a
// change names its waiter in `moving_waiter` first and clears it last, and
// compiler fences keep the stores in between in program order (a SIGKILL
// leaves exactly the stores made before it).
void begin_move(LockState& lock, std::uint32_t waiter) noexcept {
  lock.moving_waiter = waiter;
  std::atomic_signal_fence(std::memory_order_seq_cst);
}

void end_move(LockState& lock) noexcept {
  std::atomic_signal_fence(std::memory_order_seq_cst);
  lock.moving_waiter = 0;
}

std::uint32_t pop_head(const LockContext& c, LockState& lock) {
  std::uint32_t w = lock.queue_head;
  WaiterSlot& slot = c.waiters[w - 1];
  begin_move(lock, w);
  lock.queue_head = slot.next;
  run_test_hook(HookPoint::kLockQueueUnlink);
  if (lock.queue_head == 0) lock.queue_tail = 0;
  --lock.queue_length;
  slot.next = 0;
  slot.queued = 0;
  end_move(lock);
  return w;
}

void push_head(const LockContext& c, LockState& lock, std::uint32_t waiter) noexcept {
  WaiterSlot& slot = c.waiters[waiter - 1];
  begin_move(lock, waiter);
  slot.next = lock.queue_head;
  slot.queued = 1;
  lock.queue_head = waiter;
  if (lock.queue_tail == 0) lock.queue_tail = waiter;
  ++lock.queue_length;
  end_move(lock);
}

}  // namespace

std::uint32_t claim_waiter_slot(const LockContext& c, const ProcessIdentity& self, std::uint32_t process) {
  std::uint32_t cap = c.root->waiter_capacity;
  std::uint32_t start = static_cast<std::uint32_t>(self.pid) % cap;
  for (std::uint32_t k = 0; k < cap; ++k) {
    std::uint32_t i = (start + k) % cap;
    WaiterSlot& slot = c.waiters[i];
    auto orphan = [&] { return slot.queued == 0 && slot.pid != 0 && !process_alive(slot.pid, slot.start_time); };
    if (!try_claim(slot.state, orphan)) continue;
    slot.pid = self.pid;
    slot.start_time = self.start_time;
    slot.process = process;
    slot.token = 0;
    slot.next = 0;
    slot.queued = 0;
    slot.outcome.store(kWaitPending, std::memory_order_release);
    return i + 1;
  }
  return 0;
}

void free_waiter_slot(WaiterSlot& slot) noexcept {
  slot.pid = 0;
  std::uint32_t s = slot.state.load(std::memory_order_acquire);
  slot.state.store(next_generation(s, 0), std::memory_order_release);
}

std::uint32_t claim_process_slot(const LockContext& c, const ProcessIdentity& self) {
  for (std::uint32_t i = 0; i < c.root->process_capacity; ++i) {
    ProcessSlot& slot = c.processes[i];
    auto gone = [&] { return slot.pid != 0 && !process_alive(slot.pid, slot.start_time); };
    if (!try_claim(slot.state, gone)) continue;
    slot.pid = self.pid;
    slot.start_time = self.start_time;
    return i + 1;
  }
  return 0;
}

void free_process_slot(ProcessSlot& slot) noexcept {
  slot.pid = 0;
  std::uint32_t s = slot.state.load(std::memory_order_acquire);
  slot.state.store(next_generation(s, 0), std::memory_order_release);
}

bool holder_forfeits(const LockContext& c, const LockState& lock, std::uint64_t now_ms) {
  if (lock.token == 0) return false;
  if (!process_alive(lock.holder_pid, lock.holder_start)) return true;
  std::uint32_t lease = c.root->lock_lease_ms;
  return lease != 0 && lock.release_requested_unix_ms != 0 && now_ms > lock.release_requested_unix_ms + lease;
}

// A lock state whose indices leave their range (a stray write in the
// record) is settled before anything indexes with them, as a queue change
// cut short by a kill is: the chain walked from the head and cut at the
// first index out of range, a holder slot out of range forgotten. Four
// comparisons when nothing is wrong.
static void settle_if_damaged(const LockContext& c, LockState& lock) noexcept {
  const std::uint32_t cap = c.root->waiter_capacity;
  if (lock.holder_process > c.root->process_capacity) lock.holder_process = 0;
  if (lock.queue_head <= cap && lock.queue_tail <= cap && lock.queue_length <= cap && lock.moving_waiter <= cap) return;
  if (lock.queue_head > cap) lock.queue_head = 0;
  if (lock.moving_waiter > cap) lock.moving_waiter = 0;
  repair_lock_queue(c, lock);
}

std::optional<std::uint64_t> try_grant(const LockContext& c, LockState& lock, const ProcessIdentity& self,
                                       std::uint32_t process, std::uint64_t now_ms) {
  settle_if_damaged(c, lock);
  if (lock.token != 0) {
    if (lock.holder_pid == self.pid && lock.holder_start == self.start_time) return lock.token;
    if (holder_forfeits(c, lock, now_ms)) revoke(c, lock, now_ms);
  }
  if (lock.token != 0 || lock.queue_head != 0) return std::nullopt;
  grant_to(c, lock, self.pid, self.start_time, process, now_ms);
  return lock.token;
}

void enqueue_waiter(const LockContext& c, LockState& lock, std::uint32_t waiter) noexcept {
  settle_if_damaged(c, lock);
  WaiterSlot& slot = c.waiters[waiter - 1];
  begin_move(lock, waiter);
  slot.next = 0;
  slot.queued = 1;
  if (lock.queue_tail != 0) {
    c.waiters[lock.queue_tail - 1].next = waiter;
  } else {
    lock.queue_head = waiter;
  }
  lock.queue_tail = waiter;
  ++lock.queue_length;
  end_move(lock);
}

bool dequeue_waiter(const LockContext& c, LockState& lock, std::uint32_t waiter) noexcept {
  settle_if_damaged(c, lock);
  std::uint32_t prev = 0;
  for (std::uint32_t w = lock.queue_head; w != 0; prev = w, w = c.waiters[w - 1].next) {
    if (w != waiter) continue;
    WaiterSlot& slot = c.waiters[w - 1];
    begin_move(lock, w);
    (prev ? c.waiters[prev - 1].next : lock.queue_head) = slot.next;
    run_test_hook(HookPoint::kLockQueueUnlink);
    if (lock.queue_tail == w) lock.queue_tail = prev;
    --lock.queue_length;
    slot.next = 0;
    slot.queued = 0;
    end_move(lock);
    return true;
  }
  return false;
}

void request_release(const LockContext& c, LockState& lock, std::uint64_t now_ms) noexcept {
  if (lock.token == 0) return;
  if (lock.release_requested_unix_ms == 0) lock.release_requested_unix_ms = now_ms;
  if (lock.holder_process != 0 && lock.holder_process <= c.root->process_capacity) {
    ProcessSlot& p = c.processes[lock.holder_process - 1];
    p.requests.fetch_add(1, std::memory_order_acq_rel);
    futex_wake(p.requests, INT_MAX);
  }
}

void hand_over(const LockContext& c, LockState& lock, std::uint64_t now_ms) noexcept {
  settle_if_damaged(c, lock);
  lock = LockState{0, 0, 0, 0, 0, 0, lock.queue_head, lock.queue_tail, lock.queue_length, lock.moving_waiter};
  while (lock.queue_head != 0) {
    WaiterSlot& slot = c.waiters[pop_head(c, lock) - 1];
    if (!pid_exists(slot.pid)) {
      free_waiter_slot(slot);  // died while queued
      continue;
    }
    run_test_hook(HookPoint::kLockHandOver);
    grant_to(c, lock, slot.pid, slot.start_time, slot.process, now_ms);
    slot.token = lock.token;
    slot.outcome.store(kWaitGranted, std::memory_order_release);
    futex_wake(slot.outcome, 1);
    if (lock.queue_head != 0) request_release(c, lock, now_ms);
    return;
  }
}

void look_after_lock(const LockContext& c, LockState& lock, std::uint32_t waiter, std::uint64_t now_ms) noexcept {
  settle_if_damaged(c, lock);
  WaiterSlot& slot = c.waiters[waiter - 1];
  if (slot.outcome.load(std::memory_order_acquire) != kWaitPending) return;
  if (slot.queued == 0) {
    // Taken off the queue by a hand-over whose process died before
    // granting: back to the head, where it was.
    push_head(c, lock, waiter);
    request_release(c, lock, now_ms);
  }
  if (holder_forfeits(c, lock, now_ms)) {
    revoke(c, lock, now_ms);
  } else if (lock.token == 0 && lock.queue_head != 0) {
    hand_over(c, lock, now_ms);  // free with a queue: that hand-over's process died
  }
}

void revoke(const LockContext& c, LockState& lock, std::uint64_t now_ms) noexcept {
  c.root->lock_revocations.fetch_add(1, std::memory_order_relaxed);
  hand_over(c, lock, now_ms);
}

void repair_lock_queue(const LockContext& c, LockState& lock) noexcept {
  const std::uint32_t cap = c.root->waiter_capacity;
  std::uint32_t length = 0, tail = 0;
  bool moving_linked = false;
  // Kills leave no cycle (every change links or unlinks one waiter), so the
  // bound only guards against a damaged link: the chain is cut there.
  for (std::uint32_t* link = &lock.queue_head; *link != 0; link = &c.waiters[*link - 1].next) {
    if (*link > cap || length == cap) {
      *link = 0;
      break;
    }
    ++length;
    tail = *link;
    c.waiters[*link - 1].queued = 1;
    moving_linked = moving_linked || *link == lock.moving_waiter;
  }
  if (lock.moving_waiter != 0 && lock.moving_waiter <= cap && !moving_linked) {
    // Off the queue: a waiter still waiting puts itself back at the head
    // (look_after_lock), and a dead one's slot can be reclaimed.
    WaiterSlot& slot = c.waiters[lock.moving_waiter - 1];
    slot.next = 0;
    slot.queued = 0;
  }
  lock.moving_waiter = 0;
  lock.queue_tail = tail;
  lock.queue_length = length;
}

void release_all_for_removal(const LockContext& c, LockState& lock) noexcept {
  settle_if_damaged(c, lock);
  while (lock.queue_head != 0) {
    WaiterSlot& slot = c.waiters[pop_head(c, lock) - 1];
    slot.outcome.store(kWaitGone, std::memory_order_release);
    futex_wake(slot.outcome, 1);
  }
  lock = LockState{};
}

void fill_lock_info(const LockContext& c, const LockState& lock, std::uint64_t now_ms, LockInfo& out) {
  out.holder_pid = lock.token ? lock.holder_pid : 0;
  out.token = lock.token;
  out.acquired_unix_ms = to_unix_ms(lock.acquired_unix_ms);
  out.held_for_ms = lock.token && now_ms > lock.acquired_unix_ms ? now_ms - lock.acquired_unix_ms : 0;
  out.release_requested = lock.release_requested_unix_ms != 0;
  out.release_requested_unix_ms = to_unix_ms(lock.release_requested_unix_ms);
  out.queue.clear();
  const std::uint32_t cap = c.root->waiter_capacity;  // a damaged index ends the list
  for (std::uint32_t w = lock.queue_head; w != 0 && w <= cap && out.queue.size() < cap; w = c.waiters[w - 1].next)
    out.queue.push_back(c.waiters[w - 1].pid);
}

}  // namespace shmsession::shm::detail
