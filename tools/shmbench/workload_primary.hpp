// The `primary` workload: the cost of the primary state itself.
//   commit  one 1 KiB attribute (profile) to a random session
//   read    the 3 attributes of a random session (read_into, buffers reused)
// on a store of 100,000 sessions, by 1 process and by 2 processes working
// on disjoint halves of the sessions (aggregate ops/s, merged percentiles),
// then segment bytes used per session at 100,000 and 1,000,000 sessions.
// The Redis peer runs the same sequences in the same run: HSET / HMGET on
// hash session:<id>, 1 and 2 client processes, INFO used_memory growth; then
// (once Redis has stopped) the memcached peer: set of item
// session:<id>:profile / one multi-get of the 3 items, stats bytes growth
// on a fresh server.
//
// Thread safety: run_primary runs on one thread and forks workers.
#pragma once

#include <string_view>

#include "tools/shmbench/workload.hpp"

namespace shmsession::bench {

inline constexpr std::string_view kPrimaryDetails =
    "Measures, for shmsession and Redis and memcached peers started by this run on\n"
    "127.0.0.1 (one after the other):\n"
    "  commit: one 1 KiB attribute (profile) to a random session (Redis: HSET;\n"
    "          memcached: set of the item <session id>:profile)\n"
    "  read:   the 3 attributes of a random session (Redis: HMGET; memcached: one\n"
    "          multi-get of <session id>:profile, :user and :flags)\n"
    "on 100,000 sessions (--quick: 10,000), by 1 process and by 2 processes on\n"
    "disjoint session ranges (aggregate ops/s, merged p50/p99); and memory: bytes\n"
    "used per session (segment used_bytes growth; Redis used_memory growth;\n"
    "memcached stats bytes growth on a fresh server, the figure ours/peer compares\n"
    "with; its footprint/session column also counts slab-chunk rounding and the\n"
    "hash table: used chunks x chunk size from stats slabs, plus stats hash_bytes) at\n"
    "100,000 and 1,000,000 sessions (--quick: 10,000 and 100,000).\n"
    "Session shape, identical on both sides: id session:<8 digits>; attributes\n"
    "profile 1024 B (the committed one), user 64 B, flags 16 B; a read fetches all\n"
    "three. Random sessions come from a fixed seed (--seed), same for both sides.\n"
    "Each figure is measured for 3 s in all, in 3 rounds of 1 s (--quick: one round\n"
    "of 0.25 s), each after an untimed warm-up of a tenth of that; the rounds\n"
    "alternate the order of 1 and 2 processes, so that a machine whose speed drifts\n"
    "during the run (a shared host) moves both figures alike and not their ratio.";

// Throws shmsession::Error or std::runtime_error if a phase fails; every
// segment and peer process it started is gone when it returns or throws.
BenchReport run_primary(const RunOptions& options);

}  // namespace shmsession::bench
