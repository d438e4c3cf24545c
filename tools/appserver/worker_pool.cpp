#include "tools/appserver/worker_pool.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <string>

#include "shm/store.hpp"
#include "tools/appserver/http_worker.hpp"
#include "tools/appserver/server_log.hpp"
#include "tools/shmbench/redis_peer.hpp"

namespace shmsession::appserver {
namespace {

constexpr auto kStartTimeout = std::chrono::seconds(10);
constexpr auto kStopTimeout = std::chrono::seconds(10);

void log(const std::string& line) { log_line(line); }

// A signal's description (sigdescr_np: glibc's thread-safe strsignal).
std::string signal_text(int signal) {
  const char* text = ::sigdescr_np(signal);
  return text != nullptr ? text : "signal " + std::to_string(signal);
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + signal_text(WTERMSIG(status));
  return "stopped";
}

class Workers {
 public:
  Workers(const ServeOptions& options, int redis_port) : options_(options), redis_port_(redis_port) {}

  // Forks worker `index`; its readiness byte goes to ready_fd.
  void start(int index, int ready_read_fd, int ready_write_fd) {
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error(std::string("fork: ") + shmsession::errno_text(errno));
    if (pid == 0) {
      ::close(ready_read_fd);
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(1);  // the supervisor died before prctl
      WorkerOptions w;
      w.sessions = options_.sessions;
      w.store = options_.store;
      w.redis_port = redis_port_;
      w.address = options_.address;
      w.port = options_.port;
      w.direct_port =
          options_.direct_port_base == 0 ? 0 : static_cast<std::uint16_t>(options_.direct_port_base + index);
      w.index = index;
      w.idle_timeout = options_.idle_timeout;
      w.ready_fd = ready_write_fd;
      int code = 1;
      try {
        code = run_worker(w);
      } catch (const std::exception& e) {
        log("worker " + std::to_string(index) + ": " + e.what());
      }
      std::fflush(nullptr);
      ::_exit(code);
    }
    live_[pid] = index;
  }

  // Reaps exited workers; returns how many exited with a failure.
  int reap(bool expected) {
    int failures = 0;
    for (;;) {
      int status = 0;
      const pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid <= 0) return failures;
      auto it = live_.find(pid);
      if (it == live_.end()) continue;
      const bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      if (!clean || !expected)
        log("worker " + std::to_string(it->second) + " (pid " + std::to_string(pid) + ") " + describe_status(status));
      if (!clean || !expected) ++failures;
      live_.erase(it);
    }
  }

  // SIGTERM to every live worker, then waits; SIGKILL after kStopTimeout.
  int stop(const sigset_t& waited) {
    for (const auto& [pid, index] : live_) ::kill(pid, SIGTERM);
    int failures = 0;
    const auto deadline = std::chrono::steady_clock::now() + kStopTimeout;
    while (!live_.empty()) {
      failures += reap(true);
      if (live_.empty()) break;
      if (std::chrono::steady_clock::now() > deadline) {
        for (const auto& [pid, index] : live_) {
          log("worker " + std::to_string(index) + " (pid " + std::to_string(pid) + ") did not stop: SIGKILL");
          ::kill(pid, SIGKILL);
        }
        ++failures;
        timespec second{1, 0};
        ::sigtimedwait(&waited, nullptr, &second);  // their SIGCHLD, or a second at most
        continue;
      }
      timespec tick{0, 50'000'000};
      ::sigtimedwait(&waited, nullptr, &tick);  // SIGCHLD, or a second SIGTERM: both just loop
    }
    return failures;
  }

  bool empty() const { return live_.empty(); }
  std::size_t size() const { return live_.size(); }
  std::string pids() const {
    std::string out;
    for (const auto& [pid, index] : live_) out += (out.empty() ? "" : " ") + std::to_string(pid);
    return out;
  }

