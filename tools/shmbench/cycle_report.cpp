#include "tools/shmbench/cycle_report.hpp"

#include <optional>
#include <string>
#include <vector>

namespace shmsession::bench {

namespace {

struct Ratios {
  std::optional<double> ops;  // ours/peer
  std::optional<double> p50;  // peer/ours
  std::optional<double> p99;  // peer/ours
};

// The peer's row of the same process count and routing as `ours`.
const ThroughputRow* peer_row(const BenchReport& report, const ThroughputRow& ours) {
  for (const ThroughputRow& row : report.results)
    if (row.system != kOurSystem && row.processes == ours.processes && row.routing == ours.routing) return &row;
  return nullptr;
}

bool several_processes(const BenchReport& report) {
  for (const ThroughputRow& row : report.results)
    if (row.processes > 1) return true;
  return false;
}

std::optional<double> quotient(double numerator, double denominator) {
  if (numerator <= 0 || denominator <= 0) return std::nullopt;
  return numerator / denominator;
}

Ratios ratios_of(const BenchReport& report, const ThroughputRow& ours) {
  const ThroughputRow* peer = peer_row(report, ours);
  if (ours.system != kOurSystem || !ours.measured || peer == nullptr || !peer->measured) return {};
  return {quotient(ours.ops_per_s, peer->ops_per_s), quotient(peer->p50_us, ours.p50_us),
          quotient(peer->p99_us, ours.p99_us)};
}

// With one process only, the layout of the one-process cycle (no procs
// and routing columns).
TextTable cycle_table(const BenchReport& report) {
  const bool routed = several_processes(report);
  std::vector<std::string> header{"operation", "system"};
  if (routed) header.insert(header.end(), {"procs", "routing"});
  header.insert(header.end(), {"ops/s", "p50_us", "p99_us", "ops/s ours/peer", "p50 peer/ours", "p99 peer/ours"});
  TextTable table(header, routed ? 4 : 2);
  for (const ThroughputRow& row : report.results) {
    const Ratios ratios = ratios_of(report, row);
    std::vector<std::string> cells{row.operation, row.system};
    if (routed) cells.insert(cells.end(), {std::to_string(row.processes), row.routing.empty() ? "-" : row.routing});
    cells.insert(cells.end(), {fixed_if(row.measured, row.ops_per_s, 0), fixed_if(row.measured, row.p50_us, 2),
                               fixed_if(row.measured, row.p99_us, 2), times_text(ratios.ops), times_text(ratios.p50),
                               times_text(ratios.p99)});
    table.add(std::move(cells));
  }
  return table;
}

// "request cycle, binary comparison" -> "binary".
std::string comparison_of(const std::string& operation) {
  if (operation == kCycleObjectGraph) return "object-graph";
  if (operation == kCycleBinary) return "binary";
  return operation;
}

TextTable hand_over_table(const BenchReport& report) {
  TextTable table({"procs", "comparison", "phase", "samples", "mean_us", "p50_us", "p99_us"}, 3);
  for (const HandOverPhaseRow& row : report.hand_over_phases) {
    const bool figures = row.measured && row.samples > 0;
    table.add({std::to_string(row.processes), comparison_of(row.operation), row.phase,
               row.measured ? std::to_string(row.samples) : kNotAvailable, fixed_if(figures, row.mean_us, 2),
               fixed_if(figures, row.p50_us, 2), fixed_if(figures, row.p99_us, 2)});
  }
  return table;
}

std::vector<ReportSection> cycle_sections(const BenchReport& report) {
  std::vector<ReportSection> sections{{"", cycle_table(report)}};
  if (!report.hand_over_phases.empty())
    sections.push_back(
        {"where a moved session's time goes (random routing: requests that waited for another "
         "process's lock)",
         hand_over_table(report)});
  return sections;
}

void add_cycle_json(const BenchReport& report, boost::json::object& doc) {
  boost::json::array lines;
  for (const ThroughputRow& row : report.results) {
    if (row.system != kOurSystem) continue;
    const Ratios ratios = ratios_of(report, row);
    boost::json::object line{{"operation", row.operation},
                             {"ops_per_s_ours_per_peer", json_or_null(ratios.ops)},
                             {"p50_peer_per_ours", json_or_null(ratios.p50)},
                             {"p99_peer_per_ours", json_or_null(ratios.p99)}};
    if (!row.routing.empty()) {
      line["processes"] = row.processes;
      line["routing"] = row.routing;
    }
    lines.push_back(std::move(line));
  }
  doc["comparison"] = std::move(lines);
  if (report.hand_over_phases.empty()) return;
  boost::json::array phases;
  for (const HandOverPhaseRow& row : report.hand_over_phases) {
    const bool figures = row.measured && row.samples > 0;
    phases.push_back({{"operation", row.operation},
                      {"processes", row.processes},
                      {"routing", "random"},
                      {"phase", row.phase},
                      {"samples", row.measured ? boost::json::value(row.samples) : boost::json::value(nullptr)},
                      {"mean_us", json_if(figures, row.mean_us)},
                      {"p50_us", json_if(figures, row.p50_us)},
                      {"p99_us", json_if(figures, row.p99_us)}});
  }
  doc["hand_over"] = std::move(phases);
}

// Each of our rows beside the peer's row of the same process count and
// routing; a setup of several processes names both in the measure.
std::vector<ComparisonRow> cycle_headlines(const BenchReport& report) {
  std::vector<ComparisonRow> rows;
  for (const ThroughputRow& row : report.results) {
    if (row.system != kOurSystem) continue;
    const ThroughputRow* peer = peer_row(report, row);
    std::string measure = row.operation;
    if (row.processes > 1) measure += ", " + std::to_string(row.processes) + " procs, " + row.routing;
    rows.push_back({report.workload, measure, "cycles/s", kHigherIsBetter, rate_of(&row),
                    peer != nullptr ? peer->system : std::string(kRedisSystem), rate_of(peer)});
  }
  return rows;
}

}  // namespace

const ReportLayout kCycleLayout{&cycle_sections, nullptr, &add_cycle_json, &cycle_headlines};

}  // namespace shmsession::bench
