#include "tools/shmbench/cycle_report.hpp"

#include <optional>
#include <string>
#include <vector>

#include "tools/shmbench/text_table.hpp"

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

std::string routing_text(const ThroughputRow& row) { return row.routing.empty() ? "-" : row.routing; }

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

std::string ratio_text(std::optional<double> ratio) {
  if (!ratio) return "";
  return fixed(*ratio, *ratio < 10 ? 2 : 1) + "x";
}

boost::json::value ratio_json(std::optional<double> ratio) {
  return ratio ? boost::json::value(*ratio) : boost::json::value(nullptr);
}

// With one process only, the layout of the one-process cycle (no procs
// and routing columns).
void print_cycle_table(std::ostream& out, const BenchReport& report) {
  const bool routed = several_processes(report);
  std::vector<std::string> header{"operation", "system"};
  if (routed) header.insert(header.end(), {"procs", "routing"});
  header.insert(header.end(), {"ops/s", "p50_us", "p99_us", "ops/s ours/peer", "p50 peer/ours", "p99 peer/ours"});
  TextTable table(header, routed ? 4 : 2);
  const std::string na = "n/a";
  for (const ThroughputRow& row : report.results) {
    const Ratios ratios = ratios_of(report, row);
    std::vector<std::string> cells{row.operation, row.system};
    if (routed) cells.insert(cells.end(), {std::to_string(row.processes), routing_text(row)});
    cells.insert(cells.end(), {row.measured ? fixed(row.ops_per_s, 0) : na, row.measured ? fixed(row.p50_us, 2) : na,
                               row.measured ? fixed(row.p99_us, 2) : na, ratio_text(ratios.ops), ratio_text(ratios.p50),
                               ratio_text(ratios.p99)});
    table.add(std::move(cells));
  }
  table.print(out);
}

// "request cycle, binary comparison" -> "binary".
std::string comparison_of(const std::string& operation) {
  if (operation == kCycleObjectGraph) return "object-graph";
  if (operation == kCycleBinary) return "binary";
  return operation;
}

void print_hand_over_table(std::ostream& out, const BenchReport& report) {
  out << "where a moved session's time goes (random routing: requests that waited for another process's lock)\n";
  TextTable table({"procs", "comparison", "phase", "samples", "mean_us", "p50_us", "p99_us"}, 3);
  const std::string na = "n/a";
  for (const HandOverPhaseRow& row : report.hand_over_phases) {
    const bool figures = row.measured && row.samples > 0;
    table.add({std::to_string(row.processes), comparison_of(row.operation), row.phase,
               row.measured ? std::to_string(row.samples) : na, figures ? fixed(row.mean_us, 2) : na,
               figures ? fixed(row.p50_us, 2) : na, figures ? fixed(row.p99_us, 2) : na});
  }
  table.print(out);
}

}  // namespace

void print_cycle_tables(std::ostream& out, const BenchReport& report) {
  print_report_header(out, report);
  print_cycle_table(out, report);
  out << '\n';
  if (!report.hand_over_phases.empty()) {
    print_hand_over_table(out, report);
    out << '\n';
  }
  for (const auto& note : report.notes) out << "note: " << note << '\n';
  out << "elapsed: " << fixed(report.elapsed_s, 1) << " s\n";
}

boost::json::object cycle_report_json(const BenchReport& report) {
  boost::json::object doc = to_json(report);
  boost::json::array lines;
  for (const ThroughputRow& row : report.results) {
    if (row.system != kOurSystem) continue;
    const Ratios ratios = ratios_of(report, row);
    boost::json::object line{{"operation", row.operation},
                             {"ops_per_s_ours_per_peer", ratio_json(ratios.ops)},
                             {"p50_peer_per_ours", ratio_json(ratios.p50)},
                             {"p99_peer_per_ours", ratio_json(ratios.p99)}};
    if (!row.routing.empty()) {
      line["processes"] = row.processes;
      line["routing"] = row.routing;
    }
    lines.push_back(std::move(line));
  }
  doc["comparison"] = std::move(lines);
  if (!report.hand_over_phases.empty()) {
    boost::json::array phases;
    for (const HandOverPhaseRow& row : report.hand_over_phases) {
      const bool figures = row.measured && row.samples > 0;
      phases.push_back({{"operation", row.operation},
                        {"processes", row.processes},
                        {"routing", "random"},
                        {"phase", row.phase},
                        {"samples", row.measured ? boost::json::value(row.samples) : boost::json::value(nullptr)},
                        {"mean_us", figures ? boost::json::value(row.mean_us) : boost::json::value(nullptr)},
                        {"p50_us", figures ? boost::json::value(row.p50_us) : boost::json::value(nullptr)},
                        {"p99_us", figures ? boost::json::value(row.p99_us) : boost::json::value(nullptr)}});
    }
    doc["hand_over"] = std::move(phases);
  }
  return doc;
}

}  // namespace shmsession::bench
