// The `lock` workload: what a session's process lock costs, shmsession's
// (shm/lock.hpp) beside the session lock PHP sites take on Redis with
// phpredis (redis_session_lock.hpp), in the same run:
//   uncontended  1 process, acquire + release on one session
//   handoff      2 processes ping-pong one session's lock: time from the
//                holder's release to the waiter's acquire returning
//   contended    4 processes, each acquire -> read 1 attribute -> commit 1
//                small attribute -> release on the same session
//
// Thread safety: run_lock runs on one thread and forks workers.
#pragma once

#include <string_view>

#include "tools/shmbench/workload.hpp"

namespace shmsession::bench {

inline constexpr std::string_view kLockDetails =
    "Measures, for shmsession's process lock and a Redis peer started by this run on 127.0.0.1:\n"
    "  uncontended: 1 process, acquire + release of one session's lock (ns per cycle,\n"
    "               mean, p50, p99); 2 s (--quick: 0.25 s) after 0.2 s untimed\n"
    "  handoff:     2 processes ping-pong the lock; each holder waits until the other one\n"
    "               waits, stamps CLOCK_MONOTONIC and releases; the waiter stamps the time\n"
    "               its acquire returns (p50, p99 us of the difference); then it reads 1\n"
    "               attribute and passes the lock back. shmsession 20,000 handoffs\n"
    "               (--quick: 2,000), Redis 200 (--quick: 20), after a tenth untimed\n"
    "  contended:   4 processes on one session, each acquire -> read user (64 B) -> commit\n"
    "               flags (16 B) -> release, with the token; total cycles/s over 3 s\n"
    "               (--quick: 0.25 s); per-process counts and the longest cycle in notes\n"
    "Redis uses phpredis's session-lock recipe (redis_session.c): acquire\n"
    "SET lock:<session> <hostname|pid> NX PX 30000, retried every lock_wait_time;\n"
    "release EVALSHA of phpredis's compare-and-delete script (EVAL on NOSCRIPT);\n"
    "HGET / HSET on hash session:<id> for the read and the commit. lock_wait_time =\n"
    "20000 us and lock_retries = 100 are phpredis's defaults (redis.c INI entries and\n"
    "the README's session-locking section, since phpredis PR #1908; before: 2000 us, 10).\n"
    "Redis waiters retry without a limit; acquisitions that needed more than 101\n"
    "attempts (where phpredis would give up) are counted in the notes. In the Redis\n"
    "handoff the holder releases at a random point of the waiter's retry interval, as\n"
    "for a request arriving at a random time. The table's speedup column is\n"
    "redis/shmsession for times and shmsession/redis for rates (>1: shmsession better).";

// Throws shmsession::Error or std::runtime_error if a phase fails; every
// segment and peer process it started is gone when it returns or throws.
BenchReport run_lock(const RunOptions& options);

}  // namespace shmsession::bench
