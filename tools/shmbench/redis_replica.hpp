// The Redis side of the `replicate` workload's backup: a second
// redis-server replicating the peer (--replicaof, diskless both ways so no
// RDB file is written), and what the workload asks of the pair: whether the
// replica has caught up, how many bytes the replication stream carried, how
// many HSETs the primary ran, and whether the replica equals the primary.
//
// Thread safety: as RedisServer and RedisConnection (one thread each).
// Cross-process safety: the replica is stopped by pid like any RedisServer.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "tools/shmbench/redis_peer.hpp"

namespace shmsession::bench {

// Prepares `primary` for a diskless full sync without delay, then starts a
// replica of it (no persistence, loading the sync from the socket).
// Throws std::runtime_error if the replica cannot be run or never answers.
RedisServer start_redis_replica(const std::string& program, RedisConnection& primary, int primary_port);

// Waits until the replica's link is up and its offset equals the primary's
// master_repl_offset. Returns the time it took. Throws std::runtime_error
// at `timeout`, naming the link status and both offsets.
// Right after a diskless sync this holds before the primary streams to the
// replica at all (it starts on the replica's first REPLCONF ACK, sent once a
// second), since nothing was written: see the prober's wait_streaming.
std::chrono::nanoseconds wait_replica_synced(RedisConnection& primary, RedisConnection& replica,
                                             std::chrono::seconds timeout);

// Bytes the primary has put in its replication stream so far.
std::uint64_t replication_offset(RedisConnection& primary);
// HSET commands the server has run (INFO commandstats), 0 before the first.
std::uint64_t hset_calls(RedisConnection& server);

struct ReplicaCheck {
  std::string difference;      // empty: equal
  double payload_per_key = 0;  // field and value bytes of a compared hash, mean
};

// Compares DBSIZE and the hashes of `keys` (HGETALL on both sides).
ReplicaCheck compare_replica(RedisConnection& primary, RedisConnection& replica, const std::vector<std::string>& keys);

}  // namespace shmsession::bench
