// Lock probes: named points on a process lock's way from one process to
// another, each reported with the session it concerns, so that a program
// can tell where a hand-over's time goes (shmbench cycle --routing random
// prints the breakdown). Part of every build: while no probe is set, each
// point costs one relaxed atomic load.
//
// Thread safety: set_lock_probe is meant for a process's single thread
// before it calls into the store (or a forked child before its first
// request); the probe then runs on any thread of the process.
#pragma once

#include <string_view>

namespace shmsession::shm {

enum class LockProbe {
  // In the requesting process, its wait queued and the holder asked to
  // release (no lock held).
  kReleaseRequested,
  // On the holder's watcher thread, about to run the release-request
  // callback for the session (no lock held).
  kReleaseRequestDelivered,
  // In the releasing process, inside Store::release's shard critical
  // section, just before the lock is handed to the head of its queue (so
  // it happens before the waiter can see the grant).
  kHandingOver,
  // In a waiting process whose wait just ended in a grant (the waiter is
  // running again), before it records the lock as held.
  kGranted,
  // In sync::Client::open, the lock held, before the local copy is
  // refreshed from the primary.
  kRefreshBegins,
};

// A probe only records (a clock read, a store): it may run under a shard
// lock, must not throw and must not call into the store.
using LockProbeHook = void (*)(LockProbe point, std::string_view session);

// Sets this process's probe; nullptr removes it.
void set_lock_probe(LockProbeHook probe) noexcept;

}  // namespace shmsession::shm
