// BackupServer: the backup daemon's network loop (Boost.Asio, one thread).
// It listens on a TCP address (127.0.0.1 by default), runs one StandbyLink
// per connection, and writes what the link says to send. One agent feeds
// the standby at a time: a new authenticated Hello supersedes the previous
// agent connection (its link may be half-open). Restore clients are served
// beside it.
//
// Timeouts: a connection that has not completed its first frame within
// handshake_timeout, or an agent silent for idle_timeout (agents send a
// Heartbeat every second when idle), is closed with a log line.
//
// Thread safety: run() on one thread; stop() from any thread or a signal
// handler installed by the caller through asio. Cross-process safety: the
// standby is an ordinary Store (see StandbyLink).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "shm/store.hpp"
#include "sync/wire/frame_limits.hpp"
#include "sync/wire/key.hpp"

namespace shmsession::sync {

struct BackupServerOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 0;  // 0: any free port (port() tells which)
  std::chrono::milliseconds handshake_timeout{5000};
  // Three heartbeats of an idle agent (AgentOptions::heartbeat_interval).
  std::chrono::milliseconds idle_timeout{3000};
  wire::FrameLimits limits;
  // When set, the key ring is read again from this file for every new
  // connection, so a key rotation needs no restart; a file that cannot be
  // read leaves the keys in use (logged).
  std::string key_file;
  // One line per event (connections, resyncs, the reason a link closed).
  std::function<void(const std::string&)> log;
  // Stop on SIGTERM and SIGINT (the daemon); tests leave signals alone.
  bool stop_on_signals = false;
};

class BackupServer {
 public:
  // Binds and listens at once, so port() is known before run().
  // Throws: Error(Io) naming the address when it cannot bind or listen.
  // Accepts a client that uses any key of `keys` (wire_format.md).
  BackupServer(Store& standby, const wire::KeyRing& keys, BackupServerOptions options);
  ~BackupServer();
  BackupServer(const BackupServer&) = delete;
  BackupServer& operator=(const BackupServer&) = delete;

  std::uint16_t port() const noexcept;
  // Serves until stop() (or a signal, see options). Throws: store errors
  // other than those one connection causes.
  void run();
  // Thread-safe.
  void stop();
  // Closes the agent's connection (the agent reconnects and resyncs).
  // Thread-safe. For operators moving an agent, and for link-cut tests.
  void drop_agent();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace shmsession::sync
