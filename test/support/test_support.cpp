#include "test/support/test_support.hpp"

#include <system_error>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "shm/store.hpp"

extern char** environ;

namespace shmsession::test {
namespace {

std::atomic<int> g_counter{0};

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

namespace {
// A store's segment, and every segment built for it under a private name
// ("NAME~rebuild", "NAME~creating.*": shm/recovery.md), in case a test
// killed its builder (a backup daemon stopped while it reserved its
// standby leaves a draft that holds the reserved memory).
void remove_store_segments(const std::string& name) {
  Store::remove(name);
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm", ec)) {
    const std::string file = entry.path().filename().string();
    if (file.starts_with(name + "~")) ::shm_unlink(file.c_str());
  }
}
}  // namespace

Store make_store(const SegmentGuard& g, const CreateOptions& options) { return Store::create(g.name(), options); }

SegmentGuard::SegmentGuard(const std::string& tag)
    : name_("t" + std::to_string(::getpid()) + "_" + tag + "_" + std::to_string(g_counter++)) {
  remove_store_segments(name_);
}

SegmentGuard::~SegmentGuard() {
  try {
    remove_store_segments(name_);
  } catch (...) {
    // A destructor must not throw; a leftover segment is reported by the
    // next run's constructor removing it.
  }
}

ChildProcess::ChildProcess(const std::function<int()>& body) {
  std::fflush(nullptr);
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error(std::string("fork: ") + shmsession::errno_text(errno));
  if (pid_ == 0) {
    // A test killed by a signal (a CTest timeout, a crash) never runs the
    // destructor below: its children die with it instead of living on
    // with their segments, ports and locks. (The signal comes when the
    // forking thread ends: tests fork from the thread that waits.) A
    // parent already gone before this line is caught by the check after.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(99);
    int code = 99;
    try {
      code = body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child %d: %s\n", ::getpid(), e.what());
    } catch (...) {
      std::fprintf(stderr, "child %d: unknown exception\n", ::getpid());
    }
    std::fflush(nullptr);
    ::_exit(code);
  }
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept : pid_(other.pid_), status_(other.status_) {
  other.pid_ = -1;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && status_ < 0) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
}

int ChildProcess::wait() {
  if (status_ >= 0) return status_;
  int st = 0;
  while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
  }
  status_ = decode_status(st);
  return status_;
}

int ChildProcess::wait_for(std::chrono::milliseconds timeout) {
  if (status_ >= 0) return status_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int st = 0;
    pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = decode_status(st);
      return status_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    ::usleep(1000);
  }
}

void ChildProcess::kill(int signal) {
  if (pid_ > 0 && status_ < 0) ::kill(pid_, signal);
}

Signal::Signal() {
  if (::pipe2(fds_, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
}

Signal::~Signal() {
  for (int fd : fds_)
    if (fd >= 0) ::close(fd);
}

void Signal::notify() {
  char b = 1;
  while (::write(fds_[1], &b, 1) < 0 && errno == EINTR) {
  }
}

bool Signal::wait(std::chrono::milliseconds timeout) {
  pollfd p{fds_[0], POLLIN, 0};
  int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (r <= 0) return false;
  char b;
  return ::read(fds_[0], &b, 1) == 1;
}

std::optional<Errc> code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  return std::nullopt;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

CommandResult run_command(const std::vector<std::string>& argv, const std::string& input,
                          std::chrono::milliseconds timeout) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC))
    throw std::runtime_error("pipe2 failed");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  if (rc != 0) {
    ::close(in[1]);
    ::close(out[0]);
    ::close(err[0]);
    throw std::runtime_error("posix_spawn " + argv[0] + ": " + shmsession::errno_text(rc));
  }
  ::signal(SIGPIPE, SIG_IGN);
  std::size_t written = 0;
  if (input.empty()) {
    ::close(in[1]);
    in[1] = -1;
  }
  CommandResult result;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool out_open = true, err_open = true;
  while (out_open || err_open || in[1] >= 0) {
    std::vector<pollfd> fds;
    if (out_open) fds.push_back({out[0], POLLIN, 0});
    if (err_open) fds.push_back({err[0], POLLIN, 0});
    if (in[1] >= 0) fds.push_back({in[1], POLLOUT, 0});
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      throw std::runtime_error("command timed out: " + argv[0]);
    }
    if (::poll(fds.data(), fds.size(), static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    for (auto& p : fds) {
      if (!p.revents) continue;
      if (p.fd == in[1]) {
        ssize_t n = ::write(in[1], input.data() + written, input.size() - written);
        if (n > 0) written += static_cast<std::size_t>(n);
        if (n < 0 || written == input.size()) {
          ::close(in[1]);
          in[1] = -1;
        }
        continue;
      }
      char buf[4096];
      ssize_t n = ::read(p.fd, buf, sizeof buf);
      std::string& target = p.fd == out[0] ? result.out : result.err;
      if (n > 0) {
        target.append(buf, static_cast<std::size_t>(n));
      } else {
        (p.fd == out[0] ? out_open : err_open) = false;
      }
    }
  }
  ::close(out[0]);
  ::close(err[0]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  result.exit_code = decode_status(st);
  return result;
}

namespace {

// Polls the syscall file of a process or a thread until it shows a futex
// wait. A thread that is gone (the file cannot be opened) never will.
bool wait_until_syscall_is_futex(const std::string& path, bool gone_is_final, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    std::ifstream in(path);
    if (!in && gone_is_final) return false;
    long number = -1;
    if (in >> number && number == SYS_futex) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace

PinnedToCpu::PinnedToCpu(int cpu) {
  if (::sched_getaffinity(0, sizeof saved_, &saved_) != 0)
    throw std::system_error(errno, std::generic_category(), "sched_getaffinity");
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu >= 0 ? cpu : ::sched_getcpu(), &one);
  if (::sched_setaffinity(0, sizeof one, &one) != 0)
    throw std::system_error(errno, std::generic_category(), "sched_setaffinity to CPU " + std::to_string(cpu));
}

PinnedToCpu::~PinnedToCpu() { ::sched_setaffinity(0, sizeof saved_, &saved_); }

bool wait_until_in_futex(pid_t pid, std::chrono::milliseconds timeout) {
  return wait_until_syscall_is_futex("/proc/" + std::to_string(pid) + "/syscall", false, timeout);
}

bool run_on_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return ::sched_setaffinity(0, sizeof set, &set) == 0;
}

CpuAffinityKept::CpuAffinityKept() { ::sched_getaffinity(0, sizeof saved_, &saved_); }
CpuAffinityKept::~CpuAffinityKept() { ::sched_setaffinity(0, sizeof saved_, &saved_); }

bool wait_until_thread_in_futex(pid_t tid, std::chrono::milliseconds timeout) {
  return wait_until_syscall_is_futex(
      "/proc/" + std::to_string(::getpid()) + "/task/" + std::to_string(tid) + "/syscall", true, timeout);
}

pid_t spawn_logged(const std::vector<std::string>& argv, const std::string& log, bool own_group) {
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    if (own_group) ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // the test died: the child goes too
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    std::perror("execv");
    ::_exit(127);
  }
  if (own_group) ::setpgid(pid, pid);
  return pid;
}

}  // namespace shmsession::test
