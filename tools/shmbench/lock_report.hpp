// How the `lock` workload's report reads: its figures have different units
// (ns per cycle, us of handoff latency, cycles/s), so beside the generic
// rows (report.results, one ThroughputRow per operation and system) it
// prints one comparison table, ours beside the peer's with a speedup whose
// direction is fixed: peer/ours for times, ours/peer for rates, so that >1
// always means shmsession is better.
//
// Thread safety: plain functions over a report they only read.
// Cross-process safety: not shared between processes.
#pragma once

#include <string_view>
#include <vector>

#include "tools/shmbench/bench_report.hpp"

namespace shmsession::bench {

// Operation names of the lock workload's rows in report.results.
//   uncontended: ops/s = cycles/s, p50/p99 of one acquire + release
//   handoff:     ops = handoffs recorded, p50/p99 of release -> granted
//   contended:   ops/s = cycles/s of every process, p50/p99 of one cycle
inline constexpr std::string_view kUncontendedOperation = "acquire+release";
inline constexpr std::string_view kHandoffOperation = "handoff";
inline constexpr std::string_view kContendedOperation = "contended cycle";

// The comparison table, ours beside the peer's for each measure.
// JSON adds "comparison": [{"measure", "unit", "shmsession", "peer",
// "speedup", "speedup_is": "peer/ours" | "ours/peer"}]; figures the peer
// could not give are null.
// Headlines: the mean uncontended cycle, the handoff p50 and the contended
// rate, as in the comparison.
extern const ReportLayout kLockLayout;

}  // namespace shmsession::bench
