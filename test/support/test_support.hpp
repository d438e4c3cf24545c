// Helpers shared by every test: unique segment names removed by RAII even
// when a test fails, child processes that are always reaped, and running a
// tool binary to capture its output.
//
// Thread safety: each object belongs to the thread that made it.
#pragma once

#include <sched.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "shm/error.hpp"
#include "shm/store.hpp"

namespace shmsession::test {

// A store name unique to this process and call ("t<pid>_<tag>_<n>"); the
// segment is removed when the guard goes out of scope, and also at
// construction in case a crashed earlier run left it behind.
class SegmentGuard {
 public:
  explicit SegmentGuard(const std::string& tag);
  ~SegmentGuard();
  SegmentGuard(const SegmentGuard&) = delete;
  SegmentGuard& operator=(const SegmentGuard&) = delete;
  const std::string& name() const noexcept { return name_; }

 private:
  std::string name_;
};

// The store the suites test: created under the guard's name with
// `options`, which a suite gives as designated initializers for what its
// tests need ({.size_bytes = 16 << 20, .shards = 1}); by default a 16 MiB
// store of 8 shards.
Store make_store(const SegmentGuard& g, const CreateOptions& options = {.size_bytes = 16 << 20, .shards = 8});

// A forked child running `body`; its exit status is body's return value (an
// escaping exception gives 99 and prints what()). The destructor SIGKILLs and
// reaps a child still running, and a child dies with its parent when the
// parent is killed (PR_SET_PDEATHSIG: signals skip destructors), so no test
// leaves a process behind. Fork from the thread that waits for the child:
// the child dies when the forking thread ends.
class ChildProcess {
 public:
  explicit ChildProcess(const std::function<int()>& body);
  ~ChildProcess();
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&&) = delete;
  ChildProcess(const ChildProcess&) = delete;

  pid_t pid() const noexcept { return pid_; }
  // Waits for the child; returns its exit code, or 128+signal if killed.
  int wait();
  // Waits at most `timeout`; returns -1 if still running.
  int wait_for(std::chrono::milliseconds timeout);
  void kill(int signal);

 private:
  pid_t pid_ = -1;
  int status_ = -1;
};

// A pipe used to hand one-byte signals between a parent and a forked child.
class Signal {
 public:
  Signal();
  ~Signal();
  Signal(const Signal&) = delete;
  Signal& operator=(const Signal&) = delete;
  void notify();  // writes one byte
  // Waits for one byte; false on timeout or when the writer is gone.
  bool wait(std::chrono::milliseconds timeout);

 private:
  int fds_[2] = {-1, -1};
};

// The code of the shmsession::Error that `f` throws, or nullopt if it
// throws none (so `BOOST_TEST((code_of(f) == Errc::NotFound))` fails then).
// Usable in forked children: it asserts nothing itself.
std::optional<Errc> code_of(const std::function<void()>& f);
// The message of the shmsession::Error that `f` throws, or "(no error)".
std::string message_of(const std::function<void()>& f);

// Whether `f` throws an E: graph/ and diff/ throw their own exceptions, not
// shmsession::Error. Another exception escapes; false if none is thrown.
template <class E>
bool throws(const std::function<void()>& f) {
  try {
    f();
  } catch (const E&) {
    return true;
  }
  return false;
}

// Waits until the single-threaded process `pid` is asleep in a futex wait
// (its current system call, /proc/PID/syscall): how a test knows a child is
// blocked on a lock before it kills the lock's holder. False on timeout.
bool wait_until_in_futex(pid_t pid, std::chrono::milliseconds timeout);
// The same for thread `tid` (its gettid()) of this process: how a test knows
// one of its threads is blocked on a lock. False on timeout, or at once
// when the thread has ended.
bool wait_until_thread_in_futex(pid_t tid, std::chrono::milliseconds timeout);

// Keeps the calling thread, and the processes it forks meanwhile, on one
// CPU (`cpu`, or the one it runs on now) until it goes away, then gives it
// back the CPUs it had: for tests of per-CPU state (a shard's spare blob
// per CPU). Throws std::system_error if the CPU cannot be had.
class PinnedToCpu {
 public:
  explicit PinnedToCpu(int cpu = -1);
  ~PinnedToCpu();
  PinnedToCpu(const PinnedToCpu&) = delete;
  PinnedToCpu& operator=(const PinnedToCpu&) = delete;

 private:
  cpu_set_t saved_{};
};

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs argv[0] (a path) with the given arguments and standard input,
// capturing both outputs. Fails the test if it runs over `timeout`.
CommandResult run_command(const std::vector<std::string>& argv, const std::string& input = {},
                          std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Starts argv[0] (a path) with its output and errors appended to `log`, as
// a child that dies with the test (PR_SET_PDEATHSIG); with `own_group` in a
// process group of its own (its pid), so that the caller can signal its
// workers too. The caller reaps it. Throws std::runtime_error if fork fails.
pid_t spawn_logged(const std::vector<std::string>& argv, const std::string& log, bool own_group = false);

// Runs the calling thread on `cpu` only: how a test puts changes in a
// chosen change lane (one per CPU). False if the machine has no such CPU.
bool run_on_cpu(int cpu);

// The calling thread's CPUs, given back when this goes.
class CpuAffinityKept {
 public:
  CpuAffinityKept();
  ~CpuAffinityKept();
  CpuAffinityKept(const CpuAffinityKept&) = delete;
  CpuAffinityKept& operator=(const CpuAffinityKept&) = delete;

 private:
  cpu_set_t saved_{};
};

}  // namespace shmsession::test
