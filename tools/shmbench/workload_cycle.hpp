// The `cycle` workload: one web request's whole session cycle, in one
// process or in N processes sharing one store (RunOptions::cycle_setups:
// sticky routing, session k always to process k % N, or random routing,
// any request to any process), against shmsession's client state
// (sync/client.hpp) and against a Redis peer started by the same run,
// driven from as many processes routed the same way:
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
// Under random routing with several processes, HandOverProbe
// (hand_over_probe.hpp) also tells where a moved session's time goes.
//
// Thread safety: run_cycle runs on one thread and forks N workers per
// measured loop (each Client, with its watcher thread, lives in a worker).
#pragma once

#include <string_view>

#include "tools/shmbench/workload.hpp"

namespace shmsession::bench {

inline constexpr std::string_view kCycleDetails =
    "Measures one request's session cycle for shmsession's client state and a Redis peer\n"
    "started by this run on 127.0.0.1, in --procs worker processes (default 1) sharing one\n"
    "store, each with its own Client (and its own Redis connection):\n"
    "  shmsession: client.open(id) with the process lock still held from the session's\n"
    "              previous request (sticky: reused, and the local copy refreshed only if\n"
    "              the primary moved, which it did not: this process is its only writer;\n"
    "              under random routing the session was mostly served last by another\n"
    "              process: --lock-policy says how that one gave the lock up (adaptive,\n"
    "              the Client's default: asked once, then released at the end of each\n"
    "              request; sticky: asked every time; per-request: always released),\n"
    "              and the copy refreshes the attributes that moved);\n"
    "              get<T> of profile, recent and cart; edit<Cart>: one line item's qty;\n"
    "              commit() writes cart only. Twice: object-graph comparison (default)\n"
    "              and binary comparison (ClientOptions::comparison = Binary); both\n"
    "              compare the bytes first, and a Cart holds nothing that needs a graph.\n"
    "  redis:      phpredis's session lock (SET lock:<id> <host|pid> NX PX 30000), HMGET\n"
    "              of cart, profile, recent; decoding the 3 values; the same qty edit;\n"
    "              HSET of the re-encoded cart; EVALSHA compare-and-delete unlock.\n"
    "Both sides hold the same bytes: the values are encoded by sync/attribute_codec.hpp\n"
    "(Boost binary archive behind a 12-byte type prefix). Session: profile (Profile,\n"
    "~200 B), cart (Cart, 20 line items, ~1.2 KiB), recent (RecentProducts, 30 ids).\n"
    "1,000 sessions visited in a random order from --seed, the same on both sides.\n"
    "--routing sticky (default): session k is always served by process k % procs (each\n"
    "process visits only its own sessions); random: every request goes to any process\n"
    "(each draws its own random sessions from the whole pool, as SO_REUSEPORT or PHP-FPM\n"
    "workers do), so about (procs-1)/procs of our requests find the session last served by\n"
    "another process. With one process the two are the same.\n"
    "Each process fills its own sessions (k % procs), then every loop runs 3 s (--quick:\n"
    "0.4 s) after one untimed pass over them and an untimed warm-up of a tenth of that.\n"
    "ops/s = request cycles per second over all processes; p50/p99 of one cycle over all\n"
    "requests. ours/redis: ops/s ratio (>1: shmsession faster). With several processes\n"
    "and random routing a second table breaks down the requests that waited for another\n"
    "process to hand the lock over (samples,\n"
    "mean, p50, p99 in us): release request delivery (requester asks -> holder's watcher\n"
    "runs), holder flush (-> the lock handed over), hand-over wake (-> waiter running),\n"
    "waiter bookkeeping, refresh of the copy, commit; from the library's lock probes\n"
    "(shm/lock_probe.hpp); n/a where no request waited.\n"
    "A note per setup gives how the locks were given up (ClientStats).\n"
    "`shmbench all` runs 1 process, then 2 and 4 processes random and sticky, with the\n"
    "default (adaptive) lock policy.";

// Throws shmsession::Error or std::runtime_error if a phase fails; every
// segment and peer process it started is gone when it returns or throws.
BenchReport run_cycle(const RunOptions& options);

inline constexpr std::string_view kHostsDetails =
    "Measures sessions shared by 2 hosts through Redis (sync/hosts/hosts.md) with the request\n"
    "cycle of `cycle` (binary comparison), 2 worker processes, 1,000 sessions, worker w's\n"
    "sessions s % 2 == w:\n"
    "  1 host:       both workers on one store, no Redis (the baseline);\n"
    "  2 hosts:      a store per host, each with its Redis sink in a process of its own (as\n"
    "                shmsession-agent run --redis runs it) and worker w on host w (its Client\n"
    "                with a HostGate); every request on its session's host;\n"
    "  2 hosts, 10%: the same with 10% of each worker's requests on the other worker's\n"
    "                sessions: the session's ownership moves to this host and back at its\n"
    "                next request on its own host;\n"
    "  redis:        every request through the Redis peer as `cycle` does it (phpredis lock,\n"
    "                HMGET, HSET, unlock), from 2 processes.\n"
    "One standalone redis-server started by this run holds the shared sessions and serves\n"
    "the peer. Notes: 2 hosts / 1 host (goal >= 0.90) and 2 hosts 10% / redis (goal >= 5).";

// Throws shmsession::Error (NotFound without redis-server) or
// std::runtime_error if a phase fails.
BenchReport run_hosts(const RunOptions& options);

}  // namespace shmsession::bench
