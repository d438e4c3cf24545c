// Ownership of sessions by hosts, kept in Redis (sync/hosts/hosts.md,
// "Keys" and "Operations"): grants with fencing tokens, a FIFO queue of
// waiting hosts, leases, and the fenced writes that ship a session's
// changed attributes. Each operation is one Lua script over the keys of
// one session, which share a Redis Cluster slot (the session id is their
// hash tag), so it is atomic on a cluster as on one server.
//
// Errors: Error(InvalidArgument) for a session id with '{' or '}' (it is
// the keys' hash tag) or a bad host id; Error(Io) when Redis cannot be
// reached (RedisCluster's retry budget) or answers what these scripts
// never return (the message quotes it).
//
// Thread safety: as the RedisCluster it uses (one thread at a time).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sync/hosts/redis_cluster.hpp"

namespace shmsession::hosts {

struct OwnershipOptions {
  std::string prefix = "shms:";  // of every key and channel; no '{' or '}'
  std::chrono::milliseconds lease{10000};
  // A queued host that has not confirmed it still waits for this long is
  // skipped when the session is granted (a waiter that died).
  std::chrono::milliseconds waiter_stale{1000};
};

// What acquire found.
struct Acquired {
  enum class Kind {
    Granted,  // this host owns the session now (or already did: `again`)
    Owned,    // another host owns it; this host is queued (`position`)
    Queued,   // nobody owns it, but hosts queued earlier come first
  };
  Kind kind = Kind::Queued;
  bool again = false;          // Granted: this host already owned it (lease renewed)
  std::uint64_t token = 0;     // Granted
  std::uint64_t version = 0;   // Granted: the session's Redis version
  std::string owner;           // Owned: the owner; Queued: the head of the queue
  std::uint64_t position = 0;  // Owned, Queued: this host's place in the queue, from 1
};

// A session as Redis holds it.
struct StoredSession {
  std::uint64_t version = 0;  // 0: never shipped
  std::uint64_t idle_ms = 0;
  std::vector<std::pair<std::string, std::string>> attributes;  // by name
};

// What ship did.
struct ShipOutcome {
  enum class Kind {
    Shipped,   // `version` is the session's new Redis version
    Fenced,    // this host does not own the session with that token
    Conflict,  // Redis has `version`, not the base the ship named
  };
  Kind kind = Kind::Fenced;
  std::uint64_t version = 0;
};

// What `shmctl owner` shows.
struct OwnerInfo {
  std::string host;  // empty: nobody owns it
  std::uint64_t token = 0;
  std::int64_t lease_left_ms = 0;
  std::uint64_t version = 0;
  std::uint64_t last_token = 0;    // the fence counter
  std::vector<std::string> queue;  // first to be granted first
};

// "[A-Za-z0-9._-]{1,64}". Throws Error(InvalidArgument).
void validate_host_id(std::string_view host);

class Ownership {
 public:
  // Throws Error(InvalidArgument) for a bad host id or prefix.
  Ownership(RedisCluster& redis, std::string host, OwnershipOptions options = {});

  const std::string& host() const noexcept { return host_; }
  const OwnershipOptions& options() const noexcept { return options_; }

  // Grants the session to this host if nobody owns it and no host queued
  // earlier still waits; else queues this host (once) and says who is
  // ahead. Calling it again while queued confirms that this host waits.
  Acquired acquire(std::string_view sid);
  // An operator's take-over (`shmctl take --force`): grants the session
  // to this host with a new token whoever owns it, ahead of the queue; the
  // old owner's token is fenced from now. `owner` names the host it was
  // taken from (empty: nobody owned it).
  Acquired seize(std::string_view sid);
  // Leaves the queue (a waiter that gives up).
  void leave_queue(std::string_view sid);
  // Gives up ownership held with `token`. Returns the host queued first
  // (empty if none), to be told; `released` false if this host did not own
  // the session with that token (also when a release whose answer was lost
  // was sent again: the first one released it).
  struct Released {
    bool released = false;
    std::string next;
  };
  Released release(std::string_view sid, std::uint64_t token);
  // Extends the lease of ownership held with `token`; false if this host
  // lost it.
  bool renew(std::string_view sid, std::uint64_t token);
  // Writes the attributes `puts` and removes `removes` if this host owns
  // the session with `token` and Redis is at `base`; `replace` drops every
  // other attribute first (a whole session). The session's keys expire
  // after `idle_ms` without a ship (0: never).
  ShipOutcome ship(std::string_view sid, std::uint64_t token, std::uint64_t base,
                   const std::vector<std::pair<std::string, std::string>>& puts,
                   const std::vector<std::string>& removes, std::uint64_t idle_ms, bool replace = false);
  // The session's attributes and version, read together.
  StoredSession load(std::string_view sid);
  OwnerInfo owner(std::string_view sid);

  // The channel a host's release requests and grants arrive on: a sharded
  // pub/sub channel (SSUBSCRIBE on the master of its slot).
  std::string channel(std::string_view host) const;
  // Asks `owner` to release `sid` (SPUBLISH on the channel's slot). Returns
  // the subscribers it reached.
  std::int64_t request_release(std::string_view owner, std::string_view sid);
  // Tells `host` that `sid` is free for it.
  std::int64_t announce_grant(std::string_view host, std::string_view sid);

  // The keys of session `sid` (for tests and tools).
  std::string key(std::string_view sid, std::string_view part) const;

 private:
  RedisCluster& redis_;
  std::string host_;
  OwnershipOptions options_;
};

}  // namespace shmsession::hosts
