#include "tools/shmbench/peer_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <thread>

#include "shm/error.hpp"
#include "tools/common/loopback_port.hpp"
#include "tools/shmbench/interrupt_cleanup.hpp"

extern char** environ;

namespace shmsession::bench {

namespace {

constexpr auto kStartupTimeout = std::chrono::seconds{5};
constexpr int kStartAttempts = 3;
constexpr auto kPeerPollPause = std::chrono::milliseconds{2};

// fork + exec, for what posix_spawn cannot do (PR_SET_PDEATHSIG). The child
// runs only async-signal-safe calls; an exec failure comes back as errno
// through a close-on-exec pipe.
pid_t spawn_tied_to_parent(std::vector<char*>& argv) {
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) return -errno;
  const int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0) {
    const int error = errno;
    ::close(report[0]);
    ::close(report[1]);
    return -error;
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    int error = 0;
    if (::prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || ::getppid() != parent) error = ESRCH;
    sigset_t none;
    sigemptyset(&none);
    ::pthread_sigmask(SIG_SETMASK, &none, nullptr);
    for (int fd = 0; fd <= 2 && error == 0; ++fd)
      if (::dup2(null_fd, fd) < 0) error = errno;
    if (error == 0) {
      ::execvp(argv[0], argv.data());
      error = errno;
    }
    [[maybe_unused]] const ssize_t n = ::write(report[1], &error, sizeof error);
    ::_exit(127);
  }
  const int fork_error = pid < 0 ? errno : 0;
  ::close(report[1]);
  ::close(null_fd);
  int error = fork_error;
  if (pid > 0) {
    ssize_t n = 0;
    while ((n = ::read(report[0], &error, sizeof error)) < 0 && errno == EINTR) {
    }
    if (n == static_cast<ssize_t>(sizeof error)) {
      while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
    } else {
      error = 0;  // exec succeeded: the pipe closed with nothing in it
    }
  }
  ::close(report[0]);
  return error == 0 ? pid : -error;
}

// Spawns argv[0] (looked up in PATH) with stdin/stdout/stderr on
// /dev/null. Returns the pid, or -errno if the program could not be run.
pid_t spawn_quietly(std::vector<std::string> args, bool die_with_parent) {
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  if (die_with_parent) return spawn_tied_to_parent(argv);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  for (int fd = 0; fd <= 2; ++fd)
    posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0);
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, args.front().c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -rc;
}

[[noreturn]] void run_child(const std::string& name, pid_t parent, const std::function<int()>& body) {
  follow_parent(parent);
  int status = 1;
  try {
    status = body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shmbench: %s: %s\n", name.c_str(), e.what());
  } catch (...) {
    std::fprintf(stderr, "shmbench: %s: unknown exception\n", name.c_str());
  }
  std::fflush(stderr);
  ::_exit(status);  // never run the parent's destructors in the child
}

}  // namespace

void follow_parent(pid_t parent) noexcept {
  for (int signal_number : {SIGINT, SIGTERM, SIGHUP})
    ::signal(signal_number, SIG_DFL);  // the parent's interrupt cleanup is not ours
  // A parent killed outright cannot stop or reap us: do not outlive it.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(2);
}

std::optional<PeerProcess> PeerProcess::launch(const ServerLaunch& launch, std::string* why) {
  std::string last_failure;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    const int port = tools::free_loopback_port();
    std::vector<std::string> args = launch.args(port);
    args.insert(args.begin(), launch.program);
    const pid_t pid = spawn_quietly(std::move(args), launch.die_with_parent);
    if (pid < 0) {
      if (why != nullptr) *why = "cannot run " + launch.program + ": " + shmsession::errno_text(static_cast<int>(-pid));
      return std::nullopt;
    }
    PeerProcess server(launch.program, pid, port);  // stops it on every failing path below
    const Readiness readiness = server.wait_ready([&] { return launch.ready(port); }, kStartupTimeout);
    if (readiness == Readiness::Ready) return server;
    last_failure = (readiness == Readiness::Ended ? "exited during startup on port "
                                                  : "did not " + launch.ready_what + " within 5 s on port ") +
                   std::to_string(port);
  }
  throw std::runtime_error(launch.program + " " + last_failure + " (" + std::to_string(kStartAttempts) + " attempts)");
}

PeerProcess PeerProcess::fork(std::string name, const std::function<int()>& body) {
  std::fflush(nullptr);  // nothing buffered may be written twice
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork of " + name + ": " + shmsession::errno_text(errno));
  if (pid == 0) run_child(name, parent, body);
  return PeerProcess(std::move(name), pid, 0);
}

PeerProcess::PeerProcess(std::string name, pid_t pid, int port)
    : name_(std::move(name)),
      pid_(pid),
      port_(port),
      owner_(::getpid()),
      cleanup_slot_(register_process_cleanup(pid)) {}

PeerProcess::PeerProcess(PeerProcess&& other) noexcept
    : name_(std::move(other.name_)),
      pid_(other.pid_),
      port_(other.port_),
      owner_(other.owner_),
      cleanup_slot_(other.cleanup_slot_),
      ended_(other.ended_),
      status_(other.status_) {
  other.pid_ = -1;
  other.cleanup_slot_ = -1;
}

PeerProcess::~PeerProcess() { stop(); }

void PeerProcess::reaped(int status) noexcept {
  ended_ = true;
  status_ = status;
  unregister_cleanup(cleanup_slot_);
  cleanup_slot_ = -1;
}

PeerProcess::Readiness PeerProcess::wait_ready(const std::function<bool()>& ready, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (!running()) return Readiness::Ended;
    if (ready()) return Readiness::Ready;
    if (std::chrono::steady_clock::now() > deadline) return Readiness::TimedOut;
    std::this_thread::sleep_for(kPeerPollPause);
  }
}

bool PeerProcess::running() noexcept {
  if (ended_ || pid_ <= 0 || ::getpid() != owner_) return false;
  int status = 0;
  const pid_t done = ::waitpid(pid_, &status, WNOHANG);
  if (done == pid_) {
    reaped(status);
    return false;
  }
  return done == 0 || errno == EINTR;
}

std::string PeerProcess::how_it_ended() const {
  if (!ended_) return "running";
  if (WIFSIGNALED(status_)) return "killed by signal " + std::to_string(WTERMSIG(status_));
  if (WIFEXITED(status_)) return "exited with status " + std::to_string(WEXITSTATUS(status_));
  return "ended";
}

bool PeerProcess::stop(std::chrono::milliseconds grace) noexcept {
  if (pid_ <= 0 || ::getpid() != owner_) return false;
  if (!ended_) {
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + grace;
    while (running() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(kPeerPollPause);
    if (!ended_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      reaped(status);
    }
  }
  return WIFEXITED(status_) && WEXITSTATUS(status_) == 0;
}

}  // namespace shmsession::bench
