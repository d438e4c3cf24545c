// PeerProcess: a peer server (redis-server, memcached) this run starts on
// 127.0.0.1 at a free port and stops by pid, and the helpers both peers
// share: finding a free loopback port and spawning a program quietly.
//
// Thread safety: a PeerProcess may not be used by two threads at once.
// Cross-process safety: it stops its server only in the process that
// started it, so a forked worker leaving by any path never stops the
// parent's peer. Its pid is registered with interrupt_cleanup.hpp while it
// runs, so SIGINT never leaves it behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace shmsession::bench {

// A loopback port that was free a moment ago, below the ephemeral range so
// no connect() takes it before the peer binds it (tools/common/loopback_port.hpp).
// Throws std::runtime_error if none is free.
int pick_free_port();

// Spawns argv[0] (looked up in PATH) with stdin/stdout/stderr on /dev/null:
// nothing of it may reach our stdout. Returns the pid, or -errno if the
// program could not be run. With `die_with_parent` the program gets SIGTERM
// when the calling thread ends (PR_SET_PDEATHSIG), so a caller killed by
// SIGKILL leaves no server behind; only for a caller whose calling thread
// lives as long as the server should (the shop's supervisor), and it starts
// with no signal blocked whatever the caller blocks.
pid_t spawn_quietly(std::vector<std::string> argv, bool die_with_parent = false);

// SIGTERM, then SIGKILL if still running after `grace`; reaps the process.
void kill_and_reap(pid_t pid, std::chrono::milliseconds grace) noexcept;

class PeerProcess {
 public:
  PeerProcess(pid_t pid, int port);
  PeerProcess(PeerProcess&& other) noexcept;
  PeerProcess& operator=(PeerProcess&&) = delete;
  PeerProcess(const PeerProcess&) = delete;
  ~PeerProcess();

  int port() const noexcept { return port_; }
  pid_t pid() const noexcept { return pid_; }
  // The process exited by itself and was reaped: stop() only unregisters it.
  void forget_reaped() noexcept { pid_ = -1; }
  // SIGTERM, then SIGKILL if still running after 3 s; reaps the process.
  // Does nothing outside the starting process or when already stopped.
  void stop() noexcept;

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  pid_t owner_ = -1;
  int cleanup_slot_ = -1;  // see interrupt_cleanup.hpp
};

}  // namespace shmsession::bench
