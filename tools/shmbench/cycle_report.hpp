// How the `cycle` workload's report reads: per setup (process count and
// routing) two rows of ours (object-graph and binary comparison) against one
// row of the peer, so the ratio of each of ours is taken to the peer row of
// the same setup (the generic table pairs rows by operation name, which
// differ here); then, for random routing, where a moved session's time goes.
//
// Thread safety: plain functions over a report they only read.
// Cross-process safety: not shared between processes.
#pragma once

#include <string_view>

#include "tools/shmbench/bench_report.hpp"

namespace shmsession::bench {

// Operation names of the cycle workload's rows in report.results.
inline constexpr std::string_view kCycleObjectGraph = "request cycle, object-graph comparison";
inline constexpr std::string_view kCycleBinary = "request cycle, binary comparison";
inline constexpr std::string_view kCycleRedis = "request cycle, lock+HMGET+HSET+unlock";

// The table (ops/s, p50, p99, and for ours: ops/s ours/peer and p50, p99
// peer/ours, >1 = shmsession better; procs and routing columns only if a
// setup has several processes), then the hand-over phases (samples, p50,
// p99 in us) if any.
// JSON adds "comparison": [{"operation", "ops_per_s_ours_per_peer",
// "p50_peer_per_ours", "p99_peer_per_ours"}] for each of ours ("processes"
// and "routing" too on rows of several processes); null where the peer gave
// no figure. With random routing also "hand_over": [{"operation",
// "processes", "routing", "phase", "samples", "mean_us", "p50_us", "p99_us"}] (null
// figures without the library's probes or samples). Headlines: each of our
// rows' ops/s beside the peer's of the same setup.
extern const ReportLayout kCycleLayout;

}  // namespace shmsession::bench
