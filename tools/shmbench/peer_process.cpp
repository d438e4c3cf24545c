#include "tools/shmbench/peer_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
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

pid_t spawn_quietly(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
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
