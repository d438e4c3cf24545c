// ProcessGroup: runs the same measured loop in N forked worker processes at
// once and merges what they measured (ops, wall time, latency histogram).
//
// Each worker prepares untimed (attach, connect, generate its inputs), then
// WorkerContext::measure waits until every worker is ready, so the timed
// loops overlap. Workers hand their figures back through an anonymous
// MAP_SHARED mapping and always leave with _exit: objects the parent owns
// (a segment guard, a peer server) are never destroyed in a child.
//
// Thread safety: run_in_processes may be called by one thread at a time and
// forks, so call it while no other thread of the process is inside a Store
// call (see shm/store.hpp on fork()).
// Cross-process safety: each worker writes only its own result slot; the
// start line is a process-shared atomic counter. A worker that dies or
// fails makes the run throw; a worker still running when the parent gives
// up (or throws) is SIGKILLed and reaped.
#pragma once

#include <time.h>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

#include "tools/shmbench/latency.hpp"

namespace shmsession::bench {

inline std::uint64_t monotonic_ns() noexcept {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);  // one clock for every process
  return static_cast<std::uint64_t>(now.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(now.tv_nsec);
}

// What one worker measured. Invariant: lives in shared memory, so it holds
// no pointers.
struct WorkerSample {
  std::uint64_t ops = 0;
  std::uint64_t start_ns = 0;
  std::uint64_t end_ns = 0;
  LatencyHistogram latency;
  bool done = false;
  char error[256] = {};
};

// What a loop measured over every worker.
struct LoopResult {
  int processes = 0;
  std::uint64_t ops = 0;
  std::uint64_t worker_ops_min = 0;  // the fewest and most ops one worker did:
  std::uint64_t worker_ops_max = 0;  // how evenly the workers shared the loop
  double wall_s = 0;                 // first start to last end
  LatencyHistogram latency;

  double ops_per_s() const noexcept { return wall_s > 0 ? static_cast<double>(ops) / wall_s : 0; }
};

class WorkerContext {
 public:
  WorkerContext(int index, int count, std::atomic<int>* ready, WorkerSample* sample)
      : index_(index), count_(count), ready_(ready), sample_(sample) {}

  int index() const noexcept { return index_; }
  int count() const noexcept { return count_; }

  // Waits for every worker to be ready, then calls op(i) for i in [0, ops),
  // timing each call. Call measure or measure_for once per worker. Throws
  // what op throws.
  template <class Op>
  void measure(std::uint64_t ops, Op&& op) {
    run_timed(ops, UINT64_MAX, op);
  }

  // The same for i = 0, 1, ... until `duration` has passed: every worker
  // stops at about the same time, so an aggregate over workers never ends
  // with one worker running alone.
  template <class Op>
  void measure_for(std::chrono::nanoseconds duration, Op&& op) {
    run_timed(UINT64_MAX, static_cast<std::uint64_t>(duration.count()), op);
  }

 private:
  template <class Op>
  void run_timed(std::uint64_t ops, std::uint64_t duration_ns, Op& op) {
    wait_for_start();
    LatencyHistogram latency;
    const std::uint64_t start = monotonic_ns();
    const std::uint64_t deadline = duration_ns == UINT64_MAX ? UINT64_MAX : start + duration_ns;
    std::uint64_t previous = start;
    std::uint64_t done = 0;
    for (; done < ops && previous < deadline; ++done) {
      op(done);
      const std::uint64_t now = monotonic_ns();  // one clock read per op
      latency.record(now - previous);
      previous = now;
    }
    sample_->start_ns = start;
    sample_->end_ns = previous;
    sample_->ops = done;
    sample_->latency = latency;
  }

  void wait_for_start();

  int index_;
  int count_;
  std::atomic<int>* ready_;
  WorkerSample* sample_;
};

// Requires: the body calls ctx.measure or ctx.measure_for exactly once, or throws.
using WorkerBody = std::function<void(WorkerContext& ctx)>;

// Where a loop's workers run. Unpinned (first_cpu < 0), the kernel places
// them. Pinned, worker i runs on the (first_cpu + i)-th CPU, cyclically,
// of those this process may use (its affinity mask).
struct Placement {
  int first_cpu = -1;
};

// The CPUs this process may run on, ascending. Throws std::runtime_error.
std::vector<int> usable_cpus();

// Forks `processes` workers running `body` and waits at most `timeout` for
// them. Throws std::runtime_error naming the first worker that failed
// (threw, died, never reached the start line, could not be pinned) or the
// timeout.
LoopResult run_in_processes(int processes, const WorkerBody& body, Placement placement,
                            std::chrono::seconds timeout = std::chrono::seconds{600});
// The same, unpinned.
inline LoopResult run_in_processes(int processes, const WorkerBody& body,
                                   std::chrono::seconds timeout = std::chrono::seconds{600}) {
  return run_in_processes(processes, body, Placement{}, timeout);
}

}  // namespace shmsession::bench
