#include "tools/shmbench/cycle_report.hpp"

#include <optional>
#include <string>

#include "tools/shmbench/text_table.hpp"

namespace shmsession::bench {

namespace {

struct Ratios {
  std::optional<double> ops;  // ours/peer
  std::optional<double> p50;  // peer/ours
  std::optional<double> p99;  // peer/ours
};

const ThroughputRow* peer_row(const BenchReport& report) {
  for (const ThroughputRow& row : report.results)
    if (row.system != kOurSystem) return &row;
  return nullptr;
}

std::optional<double> quotient(double numerator, double denominator) {
  if (numerator <= 0 || denominator <= 0) return std::nullopt;
  return numerator / denominator;
}

Ratios ratios_of(const BenchReport& report, const ThroughputRow& ours) {
  const ThroughputRow* peer = peer_row(report);
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

void print_cycle_table(std::ostream& out, const BenchReport& report) {
  TextTable table({"operation", "system", "ops/s", "p50_us", "p99_us", "ops/s ours/peer", "p50 peer/ours",
                   "p99 peer/ours"},
                  2);
  const std::string na = "n/a";
  for (const ThroughputRow& row : report.results) {
    const Ratios ratios = ratios_of(report, row);
    table.add({row.operation, row.system, row.measured ? fixed(row.ops_per_s, 0) : na,
               row.measured ? fixed(row.p50_us, 2) : na, row.measured ? fixed(row.p99_us, 2) : na,
               ratio_text(ratios.ops), ratio_text(ratios.p50), ratio_text(ratios.p99)});
  }
  table.print(out);
}

}  // namespace

void print_cycle_tables(std::ostream& out, const BenchReport& report) {
  print_report_header(out, report);
  print_cycle_table(out, report);
  out << '\n';
  for (const auto& note : report.notes) out << "note: " << note << '\n';
  out << "elapsed: " << fixed(report.elapsed_s, 1) << " s\n";
}

boost::json::object cycle_report_json(const BenchReport& report) {
  boost::json::object doc = to_json(report);
  boost::json::array lines;
  for (const ThroughputRow& row : report.results) {
    if (row.system != kOurSystem) continue;
    const Ratios ratios = ratios_of(report, row);
    lines.push_back({{"operation", row.operation},
                     {"ops_per_s_ours_per_peer", ratio_json(ratios.ops)},
                     {"p50_peer_per_ours", ratio_json(ratios.p50)},
                     {"p99_peer_per_ours", ratio_json(ratios.p99)}});
  }
  doc["comparison"] = std::move(lines);
  return doc;
}

}  // namespace shmsession::bench
