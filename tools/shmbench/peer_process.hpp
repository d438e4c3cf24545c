// PeerProcess: the one launcher of every process a measurement runs beside
// it: a peer server (redis-server, memcached, a Redis replica) this run
// starts on 127.0.0.1 at a free port, and our own services (the backup
// daemon, the sync agent) in forked children. Either way it waits for
// readiness on a condition (the server answers, the daemon listens), never
// for a fixed time; it stops by pid (SIGTERM, a bounded wait, then SIGKILL)
// and always reaps; a server that exits during startup or never becomes
// ready is stopped and retried on another port.
//
// Thread safety: a PeerProcess may not be used by two threads at once.
// fork() forks, so call it while no other thread of the process is inside
// a Store call (see shm/store.hpp on fork()).
// Cross-process safety: it stops its process only in the process that
// started it, so a forked worker leaving by any path never stops the
// parent's peer. Its pid is registered with interrupt_cleanup.hpp while it
// runs, so SIGINT never leaves it behind. A forked child resets the
// interrupt handlers (the parent's cleanup is not its own), dies with its
// parent (PR_SET_PDEATHSIG) and leaves by _exit (the parent's segment
// guards and servers are never destroyed in it).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace shmsession::bench {

// How to start one server program and tell that it is ready.
struct ServerLaunch {
  std::string program;                                     // looked up in PATH
  std::function<std::vector<std::string>(int port)> args;  // after the program's name
  std::function<bool(int port)> ready;                     // polled until true
  std::string ready_what;                                  // "answer PING": for the error message
  // The server gets SIGTERM when the calling thread ends (PR_SET_PDEATHSIG),
  // so a caller killed by SIGKILL leaves no server behind; only for a caller
  // whose calling thread lives as long as the server should (the shop's
  // supervisor), and it starts with no signal blocked whatever the caller
  // blocks.
  bool die_with_parent = false;
};

// First thing in a child just forked from `parent` (a PeerProcess::fork
// service, a ProcessGroup worker): resets the interrupt handlers (the
// parent's cleanup is not the child's) and makes the child die with its
// parent (SIGKILL); _exits at once if the parent is already gone.
void follow_parent(pid_t parent) noexcept;

class PeerProcess {
 public:
  enum class Readiness { Ready, Ended, TimedOut };

  // Starts the server on a free loopback port with stdin/stdout/stderr on
  // /dev/null (nothing of it may reach our stdout) and waits until
  // launch.ready(port) holds (at most 5 s per attempt; 3 attempts, each on
  // another port in case one was taken). Returns nullopt and sets *why if
  // the program cannot be run at all (not installed); throws
  // std::runtime_error if it runs but never becomes ready.
  static std::optional<PeerProcess> launch(const ServerLaunch& launch, std::string* why);

  // Forks a child that runs `body` and exits with its return value (1 and
  // a line "shmbench: <name>: <why>" on stderr if it throws).
  // Throws std::runtime_error if fork fails.
  static PeerProcess fork(std::string name, const std::function<int()>& body);

  PeerProcess(PeerProcess&& other) noexcept;
  PeerProcess& operator=(PeerProcess&&) = delete;
  PeerProcess(const PeerProcess&) = delete;
  ~PeerProcess();

  const std::string& name() const noexcept { return name_; }
  int port() const noexcept { return port_; }  // 0 for a forked child
  pid_t pid() const noexcept { return pid_; }

  // Polls `ready` until it holds, the process ends or `timeout` passes.
  Readiness wait_ready(const std::function<bool()>& ready, std::chrono::milliseconds timeout);
  // Whether the process still runs; reaps it (and remembers how it ended)
  // if it has exited.
  bool running() noexcept;
  // "exited with status 3", "killed by signal 9", "running".
  std::string how_it_ended() const;

  // SIGTERM, then SIGKILL if it still runs after `grace`; reaps it. Returns
  // true if it exited with status 0 (a service told to stop leaves cleanly).
  // Does nothing but report outside the starting process or once stopped.
  bool stop(std::chrono::milliseconds grace = std::chrono::seconds{5}) noexcept;

 private:
  PeerProcess(std::string name, pid_t pid, int port);
  void reaped(int status) noexcept;

  std::string name_;
  pid_t pid_ = -1;
  int port_ = 0;
  pid_t owner_ = -1;
  int cleanup_slot_ = -1;  // see interrupt_cleanup.hpp
  bool ended_ = false;
  int status_ = 0;  // as waitpid reports it, once ended_
};

}  // namespace shmsession::bench
