// The three measured loops of the `lock` workload, written once over a
// "lock side" so shmsession's process lock and the Redis recipe run exactly
// the same rounds. A Side, one per worker process, provides:
//   std::uint64_t acquire()       blocks until held; returns the attempts made
//                                 (1 for a lock that queues)
//   void release()
//   void wait_for_waiter()        returns once another process waits for the lock
//   void work()                   the holder's tiny work: read 1 attribute
//   void read_and_commit(stamp)   read 1 attribute, commit 1 small attribute
// Boards (below) live in a ForkShared mapping (fork_shared.hpp) made by the
// parent before it forks the workers.
//
// Thread safety: each function runs on one worker's thread.
// Cross-process safety: boards hold only lock-free atomics and plain values;
// each worker writes its own slots, the parent reads them after the workers
// have exited. A worker that fails throws out of ctx.measure, which
// run_in_processes reports (process_group.hpp).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <thread>

#include "tools/shmbench/latency.hpp"
#include "tools/shmbench/process_group.hpp"

namespace shmsession::bench {

inline constexpr int kMaxLockWorkers = 8;

// Ping-pong between workers 0 and 1. Invariant: release_ns is written by
// the holder before it releases, and read by the next holder after its
// acquire returned.
struct HandoffBoard {
  std::atomic<int> holder{-1};                // worker that last acquired
  std::atomic<std::uint64_t> release_ns{0};   // CLOCK_MONOTONIC of the last release
  std::array<std::atomic<int>, 2> waiting{};  // set by a side whose attempt was refused
  std::array<LatencyHistogram, 2> handoff{};  // release -> granted, by the granted worker
};

struct ContendedBoard {
  std::atomic<int> holders{0};  // processes inside the critical section: 0 or 1
  std::array<std::uint64_t, kMaxLockWorkers> cycles{};
  std::array<std::uint64_t, kMaxLockWorkers> over_limit{};  // acquisitions above attempt_limit
};

static_assert(std::atomic<int>::is_always_lock_free && std::atomic<std::uint64_t>::is_always_lock_free,
              "boards are shared between processes");

// One process: acquire + release, untimed for `warmup`, then timed.
// Throws if an acquisition is refused (the session is not uncontended).
template <class Side>
void measure_uncontended(WorkerContext& ctx, Side& side, std::chrono::nanoseconds warmup,
                         std::chrono::nanoseconds duration) {
  auto cycle = [&](std::uint64_t) {
    if (side.acquire() != 1) throw std::runtime_error("an uncontended acquire was refused");
    side.release();
  };
  const std::uint64_t warm_end = monotonic_ns() + static_cast<std::uint64_t>(warmup.count());
  for (std::uint64_t k = 0; monotonic_ns() < warm_end; ++k) cycle(k);
  ctx.measure_for(duration, cycle);
}

// Two processes hand the lock back and forth `warmup_rounds + rounds` times
// each. The holder waits until the other one waits, stamps the time and
// releases; the other one stamps the time its acquire returned, records the
// difference (after the warm-up rounds), does its tiny work, and passes on.
// Worker 0 starts as the holder and ends holding (released untimed).
template <class Side>
void measure_handoffs(WorkerContext& ctx, Side& side, HandoffBoard& board, std::uint64_t warmup_rounds,
                      std::uint64_t rounds) {
  const int self = ctx.index();
  auto take = [&](bool record) {
    side.acquire();
    const std::uint64_t granted = monotonic_ns();
    board.holder.store(self, std::memory_order_release);
    if (record) board.handoff[self].record(granted - board.release_ns.load(std::memory_order_acquire));
    side.work();
  };
  auto pass = [&] {
    side.wait_for_waiter();
    board.release_ns.store(monotonic_ns(), std::memory_order_release);
    side.release();
  };
  if (self == 0) {
    take(false);
  } else {
    while (board.holder.load(std::memory_order_acquire) != 0)
      std::this_thread::sleep_for(std::chrono::microseconds{50});
  }
  ctx.measure(warmup_rounds + rounds, [&](std::uint64_t k) {
    const bool record = k >= warmup_rounds;
    if (self == 0) {
      pass();
      take(record);
    } else {
      take(record);
      pass();
    }
  });
  if (self == 0) side.release();
}

// Every worker runs acquire -> read_and_commit -> release on the one session
// for `duration`. Checks that no two processes are inside at once, and
// counts acquisitions that took more than `attempt_limit` attempts.
template <class Side>
void measure_contended(WorkerContext& ctx, Side& side, ContendedBoard& board, std::chrono::nanoseconds duration,
                       std::uint64_t attempt_limit) {
  const int self = ctx.index();
  const std::uint64_t stamp_base = static_cast<std::uint64_t>(self + 1) << 48;
  std::uint64_t cycles = 0;
  std::uint64_t over_limit = 0;
  ctx.measure_for(duration, [&](std::uint64_t k) {
    if (side.acquire() > attempt_limit) ++over_limit;
    if (board.holders.fetch_add(1, std::memory_order_acq_rel) != 0)
      throw std::runtime_error("two processes held the session lock at once");
    side.read_and_commit(stamp_base | k);
    board.holders.fetch_sub(1, std::memory_order_acq_rel);
    side.release();
    ++cycles;
  });
  board.cycles[static_cast<std::size_t>(self)] = cycles;
  board.over_limit[static_cast<std::size_t>(self)] = over_limit;
}

}  // namespace shmsession::bench
