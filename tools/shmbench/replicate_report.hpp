// How the `replicate` workload's report reads: one line per system and
// writer count (report.replication) with the commit rate without and with
// the backup, the slowdown, the lag until the backup has a commit, and the
// bytes sent per commit beside whole-session replication; then a table of
// what those figures were computed from, and whether each backup equalled
// its primary ("standby equal: yes/no").
//
// Thread safety: plain functions over a report they only read (or, for
// add_replicate_notes, the one report being built).
// Cross-process safety: not shared between processes.
#pragma once

#include "tools/shmbench/bench_report.hpp"

namespace shmsession::bench {

// The comparison table, the probe-only table (if any), the detail table,
// then the equality lines. JSON adds "peer_origin", "replication":
// [{"system", "processes", "paced_per_s", "measured", "commits_per_s_alone",
// "commits_per_s_replicated", "slowdown_pct", "lag_p50_us", "lag_p99_us",
// "lag_max_us", "lag_samples", "lag_unseen", "commits_shipped",
// "wire_bytes", "delta_bytes", "wire_bytes_per_commit",
// "whole_bytes_per_commit", "whole_per_wire", "frames", "catch_up_s",
// "full_resyncs", "reconnects", "backup_equal", "backup_difference"}],
// "standby_equal" (ours, every row) and "failures"; figures a system could
// not give are null. Headlines: lag p50 and bytes per commit of the paced
// writer, and the commit rate of one writer with the backup attached.
extern const ReportLayout kReplicateLayout;

// Notes explaining the figures (what lag and bytes include), and any full
// resync or reconnect of our agent during a measured phase.
void add_replicate_notes(BenchReport& report);

}  // namespace shmsession::bench
