// HostGate: the SessionGate of a host among several sharing sessions
// through Redis (sync/hosts/hosts.md, "Taking ownership"). Give it to a
// Client (ClientOptions::gate) on every app-server process of the host:
// Client::open of a session this host owns costs one look at the version
// of the host's record (the record itself is read again only when that
// moved); of one it does not own, it takes ownership first:
//
//   1. acquire in Redis; if another host owns the session, ask it to
//      release (PUBLISH on its channel, again every `rerequest`) and wait
//      in the session's FIFO queue, polling (from `poll_min`, doubling to
//      `poll_max`), for at most the open's timeout (then LockTimeout, and
//      this host leaves the queue); a grant announced on this host's
//      channel (sharded pub/sub, subscribed at the first wait) ends a
//      poll's wait at once;
//   2. load: unless the local session is exactly what this host released
//      at Redis's current version, the local session is replaced by
//      Redis's state (every attribute put, the others removed, in one
//      commit under the process lock); a session Redis never had keeps its
//      local state (it is shipped from there);
//   3. record the ownership (token, and which local version matches which
//      Redis version) in the host's records (HostRecords), where the
//      agent's Redis sink finds it to ship, renew and release.
//
// Configuration comes from the host's records, which the agent's Redis
// sink writes as it starts (`shmsession-agent run STORE --redis ...
// --host-id ...`): construct a HostGate after the agent has started.
//
// Thread safety: admit from any threads (Redis calls are serialized on
// the gate's one connection, made at the first session not owned).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <boost/unordered/unordered_flat_map.hpp>

#include "sync/hosts/host_records.hpp"
#include "sync/hosts/ownership.hpp"
#include "sync/hosts/redis_cluster.hpp"
#include "sync/session_gate.hpp"

namespace shmsession::hosts {

struct HostGateOptions {
  std::chrono::milliseconds poll_min{1};
  std::chrono::milliseconds poll_max{20};
  std::chrono::milliseconds rerequest{100};
  RedisClusterOptions redis;
};

struct HostGateStats {
  std::uint64_t admitted_owned = 0;  // opens of a session this host owned
  std::uint64_t acquired = 0;        // ownerships taken
  std::uint64_t waited = 0;          // of which another host owned it first
  std::uint64_t loaded = 0;          // sessions replaced by Redis's state
  std::uint64_t refused = 0;         // opens refused (LockTimeout, Redis unreachable)
};

class HostGate : public sync::SessionGate {
 public:
  // Throws Error(NotFound) when the store's agent never ran with --redis.
  explicit HostGate(std::string_view store, HostGateOptions options = {});
  ~HostGate() override;

  void admit(Store& store, std::string_view id, LockToken token, std::chrono::milliseconds timeout) override;

  // An operator's take-over (`shmctl take --force`): takes the session's
  // process lock (at most `timeout`), grants the session to this host in
  // Redis whoever owns it (Ownership::seize: the old owner is fenced),
  // loads Redis's state and records the ownership. For a session whose
  // owner is gone and whose lease the operator will not wait out.
  // Throws: LockTimeout, Io (Redis), InvalidArgument (a bad id).
  void take_over(Store& store, std::string_view id, std::chrono::milliseconds timeout);

  HostGateStats stats() const;
  const HostConfig& config() const noexcept { return records_.config(); }

 private:
  Ownership& ownership();                                                 // redis_mutex_ held
  bool await_grant(std::string_view id, std::chrono::milliseconds wait);  // redis_mutex_ held
  void remember(std::string_view id, SessionVersion record);
  void take(Store& store, std::string_view id, LockToken token, const std::optional<HostRecord>& record,
            std::chrono::milliseconds timeout);
  void install(Store& store, std::string_view id, LockToken token, const std::optional<HostRecord>& record,
               const Acquired& got);  // redis_mutex_ held

  HostRecords records_;
  const HostGateOptions options_;
  std::mutex redis_mutex_;
  std::unique_ptr<RedisCluster> redis_;
  std::unique_ptr<Ownership> ownership_;
  std::unique_ptr<RedisSubscription> grants_;  // this host's channel, from the first wait
  // Sessions this process found owned, with their record's version then.
  struct IdHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view id) const noexcept { return std::hash<std::string_view>{}(id); }
  };
  static constexpr std::size_t kMostRemembered = std::size_t{1} << 16;
  std::mutex cache_mutex_;
  boost::unordered_flat_map<std::string, SessionVersion, IdHash, std::equal_to<>> owned_;
  std::atomic<std::uint64_t> admitted_owned_{0}, acquired_{0}, waited_{0}, loaded_{0}, refused_{0};
};

}  // namespace shmsession::hosts
