#include "tools/shmbench/lock_report.hpp"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

namespace shmsession::bench {

namespace {

// One line of the comparison: a figure read off a ThroughputRow.
struct Measure {
  std::string_view label;
  std::string_view unit;
  std::string_view operation;
  bool higher_is_better;
  double (*figure)(const ThroughputRow& row);
};

constexpr Measure kMeasures[] = {
    {"uncontended acquire+release, mean", "ns", kUncontendedOperation, kLowerIsBetter,
     [](const ThroughputRow& r) { return r.ops_per_s > 0 ? 1e9 / r.ops_per_s : 0.0; }},
    {"uncontended acquire+release, p50", "ns", kUncontendedOperation, kLowerIsBetter,
     [](const ThroughputRow& r) { return r.p50_us * 1000.0; }},
    {"uncontended acquire+release, p99", "ns", kUncontendedOperation, kLowerIsBetter,
     [](const ThroughputRow& r) { return r.p99_us * 1000.0; }},
    {"handoff between 2 processes, p50", "us", kHandoffOperation, kLowerIsBetter,
     [](const ThroughputRow& r) { return r.p50_us; }},
    {"handoff between 2 processes, p99", "us", kHandoffOperation, kLowerIsBetter,
     [](const ThroughputRow& r) { return r.p99_us; }},
    {"contended, 4 processes on 1 session", "cycles/s", kContendedOperation, kHigherIsBetter,
     [](const ThroughputRow& r) { return r.ops_per_s; }},
};

std::optional<double> figure_of(const BenchReport& report, const Measure& measure, bool ours) {
  for (const ThroughputRow& row : report.results) {
    if (row.operation != measure.operation || (row.system == kOurSystem) != ours) continue;
    if (!row.measured) return std::nullopt;
    return measure.figure(row);
  }
  return std::nullopt;
}

std::string peer_of(const BenchReport& report) {
  for (const ThroughputRow& row : report.results)
    if (row.system != kOurSystem) return row.system;
  return std::string(kRedisSystem);
}

std::vector<ComparisonRow> lock_comparison(const BenchReport& report) {
  std::vector<ComparisonRow> lines;
  for (const Measure& measure : kMeasures)
    lines.push_back({report.workload, std::string(measure.label), std::string(measure.unit), measure.higher_is_better,
                     figure_of(report, measure, true), peer_of(report), figure_of(report, measure, false)});
  return lines;
}

std::vector<ReportSection> lock_sections(const BenchReport& report) {
  const std::string peer = peer_of(report);
  TextTable table({"measure", "unit", std::string(kOurSystem), peer,
                   "speedup (times: " + peer + "/ours, rates: ours/" + peer + ")"},
                  2);
  for (const ComparisonRow& line : lock_comparison(report))
    table.add(
        {line.measure, line.unit, figure_text(line.ours), figure_text(line.peer_figure), times_text(line.advantage())});
  return {{"", std::move(table)}};
}

void add_lock_json(const BenchReport& report, boost::json::object& doc) {
  boost::json::array lines;
  for (const ComparisonRow& line : lock_comparison(report)) {
    lines.push_back({{"measure", line.measure},
                     {"unit", line.unit},
                     {"shmsession", json_or_null(line.ours)},
                     {"peer", json_or_null(line.peer_figure)},
                     {"speedup", json_or_null(line.advantage())},
                     {"speedup_is", line.higher_is_better ? "ours/peer" : "peer/ours"}});
  }
  doc["comparison"] = std::move(lines);
}

// Three lines of the comparison, under shorter names; none without a peer's rows.
std::vector<ComparisonRow> lock_headlines(const BenchReport& report) {
  std::vector<ComparisonRow> rows;
  if (std::none_of(report.results.begin(), report.results.end(),
                   [](const ThroughputRow& row) { return row.system != kOurSystem; }))
    return rows;
  constexpr std::pair<std::string_view, std::string_view> kShown[] = {
      {"uncontended acquire+release, mean", "uncontended acquire+release, mean"},
      {"handoff between 2 processes, p50", "handoff between 2 processes, p50"},
      {"contended, 4 processes on 1 session", "4 processes on 1 session"}};
  const std::vector<ComparisonRow> lines = lock_comparison(report);
  for (const auto& [label, headline] : kShown)
    for (const ComparisonRow& line : lines)
      if (line.measure == label) rows.emplace_back(line).measure = std::string(headline);
  return rows;
}

}  // namespace

const ReportLayout kLockLayout{&lock_sections, nullptr, &add_lock_json, &lock_headlines};

}  // namespace shmsession::bench
