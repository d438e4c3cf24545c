// How the `worker` workload's report reads: the configured bounds of the
// Client, the per-second samples of each system as a table (every sample
// in JSON; at most ~30 evenly spaced rows in text), and summary rows:
// requests/s and request latency, peak private memory growth, peak kept
// sessions and locks beside their limits, evictions, the read-back check.
//
// Thread safety: plain functions over a report they only read (or, for
// add_worker_notes, the one report being built).
// Cross-process safety: not shared between processes.
#pragma once

#include <string_view>

#include "tools/shmbench/bench_report.hpp"

namespace shmsession::bench {

// The operation of the worker workload's rows in report.results.
inline constexpr std::string_view kWorkerRequest = "request, revisit pattern";

// Notes on what the columns mean, appended to report.notes.
void add_worker_notes(BenchReport& report);

// The Client's limits, each system's samples, then the summary table.
// JSON adds "limits" {max_sessions, max_bytes, max_idle_s},
// "samples" [{system, time_s, requests, sessions_seen, worker_rss_anon_mib,
// store_mib, kept_sessions, kept_mib, evictions, locks_held, locks_in_store}] (null where a
// system has no such figure) and "summary" {<system>: {measured, requests,
// sessions, requests_per_s, p50_us, p99_us, rss_anon_start_mib,
// rss_anon_peak_mib, rss_anon_peak_growth_mib, store_end_mib,
// peak_kept_sessions, peak_kept_mib, peak_locks_held, peak_locks_in_store, evictions, reopened,
// new_visits, follow_ups, returning, longest_sample_ms, longest_scan_ms, verified,
// mismatched}}. Headlines: requests/s and request p99 beside the peer's.
extern const ReportLayout kWorkerLayout;

}  // namespace shmsession::bench
