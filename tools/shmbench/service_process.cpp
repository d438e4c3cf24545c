#include "tools/shmbench/service_process.hpp"

#include <signal.h>
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
#include "tools/shmbench/interrupt_cleanup.hpp"

namespace shmsession::bench {

namespace {

[[noreturn]] void run_child(const std::string& name, pid_t parent, const std::function<int()>& body) {
  for (int signal_number : {SIGINT, SIGTERM, SIGHUP})
    ::signal(signal_number, SIG_DFL);  // the parent's interrupt cleanup is not ours
  // A parent killed outright cannot stop us: do not outlive it.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(2);
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

ServiceProcess ServiceProcess::start(std::string name, const std::function<int()>& body) {
  std::fflush(nullptr);  // nothing buffered may be written twice
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork of " + name + ": " + shmsession::errno_text(errno));
  if (pid == 0) run_child(name, parent, body);
  return ServiceProcess(std::move(name), pid);
}

ServiceProcess::ServiceProcess(std::string name, pid_t pid)
    : name_(std::move(name)), pid_(pid), owner_(::getpid()), cleanup_slot_(register_process_cleanup(pid)) {}

ServiceProcess::ServiceProcess(ServiceProcess&& other) noexcept
    : name_(std::move(other.name_)),
      pid_(other.pid_),
      owner_(other.owner_),
      cleanup_slot_(other.cleanup_slot_),
      ended_(other.ended_),
      status_(other.status_) {
  other.pid_ = -1;
  other.cleanup_slot_ = -1;
}

ServiceProcess::~ServiceProcess() { stop(); }

void ServiceProcess::reaped(int status) noexcept {
  ended_ = true;
  status_ = status;
  unregister_cleanup(cleanup_slot_);
  cleanup_slot_ = -1;
}

bool ServiceProcess::running() noexcept {
  if (ended_ || pid_ <= 0 || ::getpid() != owner_) return false;
  int status = 0;
  const pid_t done = ::waitpid(pid_, &status, WNOHANG);
  if (done == pid_) {
    reaped(status);
    return false;
  }
  return done == 0 || errno == EINTR;
}

std::string ServiceProcess::how_it_ended() const {
  if (!ended_) return "running";
  if (WIFSIGNALED(status_)) return "killed by signal " + std::to_string(WTERMSIG(status_));
  if (WIFEXITED(status_)) return "exited with status " + std::to_string(WEXITSTATUS(status_));
  return "ended";
}

bool ServiceProcess::stop(std::chrono::milliseconds grace) noexcept {
  if (pid_ <= 0 || ::getpid() != owner_) return false;
  if (!ended_) {
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + grace;
    while (running() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds{5});
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
