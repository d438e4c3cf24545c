#include "tools/shmbench/all_report.hpp"

#include <algorithm>

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include "tools/shmbench/lock_report.hpp"
#include "tools/shmbench/text_table.hpp"

namespace shmsession::bench {

namespace {

constexpr bool kHigher = true;
constexpr bool kLower = false;

const ThroughputRow* find_row(const BenchReport& report, std::string_view operation, std::string_view system,
                              int processes) {
  for (const ThroughputRow& row : report.results)
    if (row.operation == operation && row.system == system && row.processes == processes) return &row;
  return nullptr;
}

std::optional<double> ops_per_s(const ThroughputRow* row) {
  if (row == nullptr || !row->measured) return std::nullopt;
  return row->ops_per_s;
}

// Every peer system in the report's throughput rows, in order of appearance.
std::vector<std::string> peers_of(const BenchReport& report) {
  std::vector<std::string> peers;
  for (const ThroughputRow& row : report.results)
    if (row.system != kOurSystem && std::find(peers.begin(), peers.end(), row.system) == peers.end())
      peers.push_back(row.system);
  return peers;
}

void primary_headlines(const BenchReport& report, std::vector<ComparisonRow>& rows) {
  const std::vector<std::string> peers = peers_of(report);
  for (std::string_view operation : {"commit", "read"}) {
    for (const std::string& peer : peers) {
      rows.push_back({report.workload, std::string(operation) + ", 1 process", "ops/s", kHigher,
                      ops_per_s(find_row(report, operation, kOurSystem, 1)), peer,
                      ops_per_s(find_row(report, operation, peer, 1))});
    }
  }
  if (report.memory.empty()) return;
  const std::uint64_t largest = report.memory.back().sessions;
  std::optional<double> ours;
  for (const MemoryRow& row : report.memory)
    if (row.sessions == largest && row.system == kOurSystem && row.measured) ours = row.bytes_per_session;
  for (const MemoryRow& row : report.memory) {
    if (row.sessions != largest || row.system == kOurSystem) continue;
    rows.push_back({report.workload, "memory at " + std::to_string(largest) + " sessions", "B/session", kLower, ours,
                    row.system, row.measured ? std::optional<double>(row.bytes_per_session) : std::nullopt});
  }
}

// Three lines of the lock workload's comparison, under shorter names.
void lock_headlines(const BenchReport& report, std::vector<ComparisonRow>& rows) {
  if (peers_of(report).empty()) return;
  constexpr std::pair<std::string_view, std::string_view> kShown[] = {
      {"uncontended acquire+release, mean", "uncontended acquire+release, mean"},
      {"handoff between 2 processes, p50", "handoff between 2 processes, p50"},
      {"contended, 4 processes on 1 session", "4 processes on 1 session"}};
  const std::vector<ComparisonRow> lines = lock_comparison(report);
  for (const auto& [label, headline] : kShown)
    for (const ComparisonRow& line : lines)
      if (line.measure == label) rows.emplace_back(line).measure = std::string(headline);
}

// Each of our rows beside the peer's row of the same process count and
// routing; a setup of several processes names both in the measure.
void cycle_headlines(const BenchReport& report, std::vector<ComparisonRow>& rows) {
  for (const ThroughputRow& row : report.results) {
    if (row.system != kOurSystem) continue;
    const ThroughputRow* peer = nullptr;
    for (const ThroughputRow& other : report.results)
      if (other.system != kOurSystem && other.processes == row.processes && other.routing == row.routing) peer = &other;
    std::string measure = row.operation;
    if (row.processes > 1) measure += ", " + std::to_string(row.processes) + " procs, " + row.routing;
    rows.push_back({report.workload, measure, "cycles/s", kHigher, ops_per_s(&row),
                    peer != nullptr ? peer->system : std::string(kRedisSystem), ops_per_s(peer)});
  }
}

void delta_headlines(const BenchReport& report, std::vector<ComparisonRow>& rows) {
  for (const DeltaRow& row : report.deltas) {
    rows.push_back({report.workload, row.scenario, "B sent", kLower, static_cast<double>(row.frame_bytes),
                    "whole attribute", static_cast<double>(row.whole_bytes)});
  }
}

void replicate_headlines(const BenchReport& report, std::vector<ComparisonRow>& rows) {
  const auto find = [&](std::string_view system, int processes, bool paced) -> const ReplicationRow* {
    for (const ReplicationRow& row : report.replication)
      if (row.system == system && row.processes == processes && (row.paced_per_s > 0) == paced && row.measured)
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
  rows.push_back({report.workload, "lag to the backup, p50" + paced, "us", kLower, figure(ours_paced, lag),
                  std::string(kRedisSystem), figure(redis_paced, lag)});
  const auto wire = [](const ReplicationRow& row) -> std::optional<double> { return row.wire_bytes_per_commit(); };
  rows.push_back({report.workload, "bytes sent per commit" + paced, "B/commit", kLower, figure(ours_paced, wire),
                  std::string(kRedisSystem), figure(redis_paced, wire)});
  const auto replicated = [](const ReplicationRow& row) -> std::optional<double> {
    return row.commits_per_s_replicated;
  };
  rows.push_back({report.workload, "commits/s, 1 writer, backup attached", "commits/s", kHigher,
                  figure(find(kOurSystem, 1, false), replicated), std::string(kRedisSystem),
                  figure(find(kRedisSystem, 1, false), replicated)});
}

void worker_headlines(const BenchReport& report, std::vector<ComparisonRow>& rows) {
  const auto find = [&](std::string_view system) -> const ThroughputRow* {
    for (const ThroughputRow& row : report.results)
      if (row.system == system) return &row;
    return nullptr;
  };
  const ThroughputRow* ours = find(kOurSystem);
  const ThroughputRow* peer = find(kRedisSystem);
  const auto p99 = [](const ThroughputRow* row) -> std::optional<double> {
    if (row == nullptr || !row->measured) return std::nullopt;
    return row->p99_us;
  };
  const boost::json::value* sessions = report.parameters.if_contains("sessions");
  const std::string over = sessions != nullptr ? ", " + boost::json::serialize(*sessions) + " sessions" : "";
  rows.push_back({report.workload, "requests/s, one worker" + over, "requests/s", kHigher, ops_per_s(ours),
                  std::string(kRedisSystem), ops_per_s(peer)});
  rows.push_back({report.workload, "request p99, one worker" + over, "us", kLower, p99(ours), std::string(kRedisSystem),
                  p99(peer)});
}

}  // namespace

std::vector<ComparisonRow> headlines(const BenchReport& report) {
  std::vector<ComparisonRow> rows;
  if (report.workload == "primary")
    primary_headlines(report, rows);
  else if (report.workload == "lock")
    lock_headlines(report, rows);
  else if (report.workload == "cycle")
    cycle_headlines(report, rows);
  else if (report.workload == "delta")
    delta_headlines(report, rows);
  else if (report.workload == "replicate")
    replicate_headlines(report, rows);
  else if (report.workload == "worker")
    worker_headlines(report, rows);
  return rows;
}

void print_workload_heading(std::ostream& out, const BenchReport& report) {
  out << "=== " << report.workload << " (load " << fixed(report.machine.load_average, 2) << " at its start) ===\n\n";
}

void print_summary(std::ostream& out, std::span<const ComparisonRow> rows) {
  TextTable table({"workload", "measure", "unit", std::string(kOurSystem), "peer", "peer's", "ours better by"}, 3);
  for (const ComparisonRow& row : rows)
    table.add({row.workload, row.measure, row.unit, figure_text(row.ours), row.peer, figure_text(row.peer_figure),
               times_text(row.advantage())});
  table.print(out);
}

boost::json::array summary_json(std::span<const ComparisonRow> rows) {
  boost::json::array lines;
  for (const ComparisonRow& row : rows) {
    lines.push_back({{"workload", row.workload},
                     {"measure", row.measure},
                     {"unit", row.unit},
                     {"shmsession", json_or_null(row.ours)},
                     {"peer", row.peer},
                     {"peer_figure", json_or_null(row.peer_figure)},
                     {"ours_better_by", json_or_null(row.advantage())},
                     {"better_by_is", row.higher_is_better ? "ours/peer" : "peer/ours"}});
  }
  return lines;
}

}  // namespace shmsession::bench
