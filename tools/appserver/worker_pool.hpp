// The app server's supervisor: forks N worker processes (http_worker.hpp),
// each binding its own SO_REUSEPORT socket to the shared port, waits until
// every one listens, then forwards SIGTERM/SIGINT to them and reaps them.
// Workers get SIGTERM if the supervisor dies (PR_SET_PDEATHSIG), so no
// worker outlives it holding session locks. A worker that dies is logged and
// not restarted (the others keep serving the port; the locks it held pass
// to the next asker within 25 ms, as for any dead holder).
//
// With sessions in Redis it first starts a redis-server of its own on a free
// loopback port (as shmbench starts its peers: no persistence, stopped by
// pid when the supervisor stops, and by the kernel's SIGTERM if the
// supervisor dies: PR_SET_PDEATHSIG); the workers connect to it.
//
// Thread safety: serve() forks; call it from a single-threaded process that
// has not attached the store.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "tools/appserver/http_worker.hpp"

namespace shmsession::appserver {

struct ServeOptions {
  SessionsIn sessions = SessionsIn::Store;
  std::string store;  // with SessionsIn::Store
  std::string address = "127.0.0.1";
  std::uint16_t port = 8080;
  int workers = 4;
  // Worker k also listens on direct_port_base + k, alone (0: no such ports).
  // SO_REUSEPORT lets no client choose its worker; these ports do.
  std::uint16_t direct_port_base = 0;
  std::chrono::seconds idle_timeout{30};
};

// Returns the process exit status: 0 after SIGTERM/SIGINT when every worker
// stopped cleanly, 1 when the server cannot start or a worker failed.
int serve(const ServeOptions& options);

}  // namespace shmsession::appserver
