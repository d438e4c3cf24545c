// BenchReport: what one shmbench workload measured, ours and the peer's from
// the same run, and the one printer of every workload's report in its two
// forms: aligned tables for people (and the README), print_report, and one
// JSON document for scripts, report_json; each laid out by the workload's
// ReportLayout (kGenericLayout here, the others in <workload>_report.hpp).
//
// Thread safety: plain values; the printers only read the report.
// Cross-process safety: not shared between processes.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "tools/shmbench/text_table.hpp"

namespace shmsession::bench {

struct LoopResult;

inline constexpr std::string_view kOurSystem = "shmsession";
inline constexpr std::string_view kRedisSystem = "redis";
// primary's reference row: 2 processes, each on a store of its own (nothing
// shared), doing the same work as ours with 2 processes on one store.
// Worker 1's store is written by it alone, so its sessions also keep pages
// of their own: the row bounds what one store could give, layout included.
inline constexpr std::string_view kSeparateStoresSystem = "2 separate stores";

// The machine the figures come from, printed beside them.
struct MachineInfo {
  unsigned cpus = 0;
  std::string cpu_model;
  std::string kernel;
  std::string os;
  double load_average = -1;  // 1-minute load when the run began; other work skews figures
};

// Reads /proc/cpuinfo, uname and /etc/os-release; fields it cannot read
// stay "unknown".
MachineInfo describe_machine();
// "2 cpus, AMD EPYC, Linux 6.1.0, Debian GNU/Linux 12 (bookworm), load 0.05"
std::string machine_line(const MachineInfo& machine);
// {"cpus", "cpu_model", "kernel", "os", "load_average"}
boost::json::object machine_json(const MachineInfo& machine);

// Throughput and latency of one operation by one system.
struct ThroughputRow {
  std::string operation;  // e.g. "commit", "read"
  std::string system;     // kOurSystem or the peer's name
  int processes = 1;
  std::string routing;    // how requests reach the processes ("sticky", "random"); empty: not a routed workload
  bool measured = false;  // false: the peer was not available ("n/a")
  std::uint64_t ops = 0;
  double wall_s = 0;
  double ops_per_s = 0;
  double p50_us = 0;
  double p99_us = 0;
};

ThroughputRow throughput_row(std::string operation, std::string_view system, const LoopResult& loop);
ThroughputRow unavailable_row(std::string operation, std::string_view system, int processes);

// Memory cost per session at a given number of sessions.
struct MemoryRow {
  std::uint64_t sessions = 0;
  std::string system;
  bool measured = false;
  double bytes_per_session = 0;    // segment (or used_memory) growth / sessions
  double payload_per_session = 0;  // attribute names and values
  // Another measure of the same memory, shown beside bytes_per_session and
  // never compared (memcached: slab chunks in use + its hash table, where
  // bytes_per_session is its `stats bytes`).
  std::optional<double> footprint_per_session;
  double overhead_per_session() const noexcept { return bytes_per_session - payload_per_session; }
};

// What replicating one edit of one attribute costs: the whole value (what
// whole-attribute replication sends) beside our patch and delta frame, how
// fast the patch is made and applied, and what the object-graph diff finds.
struct DeltaRow {
  std::string scenario;
  std::uint64_t whole_bytes = 0;    // the new value, encoded
  std::uint64_t patch_bytes = 0;    // diff::make_patch
  std::string method;               // the patch method make_patch chose
  std::uint64_t frame_bytes = 0;    // encode_delta of the one-attribute session delta
  double diff_mb_per_s = 0;         // make_patch: whole_bytes / time per call
  double apply_mb_per_s = 0;        // apply_patch, the same way
  std::uint64_t graph_changes = 0;  // paths graph::diff reports
  std::string graph_first_path;     // e.g. "Modified history.orders[1850].total_cents"
  double graph_ms = 0;              // build_graph of the new value + graph::diff (the benchmark's graph is cached)
};

// One phase of the requests whose session another process held (the
// `cycle` workload under random routing): where a moved session's time goes.
struct HandOverPhaseRow {
  std::string operation;  // the cycle row it belongs to
  int processes = 0;
  std::string phase;
  bool measured = false;  // false: no request of this setup waited for a hand-over
  std::uint64_t samples = 0;
  double mean_us = 0;  // means add up (medians do not): the phases' share of the whole
  double p50_us = 0;
  double p99_us = 0;
};

// What replicating commits costs one system: its commit rate alone and
// with its backup attached (our agent and backup daemon; a Redis replica),
// how long a commit takes to reach the backup, and the bytes sent per
// commit beside what whole-session replication would send.
struct ReplicationRow {
  std::string system;
  int processes = 1;              // writer processes; 0: the lag prober alone
  std::uint32_t paced_per_s = 0;  // the writers' pace (commits a second); 0: unpaced
  std::uint32_t bound_ms = 0;     // the replication bound of the phase (WriterMix::bound_ms); 0: none
  bool measured = false;          // false: the peer was not available ("n/a")
  double commits_per_s_alone = 0;
  double commits_per_s_replicated = 0;
  std::uint64_t lag_samples = 0;  // probes whose arrival was seen
  std::uint64_t lag_unseen = 0;   // probes given up on (not seen within the wait limit)
  double lag_p50_us = 0;
  double lag_p99_us = 0;
  double lag_max_us = 0;
  // Commits (writers' warm-up and loop, and probes) from the replicated
  // phase's start until the backup had them all, and what was sent for them.
  std::uint64_t commits_shipped = 0;
  std::uint64_t wire_bytes = 0;
  std::uint64_t delta_bytes = 0;                 // ours: encoded deltas in those frames; redis: 0
  std::uint64_t frames = 0;                      // ours: frames the agent sent; redis: 0 (a stream, not frames)
  std::optional<double> whole_bytes_per_commit;  // whole-session replication; nullopt: n/a
  double catch_up_s = 0;                         // writers' end until the backup had every commit
  std::uint64_t full_resyncs = 0;                // during the replicated phase (ours)
  std::uint64_t reconnects = 0;                  // of the agent, during the replicated phase (ours)
  std::uint64_t bound_waits = 0;                 // ours: writes that waited for the bound (StoreStats), probes included
  std::uint64_t writes_refused = 0;              // writes the bound refused (ours: ReplicaBehind; redis: NOREPLICAS)
  bool backup_equal = false;                     // the backup held the primary's sessions after catching up
  std::string backup_difference;                 // the first difference found, if not equal

