// A writer worker of the kill campaign: a forked process that attaches the
// store and commits until it is SIGKILLed (or asked to stop), acknowledging
// every commit in its ack log (test/crash/ack_log.hpp).
//
// Each worker process loops over: creating one of its own sessions now and
// then (the allocator is used regularly, and bucket tables grow), commits
// to its own sessions (Store::commit; values change size now and then),
// commits to the shared sessions under their process lock (Store::acquire,
// commit with the token, release), and commits to the client sessions
// through sync::Client (open refreshes what another worker moved). A lost
// or revoked lock (StaleToken) and a lock not granted in time (LockTimeout)
// are retried; any other exception is a failure: the worker writes it into
// its control block and to stderr, and exits with kWorkerFailed.
//
// The supervisor steers a worker through its WorkerControl, which lives in
// anonymous shared memory mapped before the first fork: it arms a test hook
// point (shm/detail/test_hooks.hpp) with a number of passes to let by; the
// worker's hook parks the thread that reaches it (records the point, pokes
// the shared Signal, then pause()s until the SIGKILL). Every store call is
// timed; the longest one is kept in the control block.
//
// Cross-process safety: WorkerControl fields are lock-free atomics written
// by one worker (or by the supervisor while the worker cannot race: before
// the fork, or arming fields the worker only reads).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "test/support/test_support.hpp"

namespace shmsession::test::crash {

inline constexpr int kNotArmed = -1;
inline constexpr int kWorkerFailed = 3;

// What a worker was doing when it measured its longest wait.
enum class OpKind : int { Attach, Create, OwnCommit, LockedCommit, ClientCommit };
const char* op_kind_name(int kind) noexcept;

struct WorkerControl {
  // Supervisor -> worker.
  std::atomic<int> armed_point{kNotArmed};  // a HookPoint, or kNotArmed
  std::atomic<int> passes_left{0};          // hook passes to let by before parking
  std::atomic<int> stop{0};                 // finish the current op and exit 0
  // Worker -> supervisor.
  std::atomic<int> parked_point{kNotArmed};  // the hook point a thread parked at
  std::atomic<std::uint64_t> acks{0};        // acknowledged operations, every incarnation
  std::atomic<std::uint64_t> ops{0};
  std::atomic<std::uint64_t> retries{0};  // StaleToken / LockTimeout
  std::atomic<std::uint64_t> longest_op_ns{0};
  std::atomic<int> longest_op_kind{0};
  std::atomic<int> pid{0};  // of the current incarnation
  // The store call in progress (an OpKind, or kNotArmed: none) and since
  // when, in CLOCK_MONOTONIC nanoseconds (comparable across processes).
  std::atomic<int> current_op{kNotArmed};
  std::atomic<std::uint64_t> current_since_ns{0};
  char current_session[136] = {};
  char error[512] = {};  // why the worker failed (written before it exits)
};

// WorkerControls (after a small header) in MAP_SHARED | MAP_ANONYMOUS
// memory, inherited by every process forked after it.
class SharedControls {
 public:
  explicit SharedControls(int workers);
  ~SharedControls();
  SharedControls(const SharedControls&) = delete;
  SharedControls& operator=(const SharedControls&) = delete;
  WorkerControl& operator[](int i) noexcept { return controls_[i]; }
  // Set while the supervisor's stall reporter writes a report.
  std::atomic<int>& reporting() noexcept { return *reporting_; }

 private:
  static constexpr std::size_t kHeaderBytes = 64;  // holds `reporting`
  static_assert(alignof(WorkerControl) <= kHeaderBytes);
  std::size_t mapped_bytes() const noexcept {
    return kHeaderBytes + sizeof(WorkerControl) * static_cast<std::size_t>(count_);
  }
  std::atomic<int>* reporting_ = nullptr;
  WorkerControl* controls_ = nullptr;
  int count_ = 0;
};

struct WorkerPlan {
  std::string store;
  int index = 0;
  int incarnation = 0;
  std::string ack_log;
  std::uint64_t seed = 0;
  std::vector<std::string> locked_sessions;  // committed under Store::acquire
  std::vector<std::string> client_sessions;  // committed through sync::Client
  WorkerControl* control = nullptr;
  Signal* parked = nullptr;  // poked by the thread that parks
};

// The body of a forked worker: returns 0 when asked to stop, kWorkerFailed
// on an unexpected error; otherwise runs until killed.
int run_worker(const WorkerPlan& plan);

// CLOCK_MONOTONIC in nanoseconds (WorkerControl::current_since_ns).
std::uint64_t monotonic_ns() noexcept;

}  // namespace shmsession::test::crash
