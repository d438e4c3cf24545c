// Filling a store, or the Redis peer, with sessions of the benchmark shape
// (session_shape.hpp): session:<first> .. session:<last - 1>, each with all
// of its attributes, so every workload starts from the same data on both
// sides.
//
// Thread safety: fill_store may run in several threads or processes on
// disjoint ranges (Store is thread- and process-safe); a RedisConnection
// belongs to one thread.
#pragma once

#include <cstddef>
#include <cstdint>

#include "shm/store.hpp"
#include "tools/shmbench/redis_peer.hpp"

namespace shmsession::bench {

// create_session + one commit of every attribute per session.
// Throws: std::runtime_error if a session exists already; shmsession::Error
// as Store::create_session / Store::commit (SegmentFull: size it larger).
void fill_store(Store& store, std::uint64_t first, std::uint64_t last);

// Commands a Redis load sends before it reads their replies.
inline constexpr std::size_t kRedisPipelineDepth = 1000;

// HSET session:<id> profile .. user .. flags .., pipelined in batches of
// kRedisPipelineDepth. Throws std::runtime_error on a connection or reply
// error.
void load_redis(RedisConnection& redis, std::uint64_t first, std::uint64_t last);

}  // namespace shmsession::bench