  double slowdown_pct() const noexcept {
    return commits_per_s_alone > 0 ? (1.0 - commits_per_s_replicated / commits_per_s_alone) * 100.0 : 0.0;
  }
  double wire_bytes_per_commit() const noexcept {
    return commits_shipped > 0 ? static_cast<double>(wire_bytes) / static_cast<double>(commits_shipped) : 0.0;
  }
};

// One sample of a long-running worker (the `worker` workload), taken
// every second: what it has done so far and the memory and locks it holds.
struct ResidencyRow {
  std::string system;
  double time_s = 0;  // since the request loop began
  std::uint64_t requests = 0;
  std::uint64_t sessions_seen = 0;  // distinct sessions so far
  double worker_rss_anon_mib = 0;   // the worker process's private memory (RssAnon)
  // Where the sessions live: ours, the segment's used bytes; redis, its
  // used_memory_rss.
  double store_mib = 0;
  // Ours only (nullopt for a peer): the Client's state and the locks the
  // worker process holds in the store.
  std::optional<std::uint64_t> kept_sessions;
  std::optional<double> kept_mib;  // ClientStats::bytes
  std::optional<std::uint64_t> evictions;
  std::optional<std::uint64_t> locks_held;  // ClientStats::locks_held: the Client's own count
  // Store::locks() held by the worker's pid: the segment's view, scanned
  // shard by shard while the worker runs (not one instant: a lock let go
  // in a shard already scanned and one taken in a later shard both count).
  std::optional<std::uint64_t> locks_in_store;
};

// What one system's long-running worker did over the whole run (the
// `worker` workload): its requests by kind, and the check of what it wrote.
struct WorkerRow {
  std::string system;
  bool measured = false;  // false: the peer was not available ("n/a")
  std::uint64_t requests = 0;
  std::uint64_t sessions = 0;
  std::uint64_t new_visits = 0;
  std::uint64_t follow_ups = 0;
  std::uint64_t returning = 0;
  std::optional<std::uint64_t> reopened;  // ours: revisits whose copy had been let go
  double longest_sample_ms = 0;           // the sampler's slowest sample
  std::optional<double> longest_scan_ms;  // ours: of which its Store::locks() scan
  std::uint64_t verified = 0;             // sessions read back from another process
  std::uint64_t mismatched = 0;           // of which held other values than written
};

// One PHP session handler behind nginx and php-fpm (the `php` workload):
// its pool under many sessions (wrk), then 8 requests at a time on one.
struct PhpHandlerRow {
  std::string system;     // "shmsession", "files", "redis", "memcached"
  bool measured = false;  // false: the handler could not run here (why_not)
  std::string why_not;
  bool load_measured = false;  // false: wrk could not run
  std::uint64_t requests = 0;  // many sessions: wrk's requests in the timed run
  double requests_per_s = 0;
  double p50_us = 0;
  double p99_us = 0;
  std::uint64_t load_failures = 0;  // non-2xx replies and socket errors
  // One session: requests sent, answered 200, refused (another status or
  // no reply), n at the end, and increments answered but not in n.
  std::uint64_t one_sent = 0;
  std::uint64_t one_answered = 0;
  std::uint64_t one_refused = 0;
  std::int64_t one_final_n = 0;
  std::uint64_t one_lost = 0;
};

struct BenchReport {
  std::string workload;
  std::string description;  // what is measured, and the session shape
  bool quick = false;
  MachineInfo machine;
  bool machine_above = false;  // printed once above several reports (shmbench all): no machine line
  std::string peer;            // "redis 7.0.15", or "n/a"
  std::string peer_origin = "same run, 127.0.0.1";  // printed after the peer's name
  boost::json::object parameters;                   // sizes and counts the workload ran with
  std::vector<ThroughputRow> results;
  std::vector<MemoryRow> memory;
  std::vector<DeltaRow> deltas;                    // printed by the delta workload's own layout
  std::vector<HandOverPhaseRow> hand_over_phases;  // printed by the cycle workload's own layout
  std::vector<ReplicationRow> replication;         // printed by the replicate workload's own layout
  std::vector<ResidencyRow> residency;             // printed by the worker workload's own layout
  std::vector<WorkerRow> workers;                  // likewise
  std::vector<PhpHandlerRow> php;                  // printed by the php workload's own layout
  std::vector<std::string> notes;                  // e.g. why the peer is missing
  // Checks that did not hold (e.g. a backup that differs from its primary):
  // the report is still printed, then shmbench exits 1.
  std::vector<std::string> failures;
  double elapsed_s = 0;  // the whole run of the workload, peers included (main.cpp times it)
};

// One figure of ours beside a peer's (the lock workload's comparison, the
// `all` summary's headlines).
inline constexpr bool kHigherIsBetter = true;  // ComparisonRow::higher_is_better: rates
inline constexpr bool kLowerIsBetter = false;  // times and sizes
struct ComparisonRow {
  std::string workload;
  std::string measure;
  std::string unit;
  bool higher_is_better = true;
  std::optional<double> ours;  // nullopt: not measured
  std::string peer;            // "redis", "memcached", "whole attribute"
  std::optional<double> peer_figure;

