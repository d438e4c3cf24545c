// The `cycle` workload: one web request's whole session cycle, in one
// process, against shmsession's client state (sync/client.hpp) and against
// a Redis peer started by the same run:
//   shmsession  client.open(id) (the process lock is still held from this
//               session's previous request, so open() reuses it and copies
//               nothing unless the primary moved), get<T> of profile,
//               recent and cart, edit<Cart> of one line item's quantity,
//               commit() (only cart is written); with object-graph
//               comparison (the default) and with binary comparison
//   redis       phpredis's session lock (SET NX PX), HMGET of the 3
//               attributes, decoding them, HSET of the re-encoded cart,
//               compare-and-delete unlock
// on a pool of sessions visited in a random order (the same on both sides).
//
// Thread safety: run_cycle runs on one thread and forks one worker per
// measured loop (the Client, with its watcher thread, lives in the worker).
#pragma once

#include <string_view>

#include "tools/shmbench/workload.hpp"

namespace shmsession::bench {

inline constexpr std::string_view kCycleDetails =
    "Measures one request's session cycle, one process, for shmsession's client state and\n"
    "a Redis peer started by this run on 127.0.0.1:\n"
    "  shmsession: client.open(id) with the process lock still held from the session's\n"
    "              previous request (sticky: reused, and the local copy refreshed only if\n"
    "              the primary moved, which it did not: this process is its only writer);\n"
    "              get<T> of profile, recent and cart; edit<Cart>: one line item's qty;\n"
    "              commit() writes cart only. Twice: object-graph comparison (default)\n"
    "              and binary comparison (ClientOptions::comparison = Binary).\n"
    "  redis:      phpredis's session lock (SET lock:<id> <host|pid> NX PX 30000), HMGET\n"
    "              of cart, profile, recent; decoding the 3 values; the same qty edit;\n"
    "              HSET of the re-encoded cart; EVALSHA compare-and-delete unlock.\n"
    "Both sides hold the same bytes: the values are encoded by sync/attribute_codec.hpp\n"
    "(Boost binary archive behind a 12-byte type prefix). Session: profile (Profile,\n"
    "~200 B), cart (Cart, 20 line items, ~1.2 KiB), recent (RecentProducts, 30 ids).\n"
    "1,000 sessions visited in a random order from --seed, the same on both sides.\n"
    "Each loop runs 3 s (--quick: 0.4 s) after one untimed pass over every session and\n"
    "an untimed warm-up of a tenth of that. ops/s = request cycles per second;\n"
    "p50/p99 of one cycle. ours/redis: ops/s ratio (>1: shmsession faster).";

// Throws shmsession::Error or std::runtime_error if a phase fails; every
// segment and peer process it started is gone when it returns or throws.
BenchReport run_cycle(const RunOptions& options);

}  // namespace shmsession::bench
