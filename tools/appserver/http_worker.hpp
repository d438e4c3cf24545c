// One app-server worker process: attaches the store, makes the process's
// sync::Client (or, with sessions in Redis, connects to the redis-server the
// supervisor started: tools/appserver/redis_sessions.hpp) and serves HTTP/1.1 (Boost.Beast, keep-alive) on a socket of
// its own bound with SO_REUSEPORT to the port every worker shares, so the
// kernel spreads connections over the workers; optionally also on a port of
// its own (`direct_port`), so that a test or a person can address worker k.
// One thread runs the event loop and serves each request synchronously
// (a session cycle takes microseconds; a lock held by another worker is
// handed over at that worker's next safe point, by its Client's watcher).
//
// Worker 0 also sweeps expired sessions (Store::expire) every 10 s; Redis
// expires its sessions by itself.
//
// SIGTERM/SIGINT: stop accepting, close the connections, destroy the Client
// (it commits pending edits and releases every process lock), exit 0.
//
// Thread safety: run_worker owns the process; call it once, in a process
// forked for it (never in one that already runs a Client of the store).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace shmsession::appserver {

// Where the shop keeps its sessions.
enum class SessionsIn { Store, Redis };

struct WorkerOptions {
  SessionsIn sessions = SessionsIn::Store;
  std::string store;   // with SessionsIn::Store
  int redis_port = 0;  // with SessionsIn::Redis: its redis-server on 127.0.0.1
  std::string address = "127.0.0.1";
  std::uint16_t port = 8080;              // shared by every worker (SO_REUSEPORT)
  std::uint16_t direct_port = 0;          // this worker's own port; 0: none
  int index = 0;                          // shown in /api/session
  std::chrono::seconds idle_timeout{30};  // a keep-alive connection silent this long is closed
  int ready_fd = -1;                      // one byte written here once listening (-1: none)
};

// Opens and closes a listening socket on address:port as a worker would
// (shared: with SO_REUSEPORT): why it cannot, or nullopt. For a clear error
// before forking; a worker still reports its own bind failure.
std::optional<std::string> probe_listen(const std::string& address, std::uint16_t port, bool shared);

// Serves until SIGTERM/SIGINT. Returns the process exit status: 0 after a
// clean stop, 1 when it cannot start (one line on stderr says why).
int run_worker(const WorkerOptions& options);

}  // namespace shmsession::appserver
