// Process locks on sessions: lock tokens, queued requests, requests to
// release, sticky holders, and recovery from holders that died.
//
// One process at a time holds a session's lock. `Store::acquire` grants a
// LockToken drawn from a store-wide counter that only grows; every read and
// commit made on the holder's behalf presents it, and a token that is no
// longer current is refused with StaleToken (fencing: a process that lost
// its lock can never write).
//
// Requests from other processes queue in FIFO order (bounded by
// CreateOptions::max_lock_queue). The first request to queue behind a holder
// marks the lock "release requested" and wakes the holder's process: a
// watcher thread started by `Store::on_release_request` runs the callback
// there; a holder can also poll `Store::release_requested` at its safe
// points. A holder keeps the lock ("sticky") until it releases; release
// hands the lock straight to the head of the queue with a new token.
//
// Dead holders: waiters sleep on a futex, woken at once by a release, and
// look at the holder every 25 ms: a holder whose process is gone (pid gone,
// zombie, or pid reused: compared by process start time) is revoked and the
// lock passed on. A live holder that keeps the lock longer than the lease
// (CreateOptions::lock_lease_ms, default 30 s, at most 1 h, 0 disables)
// after a release was requested is revoked too. A waiter that dies while
// queued is skipped by the hand-over; a waiter that times out leaves the
// queue (LockTimeout).
//
// Thread safety: all operations may be called from any thread of any
// process. A process lock belongs to the process, not the thread: threads of
// the holder process share the token (thread-level locks are sync/'s work).
// fork(): the child of a holder does not hold its parent's locks (its pid
// differs: it acquires its own; its Store is not asked for the parent's and
// does not release them when destroyed); the parent keeps them. See shm/store.hpp for the rest
// of the fork story (the watcher thread does not run in the child).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace shmsession {

struct LockToken {
  std::uint64_t value = 0;
  friend bool operator==(LockToken, LockToken) = default;
};

// What `shmctl locks` shows of one session's lock.
struct LockInfo {
  std::string session;
  pid_t holder_pid = 0;  // 0: not held (only waiters)
  std::uint64_t token = 0;
  std::uint64_t acquired_unix_ms = 0;
  std::uint64_t held_for_ms = 0;
  bool release_requested = false;
  std::uint64_t release_requested_unix_ms = 0;
  std::vector<pid_t> queue;  // waiting processes, first to be granted first
};

inline constexpr std::uint32_t kDefaultLockLeaseMs = 30'000;
inline constexpr std::uint32_t kMaxLockLeaseMs = 3'600'000;
inline constexpr std::uint32_t kDefaultMaxLockQueue = 64;

}  // namespace shmsession