 private:
  const ServeOptions& options_;
  const int redis_port_;
  std::map<pid_t, int> live_;  // pid -> worker index
};

// Waits until `expected` readiness bytes arrived; false if a worker exited
// first or the start timed out.
bool wait_ready(int fd, int expected, Workers& workers) {
  const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
  int ready = 0;
  while (ready < expected) {
    if (std::chrono::steady_clock::now() > deadline) {
      log("workers did not start within " + std::to_string(kStartTimeout.count()) + " s");
      return false;
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) > 0) {
      char bytes[64];
      const ssize_t n = ::read(fd, bytes, sizeof bytes);
      if (n > 0) ready += static_cast<int>(n);
    }
    if (workers.reap(false) > 0) return false;
  }
  return true;
}

// The redis-server of `--sessions redis`, or nullopt and *why.
std::optional<bench::RedisServer> start_session_server(std::string* why) {
  try {
    return bench::RedisServer::start("redis-server", why, {}, /*die_with_parent=*/true);
  } catch (const std::exception& e) {
    *why = e.what();
    return std::nullopt;
  }
}

}  // namespace

int serve(const ServeOptions& options) {
  if (options.sessions == SessionsIn::Store) {
    try {
      Store probe = Store::attach(options.store);  // a clear error before forking; detached again below
    } catch (const std::exception& e) {
      log("cannot attach store '" + options.store + "': " + e.what());
      return 1;
    }
  }
  if (std::optional<std::string> why = probe_listen(options.address, options.port, true)) {
    log(*why);
    return 1;
  }
  for (int k = 0; options.direct_port_base != 0 && k < options.workers; ++k)
    if (std::optional<std::string> why =
            probe_listen(options.address, static_cast<std::uint16_t>(options.direct_port_base + k), false)) {
      log(*why);
      return 1;
    }
  // Started before the signal mask below (a server must not inherit it) and
  // stopped by its destructor on every return.
  std::string why;
  std::optional<bench::RedisServer> redis =
      options.sessions == SessionsIn::Redis ? start_session_server(&why) : std::nullopt;
  if (options.sessions == SessionsIn::Redis && !redis) {
    log("cannot start redis-server for the sessions: " + why);
    return 1;
  }
  sigset_t waited;
  sigemptyset(&waited);
  sigaddset(&waited, SIGINT);
  sigaddset(&waited, SIGTERM);
  sigaddset(&waited, SIGCHLD);
  ::pthread_sigmask(SIG_BLOCK, &waited, nullptr);  // the workers inherit it and unblock once ready
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) {
    log(std::string("pipe: ") + shmsession::errno_text(errno));
    return 1;
  }
  Workers workers(options, redis ? redis->port() : 0);
  try {
    for (int k = 0; k < options.workers; ++k) workers.start(k, ready[0], ready[1]);
  } catch (const std::exception& e) {
    log(std::string("cannot start workers: ") + e.what());
    workers.stop(waited);
    return 1;
  }
  ::close(ready[1]);
  const bool started = wait_ready(ready[0], options.workers, workers);
  ::close(ready[0]);
  if (!started) {
    workers.stop(waited);
    return 1;
  }
  std::string where = "http://" + options.address + ":" + std::to_string(options.port) + "/";
  if (options.direct_port_base != 0)
    where += " (worker k also on port " + std::to_string(options.direct_port_base) + "+k)";
  const std::string sessions = redis ? "sessions in Redis (redis-server pid " + std::to_string(redis->pid()) +
                                           " on 127.0.0.1:" + std::to_string(redis->port()) + ")"
                                     : "store '" + options.store + "'";
  log(std::to_string(options.workers) + " workers (pids " + workers.pids() + ") serving " + sessions + " on " + where);
  int failures = 0;
  for (;;) {
    int signal = 0;
    if (::sigwait(&waited, &signal) != 0) continue;
    if (signal == SIGCHLD) {
      failures += workers.reap(false);
      if (workers.empty()) {
        log("every worker exited");
        return 1;
      }
      continue;
    }
    log("stopping (" + signal_text(signal) + ")");
    failures += workers.stop(waited);
    log(failures == 0 ? "stopped" : "stopped; a worker failed");
    return failures == 0 ? 0 : 1;
  }
}

}  // namespace shmsession::appserver
