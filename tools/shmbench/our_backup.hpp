// OurBackup: shmsession's backup as the `replicate` workload attaches it to
// a primary: the backup daemon (sync::BackupServer on 127.0.0.1, a port it
// picks itself, serving a standby segment) and the sync agent
// (sync::Agent, AgentOptions defaults but for the port, the log and
// stopping on signals), each in a forked child (PeerProcess::fork), with one
// fresh pre-shared key. Both stop on SIGTERM (the agent ships what is left
// first) and are reaped.
//
// Thread safety: construct, wait and stop from one thread, while no other
// thread of the process is inside a Store call (construction forks).
// Cross-process safety: the children attach the segments by name; the
// parent only reads the primary's agent status and the standby's position.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "shm/agent_seat.hpp"
#include "shm/store.hpp"
#include "tools/shmbench/peer_process.hpp"

namespace shmsession::bench {

class OurBackup {
 public:
  // Starts the daemon, waits for its port, then starts the agent. `log`
  // receives the children's log lines (from the children).
  // Throws std::runtime_error if a child dies or the daemon never listens.
  OurBackup(const std::string& primary_name, const std::string& standby_name,
            const std::function<void(const std::string&)>& log);

  std::uint16_t port() const noexcept { return port_; }

  // Waits until the standby follows `primary` up to change sequence
  // `target` (its applied position >= target, same store id). Returns the
  // time it took. Throws std::runtime_error naming the child that died, or
  // at `timeout` with both positions.
  std::chrono::nanoseconds wait_applied(Store& primary, Store& standby, std::uint64_t target,
                                        std::chrono::seconds timeout);

  // The agent's status once it has published an acknowledged position >=
  // `target`: its byte and frame counters then cover every change before
  // `target`. Throws as wait_applied.
  AgentStatus settled_status(Store& primary, std::uint64_t target, std::chrono::seconds timeout);

  // SIGTERM to the agent, then to the daemon; reaps both. Returns "" if
  // both left cleanly, else how each ended.
  std::string stop();

 private:
  void check_running();

  std::uint16_t port_ = 0;
  std::optional<PeerProcess> daemon_;
  std::optional<PeerProcess> agent_;
};

// Empty if `standby` holds exactly `primary`'s sessions (the same ids,
// versions, attribute names, values and flags), else the first difference.
std::string first_difference(Store& primary, Store& standby);

}  // namespace shmsession::bench