  // How many times better ours is: ours/peer for rates, peer/ours for
  // times and sizes; below 1 the peer is better. nullopt if either is missing.
  std::optional<double> advantage() const;
};

// One block of a report's text: a line above it (none if empty), a table
// (none if absent), then a blank line.
struct ReportSection {
  std::string title;
  std::optional<TextTable> table;
};

// What one workload's report shows beyond what every report shows. Every
// report reads: the header lines (machine, peer, workload and parameters,
// description), the workload's sections, its closing lines, then notes,
// failures ("FAILED: ...") and the elapsed time; in JSON, the keys every
// report has (kGenericLayout's) plus what add_json adds.
struct ReportLayout {
  std::vector<ReportSection> (*sections)(const BenchReport& report);
  std::vector<std::string> (*closing_lines)(const BenchReport& report) = nullptr;
  void (*add_json)(const BenchReport& report, boost::json::object& doc) = nullptr;
  // Its lines of the `all` summary (all_report.hpp).
  std::vector<ComparisonRow> (*headlines)(const BenchReport& report) = nullptr;
};

// The throughput table (with ours/peer ops/s on each peer's row) and the
// memory table (with ours/peer bytes per session on each peer's row), each
// if it has rows. JSON: {"machine", "workload", "description", "quick",
// "peer", "parameters", "results", "memory", "notes", "elapsed_s"}; figures
// the peer could not give are null; "ours_per_peer" is set on peer rows
// (null on ours). Headlines: commit and read at 1 process, memory at the
// largest session count, ours beside each peer.
extern const ReportLayout kGenericLayout;

// The one printer of every workload's report.
void print_report(std::ostream& out, const BenchReport& report, const ReportLayout& layout);
boost::json::object report_json(const BenchReport& report, const ReportLayout& layout);

// The row's ops/s; nullopt if there is no row or it was not measured.
std::optional<double> rate_of(const ThroughputRow* row);

// A figure, or null where there is none.
boost::json::value json_or_null(std::optional<double> value);
boost::json::value json_or_null(std::optional<std::uint64_t> value);
inline boost::json::value json_if(bool measured, double value) {
  return json_or_null(measured ? std::optional<double>(value) : std::nullopt);
}

}  // namespace shmsession::bench
