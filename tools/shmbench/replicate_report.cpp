#include "tools/shmbench/replicate_report.hpp"

#include <cmath>
#include <optional>
#include <string>

#include "tools/shmbench/replicate_plan.hpp"
#include "tools/shmbench/text_table.hpp"

namespace shmsession::bench {

namespace {

// "31.8%"; "0.0%" rather than "-0.0%".
std::string percent_text(double value) { return fixed(std::fabs(value) < 0.05 ? 0.0 : value, 1) + "%"; }

// "1", "2", "1 @5000/s", "2 bound 100ms", "probes only"
std::string writers_text(const ReplicationRow& row) {
  if (row.processes == 0) return "probes only";
  return WriterMix{row.processes, row.paced_per_s, row.bound_ms}.label();
}

std::optional<double> whole_per_wire(const ReplicationRow& row) {
  const double wire = row.wire_bytes_per_commit();
  if (!row.measured || !row.whole_bytes_per_commit || wire <= 0) return std::nullopt;
  return *row.whole_bytes_per_commit / wire;
}

std::string lag_text(const ReplicationRow& row, double value) {
  return row.measured && row.lag_samples > 0 ? figure_text(value) : kNotAvailable;
}

TextTable comparison_table(const BenchReport& report) {
  TextTable table({"system", "writers", "commits/s alone", "commits/s backup", "slowdown", "lag p50 us", "lag p99 us",
                   "lag max us", "wire B/commit", "whole B/commit", "whole/wire"},
                  1);
  for (const ReplicationRow& row : report.replication) {
    if (row.processes == 0) continue;
    const std::optional<double> ratio = whole_per_wire(row);
    table.add({row.system, writers_text(row), fixed_if(row.measured, row.commits_per_s_alone, 0),
               fixed_if(row.measured, row.commits_per_s_replicated, 0),
               row.measured ? percent_text(row.slowdown_pct()) : kNotAvailable, lag_text(row, row.lag_p50_us),
               lag_text(row, row.lag_p99_us), lag_text(row, row.lag_max_us),
               row.measured ? figure_text(row.wire_bytes_per_commit()) : kNotAvailable,
               row.measured && row.whole_bytes_per_commit ? figure_text(*row.whole_bytes_per_commit) : kNotAvailable,
               ratio ? fixed(*ratio, 2) + "x" : kNotAvailable});
  }
  return table;
}

TextTable detail_table(const BenchReport& report) {
  TextTable table({"system", "writers", "commits shipped", "wire bytes", "delta bytes", "frames", "commits/frame",
                   "lag probes", "unseen", "catch-up s", "full resyncs", "bound waits", "refused", "backup equal"},
                  1);
  for (const ReplicationRow& row : report.replication) {
    if (!row.measured || row.processes == 0) continue;
    const bool ours = row.system == kOurSystem;
    const double per_frame =
        row.frames > 0 ? static_cast<double>(row.commits_shipped) / static_cast<double>(row.frames) : 0.0;
    table.add({row.system, writers_text(row), std::to_string(row.commits_shipped), std::to_string(row.wire_bytes),
               ours ? std::to_string(row.delta_bytes) : kNotAvailable,
               ours ? std::to_string(row.frames) : kNotAvailable,
               ours && row.frames > 0 ? figure_text(per_frame) : kNotAvailable, std::to_string(row.lag_samples),
               std::to_string(row.lag_unseen), fixed(row.catch_up_s, 3),
               ours ? std::to_string(row.full_resyncs) : kNotAvailable,
               row.bound_ms > 0 && ours ? std::to_string(row.bound_waits) : kNotAvailable,
               row.bound_ms > 0 ? std::to_string(row.writes_refused) : kNotAvailable, row.backup_equal ? "yes" : "no"});
  }
  return table;
}

// Nullopt if no row is of the lag prober alone.
std::optional<TextTable> probe_only_table(const BenchReport& report) {
  std::optional<TextTable> table;
  for (const ReplicationRow& row : report.replication) {
    if (row.processes != 0) continue;
    if (!table)
      table.emplace(
          std::vector<std::string>{"system", "writers", "lag probes", "lag p50 us", "lag p99 us", "lag max us"}, 1);
    table->add({row.system, writers_text(row), row.measured ? std::to_string(row.lag_samples) : kNotAvailable,
                lag_text(row, row.lag_p50_us), lag_text(row, row.lag_p99_us), lag_text(row, row.lag_max_us)});
  }
  return table;
}

// "yes", "no", or "n/a" when the system has no measured row.
std::string equal_text(const BenchReport& report, std::string_view system) {
  bool any = false;
  for (const ReplicationRow& row : report.replication) {
    if (row.system != system || !row.measured || row.processes == 0) continue;
    if (!row.backup_equal) return "no";
    any = true;
  }
  return any ? "yes" : kNotAvailable;
}

// A number among the parameters as text ("500"), "?" if absent.
std::string parameter_number(const BenchReport& report, std::string_view key) {
  const boost::json::value* value = report.parameters.if_contains(key);
  if (value == nullptr) return "?";
  if (value->is_int64()) return std::to_string(value->get_int64());
  if (value->is_uint64()) return std::to_string(value->get_uint64());
  if (value->is_double()) return figure_text(value->get_double());
  return "?";
}

std::vector<ReportSection> replicate_sections(const BenchReport& report) {
  std::vector<ReportSection> sections{{"", comparison_table(report)}};
  if (std::optional<TextTable> probes = probe_only_table(report)) sections.push_back({"", std::move(probes)});
  sections.push_back({"", detail_table(report)});
  return sections;
}

std::vector<std::string> replicate_closing_lines(const BenchReport& report) {
  return {"standby equal: " + equal_text(report, kOurSystem) + " (every session, attribute by attribute)",
          "redis replica equal: " + equal_text(report, kRedisSystem) + " (DBSIZE and sampled hashes)"};
}

void add_replicate_json(const BenchReport& report, boost::json::object& doc) {
  doc["peer_origin"] = report.peer_origin;
  boost::json::array rows;
  for (const ReplicationRow& row : report.replication) {
    const bool lag = row.measured && row.lag_samples > 0;
    const bool m = row.measured && row.processes > 0;  // probe-only rows have lag figures only
    rows.push_back(
        {{"system", row.system},
         {"processes", row.processes},
         {"paced_per_s", row.paced_per_s > 0 ? boost::json::value(row.paced_per_s) : boost::json::value(nullptr)},
         {"bound_ms", row.bound_ms > 0 ? boost::json::value(row.bound_ms) : boost::json::value(nullptr)},
         {"bound_waits", row.bound_waits},
         {"writes_refused", row.writes_refused},
         {"measured", row.measured},
         {"commits_per_s_alone", json_if(m, row.commits_per_s_alone)},
         {"commits_per_s_replicated", json_if(m, row.commits_per_s_replicated)},
         {"slowdown_pct", json_if(m, row.slowdown_pct())},
         {"lag_p50_us", json_if(lag, row.lag_p50_us)},
         {"lag_p99_us", json_if(lag, row.lag_p99_us)},
         {"lag_max_us", json_if(lag, row.lag_max_us)},
         {"lag_samples", row.lag_samples},
         {"lag_unseen", row.lag_unseen},
         {"commits_shipped", row.commits_shipped},
         {"wire_bytes", row.wire_bytes},
         {"delta_bytes", row.delta_bytes},
         {"wire_bytes_per_commit", json_if(m, row.wire_bytes_per_commit())},
         {"whole_bytes_per_commit", json_or_null(m ? row.whole_bytes_per_commit : std::nullopt)},
         {"whole_per_wire", json_or_null(whole_per_wire(row))},
         {"frames", row.frames},
         {"catch_up_s", json_if(m, row.catch_up_s)},
         {"full_resyncs", row.full_resyncs},
         {"reconnects", row.reconnects},
         {"backup_equal", m ? boost::json::value(row.backup_equal) : boost::json::value(nullptr)},
         {"backup_difference", row.backup_difference}});
  }
  doc["replication"] = std::move(rows);
  const std::string ours_equal = equal_text(report, kOurSystem);
  doc["standby_equal"] =
      ours_equal == kNotAvailable ? boost::json::value(nullptr) : boost::json::value(ours_equal == "yes");
  boost::json::array failures(report.failures.begin(), report.failures.end());
  doc["failures"] = std::move(failures);
}

std::vector<ComparisonRow> replicate_headlines(const BenchReport& report) {
  std::vector<ComparisonRow> rows;
  const auto find = [&](std::string_view system, int processes, bool paced) -> const ReplicationRow* {
    for (const ReplicationRow& row : report.replication)
      if (row.system == system && row.processes == processes && (row.paced_per_s > 0) == paced && row.bound_ms == 0 &&
          row.measured)
        return &row;
    return nullptr;
  };
  const auto figure = [](const ReplicationRow* row, auto&& get) -> std::optional<double> {
    if (row == nullptr) return std::nullopt;
    return get(*row);
  };
  const ReplicationRow* ours_paced = find(kOurSystem, 1, true);
  const ReplicationRow* redis_paced = find(kRedisSystem, 1, true);
  const std::string paced =
      ours_paced != nullptr ? " at " + std::to_string(ours_paced->paced_per_s) + " commits/s" : std::string();
  const auto lag = [](const ReplicationRow& row) -> std::optional<double> {
    if (row.lag_samples == 0) return std::nullopt;
    return row.lag_p50_us;
  };
  rows.push_back({report.workload, "lag to the backup, p50" + paced, "us", kLowerIsBetter, figure(ours_paced, lag),
                  std::string(kRedisSystem), figure(redis_paced, lag)});
  const auto wire = [](const ReplicationRow& row) -> std::optional<double> { return row.wire_bytes_per_commit(); };
  rows.push_back({report.workload, "bytes sent per commit" + paced, "B/commit", kLowerIsBetter,
                  figure(ours_paced, wire), std::string(kRedisSystem), figure(redis_paced, wire)});
  const auto replicated = [](const ReplicationRow& row) -> std::optional<double> {
    return row.commits_per_s_replicated;
  };
  rows.push_back({report.workload, "commits/s, 1 writer, backup attached", "commits/s", kHigherIsBetter,
                  figure(find(kOurSystem, 1, false), replicated), std::string(kRedisSystem),
                  figure(find(kRedisSystem, 1, false), replicated)});
  return rows;
}

}  // namespace

const ReportLayout kReplicateLayout{&replicate_sections, &replicate_closing_lines, &add_replicate_json,
                                    &replicate_headlines};

void add_replicate_notes(BenchReport& report) {
  report.notes.push_back(
      "lag: from a probe commit's return until the backup is seen to have it, polled every " +
      parameter_number(report, "probe_pause_us") +
      " us: ours reads the standby's applied position (shared memory), redis sends HGET to the replica "
      "(one round trip); an idle agent sleeps on the change log's futex and a commit wakes it "
      "(at most " +
      parameter_number(report, "agent_idle_wait_us") + " us per sleep, AgentOptions default)");
  report.notes.push_back(
      "wire B/commit: ours, the agent's sealed frame bytes (lengths, headers, tags, heartbeats); redis, "
      "master_repl_offset "
      "growth (the RESP commands it streams); over every commit from the phase's start (warm-up and probes "
      "included) until the backup had them all. whole B/commit: what whole-session replication would send "
      "(ours: the agent's whole_bytes, a whole-session delta's encoded size counted once per delta it ships; "
      "redis: the session hash's field and value bytes)");
  report.notes.push_back(
      "our primary's change log holds " + parameter_number(report, "change_log_capacity") +
      " entries (the store's default is 16384) so that the backlog of unpaced writers ships as deltas; a log "
      "that overflows while the agent lags makes it fall back to full resyncs (counted below when they happen)");
  report.notes.push_back(
      "unpaced writers outrun the agent: it ships each session's state as of when it reads the log, so commits "
      "to a session made meanwhile leave in one delta (commits shipped / frames), and lag is the backlog");
  for (const ReplicationRow& row : report.replication)
    if (row.bound_ms > 0 && row.system == kOurSystem) {
      report.notes.push_back(
          "bound " + std::to_string(row.bound_ms) + "ms: ours, Store::set_replication_bound (max lag and wait " +
          std::to_string(row.bound_ms) +
          " ms) for the backed-up phase: a write waits while the agent's published lag is above the bound, or its "
          "backlog would take more than half the bound to ship at the pace it measured, and fails with "
          "ReplicaBehind after the wait (bound waits counts writes that waited, probes included; refused "
          "counts writers' and probes' refusals; commits/s counts what was committed); redis, min-replicas-to-write "
          "1 and min-replicas-max-lag 1 (whole seconds: its finest), NOREPLICAS errors counted as refused");
      break;
    }
  for (const ReplicationRow& row : report.replication) {
    if (row.system != kOurSystem || !row.measured || row.processes == 0) continue;
    if (row.full_resyncs > 0 || row.reconnects > 0)
      report.notes.push_back("our agent did " + std::to_string(row.full_resyncs) + " full resync(s) and " +
                             std::to_string(row.reconnects) + " reconnect(s) during the " + writers_text(row) +
                             " writer phase: its bytes include them");
    if (row.lag_unseen > 0)
      report.notes.push_back("a probe was not seen on the standby within the wait limit (writers " + writers_text(row) +
                             "): probing stopped there");
  }
}

}  // namespace shmsession::bench
