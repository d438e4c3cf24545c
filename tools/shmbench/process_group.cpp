#include "tools/shmbench/process_group.hpp"
#include "shm/error.hpp"
#include "tools/shmbench/peer_process.hpp"

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace shmsession::bench {

static_assert(std::atomic<int>::is_always_lock_free, "the start line is shared between processes");

void WorkerContext::wait_for_start() {
  ready_->fetch_add(1, std::memory_order_acq_rel);
  // Polling with a short sleep: a worker that is still preparing keeps its
  // core, and the loops start within ~50 us of each other.
  while (ready_->load(std::memory_order_acquire) < count_) {
    std::this_thread::sleep_for(std::chrono::microseconds{20});
  }
}

namespace {

// The anonymous shared mapping: a start line and one result slot per worker.
class SharedSlots {
 public:
  explicit SharedSlots(int count) : count_(count) {
    bytes_ = sizeof(std::atomic<int>) + alignof(WorkerSample) + sizeof(WorkerSample) * static_cast<std::size_t>(count);
    void* base = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) throw std::runtime_error(std::string("mmap: ") + shmsession::errno_text(errno));
    base_ = base;
    ready_ = new (base) std::atomic<int>(0);
    auto* first = static_cast<char*>(base) + alignof(WorkerSample);
    samples_ = reinterpret_cast<WorkerSample*>(first);
    for (int i = 0; i < count; ++i) new (&samples_[i]) WorkerSample{};
  }
  ~SharedSlots() { ::munmap(base_, bytes_); }
  SharedSlots(const SharedSlots&) = delete;
  SharedSlots& operator=(const SharedSlots&) = delete;

  std::atomic<int>* ready() const noexcept { return ready_; }
  WorkerSample& sample(int i) const noexcept { return samples_[i]; }
  int count() const noexcept { return count_; }

 private:
  int count_;
  std::size_t bytes_ = 0;
  void* base_ = nullptr;
  std::atomic<int>* ready_ = nullptr;
  WorkerSample* samples_ = nullptr;
};

// Forked workers; any still running when this goes away are killed and reaped.
class Workers {
 public:
  ~Workers() {
    for (pid_t pid : pids_) {
      if (pid <= 0) continue;
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
  }
  void add(pid_t pid) { pids_.push_back(pid); }
  std::vector<pid_t>& pids() noexcept { return pids_; }

 private:
  std::vector<pid_t> pids_;
};

[[noreturn]] void run_worker(int index, pid_t parent, SharedSlots& slots, const WorkerBody& body, int cpu) {
  follow_parent(parent);
  WorkerSample& sample = slots.sample(index);
  int status = 0;
  try {
    if (cpu >= 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpu, &set);
      if (::sched_setaffinity(0, sizeof set, &set) != 0)
        throw std::runtime_error("pinning to CPU " + std::to_string(cpu) + ": " + shmsession::errno_text(errno));
    }
    WorkerContext ctx(index, slots.count(), slots.ready(), &sample);
    body(ctx);
    sample.done = true;
  } catch (const std::exception& e) {
    std::snprintf(sample.error, sizeof sample.error, "%s", e.what());
    status = 1;
  } catch (...) {
    std::snprintf(sample.error, sizeof sample.error, "unknown exception");
    status = 1;
  }
  ::_exit(status);  // never run the parent's destructors in a worker
}

std::string describe_failure(int index, int status, const WorkerSample& sample) {
  std::string why = "worker " + std::to_string(index) + " ";
  if (sample.error[0] != '\0') return why + "failed: " + sample.error;
  if (WIFSIGNALED(status)) return why + "killed by signal " + std::to_string(WTERMSIG(status));
  if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
    return why + "exited with status " + std::to_string(WEXITSTATUS(status));
  return why + "ended without measuring";
}

// Reaps one finished worker if there is one; throws if it failed. Waits
// for specific pids: the peer server is a child of ours too.
bool reap_one(std::vector<pid_t>& pids, const SharedSlots& slots) {
  for (std::size_t index = 0; index < pids.size(); ++index) {
    if (pids[index] <= 0) continue;
    int status = 0;
    const pid_t pid = ::waitpid(pids[index], &status, WNOHANG);
    if (pid == 0 || (pid < 0 && errno == EINTR)) continue;
    if (pid < 0) throw std::runtime_error(std::string("waitpid: ") + shmsession::errno_text(errno));
    pids[index] = -1;
    const WorkerSample& sample = slots.sample(static_cast<int>(index));
    if (!sample.done || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
      throw std::runtime_error(describe_failure(static_cast<int>(index), status, sample));
    return true;
  }
  return false;
}

// Reaps every worker; throws on the first failure or at the deadline (the
// Workers destructor then kills the rest).
void wait_for_workers(Workers& workers, const SharedSlots& slots, std::chrono::seconds timeout) {
  // Sleeps until a worker ends (a pidfd per worker, polled together)
  // rather than waking every few milliseconds to look: on a machine with
  // fewer cores than workers each such wake-up could take a core from a
  // worker in the middle of a timed operation.
  std::vector<int> pidfds;
  struct Close {
    std::vector<int>& fds;
    ~Close() {
      for (int fd : fds) ::close(fd);
    }
  } close_all{pidfds};
  for (pid_t pid : workers.pids()) {
    const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (fd < 0) throw std::runtime_error(std::string("pidfd_open: ") + shmsession::errno_text(errno));
    pidfds.push_back(fd);
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (std::size_t left = workers.pids().size(); left > 0;) {
    if (reap_one(workers.pids(), slots)) {
      --left;
      continue;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now > deadline)
      throw std::runtime_error("workers still running after " + std::to_string(timeout.count()) + " s");
    std::vector<pollfd> watch;
    for (std::size_t i = 0; i < pidfds.size(); ++i)
      if (workers.pids()[i] > 0) watch.push_back(pollfd{pidfds[i], POLLIN, 0});
    const auto wait_ms = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count() + 1;
    if (::poll(watch.data(), watch.size(), static_cast<int>(wait_ms)) < 0 && errno != EINTR)
      throw std::runtime_error(std::string("poll: ") + shmsession::errno_text(errno));
  }
}

LoopResult merge_samples(const SharedSlots& slots) {
  LoopResult result;
  result.processes = slots.count();
  std::uint64_t first_start = UINT64_MAX;
  std::uint64_t last_end = 0;
  for (int i = 0; i < slots.count(); ++i) {
    const WorkerSample& sample = slots.sample(i);
    result.ops += sample.ops;
    result.worker_ops_min = i == 0 ? sample.ops : std::min(result.worker_ops_min, sample.ops);
    result.worker_ops_max = std::max(result.worker_ops_max, sample.ops);
    result.latency.merge(sample.latency);
    first_start = std::min(first_start, sample.start_ns);
    last_end = std::max(last_end, sample.end_ns);
  }
  if (last_end > first_start) result.wall_s = static_cast<double>(last_end - first_start) / 1e9;
  return result;
}

}  // namespace

std::vector<int> usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0)
    throw std::runtime_error(std::string("sched_getaffinity: ") + shmsession::errno_text(errno));
  std::vector<int> cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  if (cpus.empty()) throw std::runtime_error("sched_getaffinity: no usable CPU");
  return cpus;
}

LoopResult run_in_processes(int processes, const WorkerBody& body, Placement placement, std::chrono::seconds timeout) {
  if (processes < 1) throw std::invalid_argument("run_in_processes: processes must be >= 1");
  std::vector<int> cpus;
  if (placement.first_cpu >= 0) cpus = usable_cpus();
  SharedSlots slots(processes);
  Workers workers;
  std::fflush(nullptr);  // nothing buffered may be written twice
  const pid_t parent = ::getpid();
  for (int i = 0; i < processes; ++i) {
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error(std::string("fork: ") + shmsession::errno_text(errno));
    if (pid == 0) {
      const int cpu = cpus.empty() ? -1 : cpus[static_cast<std::size_t>(placement.first_cpu + i) % cpus.size()];
      run_worker(i, parent, slots, body, cpu);
    }
    workers.add(pid);
  }
  wait_for_workers(workers, slots, timeout);
  return merge_samples(slots);
}

}  // namespace shmsession::bench
