// RedisSink: the sync agent's Redis sink (sync/hosts/hosts.md, "Shipping"
// and "Being asked to release"). One per host store, in the agent
// (`shmsession-agent run STORE --redis HOST:PORT[,...] --host-id ID`),
// on a thread of its own. It
//   - follows the store's change log and ships every committed change of
//     a session this host owns to Redis (Ownership::ship: the changed
//     attributes only, fenced by the owner's token and the base version),
//     the whole session after ownership was taken or the agent started;
//   - renews the leases of the sessions this host owns (every lease / 3),
//     and marks as lost those another host took meanwhile;
//   - answers release requests (on the host's channel): it takes the
//     session's process lock (the local holder is asked to release and
//     flushes its edits first), ships what is left, releases in Redis,
//     records the release, lets the process lock go and tells the host
//     queued first;
//   - a session removed or expired here is emptied in Redis and released.
// It writes the host's configuration into the host's records (HostRecords)
// as it starts, where HostGates read it.
//
// Errors: construction throws Error(AlreadyExists) when another sink runs
// on the store, Error(InvalidArgument) for a bad configuration or a store
// whose records belong to another host id, Error(Io) when no Redis seed
// answers. run() never throws for Redis trouble: it logs, waits and
// retries (the store keeps the changes; they are shipped when Redis
// answers again).
//
// Thread safety: run() on one thread; stop() and stats() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "shm/store.hpp"
#include "sync/hosts/host_records.hpp"
#include "sync/hosts/redis_cluster.hpp"

namespace shmsession::hosts {

struct RedisSinkOptions {
  HostConfig config;  // host id, Redis seeds, key prefix, lease
  std::uint64_t records_bytes = std::uint64_t{64} << 20;
  // The longest sleep between looks at the change log and the release
  // requests (either wakes the sink earlier when it has something).
  std::chrono::milliseconds poll{1};
  std::size_t max_batch_entries = 256;
  // A changed session is shipped this long after its first change not yet
  // shipped, with every change made meanwhile (one ship however many
  // commits). The bound on what other hosts may not see yet of a session
  // this host serves, and on what a host lost without its backup loses.
  // A hand-over ships at once whatever the interval. 0: every change at
  // once. The default keeps a busy host's shipping cheap: `shmbench hosts`
  // on a 2-CPU machine (2 hosts, Redis and the workers on it) kept 0.89 of
  // one host's requests/s at 1 s, 0.59 at 250 ms and 0.55 at 100 ms.
  std::chrono::milliseconds ship_interval{1000};
  // How long a release request waits for the local holder of the
  // session's process lock (the requester asks again after that).
  std::chrono::milliseconds release_lock_timeout{2000};
  RedisClusterOptions redis;
  std::function<void(const std::string&)> log;
};

struct RedisSinkStats {
  std::uint64_t owned = 0;          // sessions this host owns (at the last renewal round)
  std::uint64_t ships = 0;          // ship scripts that wrote
  std::uint64_t whole_ships = 0;    // of which whole sessions
  std::uint64_t shipped_bytes = 0;  // attribute names and values sent
  std::uint64_t releases = 0;       // ownerships given up on request
  std::uint64_t lost = 0;           // ownerships found taken by another host (lease, fence)
  std::uint64_t conflicts = 0;      // ships refused for their base version (then shipped whole)
  std::uint64_t renewals = 0;
  std::uint64_t redis_errors = 0;  // Redis calls that failed (retried)
  std::uint64_t lag_ms = 0;        // age of the oldest change not shipped, at the last look
  std::uint64_t next_seq = 0;      // change-log position read up to
};

class RedisSink {
 public:
  RedisSink(Store& store, RedisSinkOptions options);
  ~RedisSink();
  RedisSink(const RedisSink&) = delete;
  RedisSink& operator=(const RedisSink&) = delete;

  // Works until stop(); then ships what the log holds for the sessions it
  // owns (bounded by the Redis retry budget) and returns.
  void run();
  void stop() noexcept;
  RedisSinkStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace shmsession::hosts
