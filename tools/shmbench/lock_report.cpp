#include "tools/shmbench/lock_report.hpp"

#include "tools/shmbench/text_table.hpp"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/serialize.hpp>

namespace shmsession::bench {

namespace {

enum class Better { Lower, Higher };

// One line of the comparison: a figure read off a ThroughputRow.
struct Measure {
  std::string_view label;
  std::string_view unit;
  std::string_view operation;
  Better better;
  double (*figure)(const ThroughputRow& row);
};

constexpr Measure kMeasures[] = {
    {"uncontended acquire+release, mean", "ns", kUncontendedOperation, Better::Lower,
     [](const ThroughputRow& r) { return r.ops_per_s > 0 ? 1e9 / r.ops_per_s : 0.0; }},
    {"uncontended acquire+release, p50", "ns", kUncontendedOperation, Better::Lower,
     [](const ThroughputRow& r) { return r.p50_us * 1000.0; }},
    {"uncontended acquire+release, p99", "ns", kUncontendedOperation, Better::Lower,
     [](const ThroughputRow& r) { return r.p99_us * 1000.0; }},
    {"handoff between 2 processes, p50", "us", kHandoffOperation, Better::Lower,
     [](const ThroughputRow& r) { return r.p50_us; }},
    {"handoff between 2 processes, p99", "us", kHandoffOperation, Better::Lower,
     [](const ThroughputRow& r) { return r.p99_us; }},
    {"contended, 4 processes on 1 session", "cycles/s", kContendedOperation, Better::Higher,
     [](const ThroughputRow& r) { return r.ops_per_s; }},
};

struct ComparisonLine {
  const Measure* measure;
  std::optional<double> ours;
  std::optional<double> peer;

  std::optional<double> speedup() const {
    if (!ours || !peer || *ours <= 0 || *peer <= 0) return std::nullopt;
    return measure->better == Better::Lower ? *peer / *ours : *ours / *peer;
  }
};

std::optional<double> figure_of(const BenchReport& report, const Measure& measure, bool ours) {
  for (const ThroughputRow& row : report.results) {
    if (row.operation != measure.operation || (row.system == kOurSystem) != ours) continue;
    if (!row.measured) return std::nullopt;
    return measure.figure(row);
  }
  return std::nullopt;
}

std::vector<ComparisonLine> comparison(const BenchReport& report) {
  std::vector<ComparisonLine> lines;
  for (const Measure& measure : kMeasures)
    lines.push_back({&measure, figure_of(report, measure, true), figure_of(report, measure, false)});
  return lines;
}

// Three significant digits or more: 0.412, 41.2, 412, 41200.
std::string figure_text(std::optional<double> value) {
  if (!value) return "n/a";
  return fixed(*value, *value < 1 ? 3 : *value < 10 ? 2 : *value < 100 ? 1 : 0);
}

std::string speedup_text(std::optional<double> speedup) {
  if (!speedup) return "";
  return fixed(*speedup, *speedup < 10 ? 2 : *speedup < 1000 ? 1 : 0) + "x";
}

std::string peer_column(const BenchReport& report) {
  for (const ThroughputRow& row : report.results)
    if (row.system != kOurSystem) return row.system;
  return std::string(kRedisSystem);
}

void print_comparison(std::ostream& out, const BenchReport& report) {
  const std::string peer = peer_column(report);
  TextTable table({"measure", "unit", std::string(kOurSystem), peer,
                   "speedup (times: " + peer + "/ours, rates: ours/" + peer + ")"},
                  2);
  for (const ComparisonLine& line : comparison(report))
    table.add({std::string(line.measure->label), std::string(line.measure->unit), figure_text(line.ours),
               figure_text(line.peer), speedup_text(line.speedup())});
  table.print(out);
}

boost::json::value optional_json(std::optional<double> value) {
  return value ? boost::json::value(*value) : boost::json::value(nullptr);
}

}  // namespace

void print_lock_tables(std::ostream& out, const BenchReport& report) {
  print_report_header(out, report);
  print_comparison(out, report);
  out << '\n';
  for (const auto& note : report.notes) out << "note: " << note << '\n';
  out << "elapsed: " << fixed(report.elapsed_s, 1) << " s\n";
}

boost::json::object lock_report_json(const BenchReport& report) {
  boost::json::object doc = to_json(report);
  boost::json::array lines;
  for (const ComparisonLine& line : comparison(report)) {
    lines.push_back({{"measure", line.measure->label},
                     {"unit", line.measure->unit},
                     {"shmsession", optional_json(line.ours)},
                     {"peer", optional_json(line.peer)},
                     {"speedup", optional_json(line.speedup())},
                     {"speedup_is", line.measure->better == Better::Lower ? "peer/ours" : "ours/peer"}});
  }
  doc["comparison"] = std::move(lines);
  return doc;
}

}  // namespace shmsession::bench
