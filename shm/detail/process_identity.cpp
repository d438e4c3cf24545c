#include "shm/detail/process_identity.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

namespace shmsession::shm::detail {

std::optional<std::uint64_t> process_start_time(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return std::nullopt;
  buf[n] = '\0';
  // The command name may contain spaces and ')': fields resume after the last ')'.
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr) return std::nullopt;
  ++p;
  // Field 3 (state) is the first after ')'; field 22 (starttime) the 20th.
  char state = 0;
  for (int field = 3; field <= 22; ++field) {
    while (*p == ' ') ++p;
    if (*p == '\0') return std::nullopt;
    if (field == 3) state = *p;
    if (field == 22) {
      if (state == 'Z' || state == 'X') return std::nullopt;  // dead, not yet reaped
      return std::strtoull(p, nullptr, 10);
    }
    while (*p != ' ' && *p != '\0') ++p;
  }
  return std::nullopt;
}

namespace {

// getpid() is a real system call (about 1 us on a VM), and lock operations
// need the caller's identity every time: cache it, and forget it in the
// child of a fork.
std::atomic<pid_t> g_cached_pid{0};
std::atomic<std::uint64_t> g_cached_start{0};

void forget_identity_in_child() { g_cached_pid.store(0, std::memory_order_relaxed); }

ProcessIdentity load_identity() {
  static const bool registered = [] { return ::pthread_atfork(nullptr, nullptr, forget_identity_in_child) == 0; }();
  (void)registered;
  pid_t pid = ::getpid();
  g_cached_start.store(process_start_time(pid).value_or(0), std::memory_order_relaxed);
  g_cached_pid.store(pid, std::memory_order_release);
  return {pid, g_cached_start.load(std::memory_order_relaxed)};
}

}  // namespace

ProcessIdentity self_identity() {
  pid_t pid = g_cached_pid.load(std::memory_order_acquire);
  if (pid == 0) return load_identity();
  return {pid, g_cached_start.load(std::memory_order_relaxed)};
}

bool process_alive(pid_t pid, std::uint64_t start_time) {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
  std::optional<std::uint64_t> start = process_start_time(pid);
  return start && *start == start_time;
}

}  // namespace shmsession::shm::detail
