#include "tools/shmbench/peer_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "tools/common/loopback_port.hpp"
#include "tools/shmbench/interrupt_cleanup.hpp"

extern char** environ;

namespace shmsession::bench {

namespace {
constexpr auto kStopGrace = std::chrono::seconds{3};
}  // namespace

int pick_free_port() { return tools::free_loopback_port(); }

namespace {

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

}  // namespace

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

void kill_and_reap(pid_t pid, std::chrono::milliseconds grace) noexcept {
  ::kill(pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    const pid_t done = ::waitpid(pid, nullptr, WNOHANG);
    if (done == pid || (done < 0 && errno != EINTR)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

PeerProcess::PeerProcess(pid_t pid, int port)
    : pid_(pid), port_(port), owner_(::getpid()), cleanup_slot_(register_process_cleanup(pid)) {}

PeerProcess::PeerProcess(PeerProcess&& other) noexcept
    : pid_(other.pid_), port_(other.port_), owner_(other.owner_), cleanup_slot_(other.cleanup_slot_) {
  other.pid_ = -1;
  other.cleanup_slot_ = -1;
}

PeerProcess::~PeerProcess() { stop(); }

void PeerProcess::stop() noexcept {
  if (::getpid() != owner_) return;
  if (pid_ > 0) kill_and_reap(pid_, kStopGrace);
  pid_ = -1;
  unregister_cleanup(cleanup_slot_);
  cleanup_slot_ = -1;
}

}  // namespace shmsession::bench
