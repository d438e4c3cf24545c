#include "tools/shmbench/bench_report.hpp"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include <boost/json/serialize.hpp>

#include "tools/shmbench/process_group.hpp"
#include "tools/shmbench/text_table.hpp"

namespace shmsession::bench {

namespace {

// A ratio stands on its peer's row (there may be several peers): ours / that
// peer, from our row of the same operation and process count.
std::optional<double> throughput_ratio(const BenchReport& report, const ThroughputRow& peer) {
  if (peer.system == kOurSystem || !peer.measured || peer.ops_per_s <= 0) return std::nullopt;
  for (const auto& ours : report.results) {
    if (ours.system != kOurSystem || ours.operation != peer.operation || ours.processes != peer.processes ||
        ours.routing != peer.routing)
      continue;
    if (!ours.measured) return std::nullopt;
    return ours.ops_per_s / peer.ops_per_s;
  }
  return std::nullopt;
}

std::optional<double> memory_ratio(const BenchReport& report, const MemoryRow& peer) {
  if (peer.system == kOurSystem || !peer.measured || peer.bytes_per_session <= 0) return std::nullopt;
  for (const auto& ours : report.memory) {
    if (ours.system != kOurSystem || ours.sessions != peer.sessions) continue;
    if (!ours.measured) return std::nullopt;
    return ours.bytes_per_session / peer.bytes_per_session;
  }
  return std::nullopt;
}

std::string parameter_text(const boost::json::value& value) {
  if (value.is_string()) return std::string(value.get_string());
  if (value.is_double()) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", value.get_double());
    return text;
  }
  return boost::json::serialize(value);
}

TextTable throughput_table(const BenchReport& report) {
  TextTable table({"workload", "operation", "system", "procs", "ops/s", "p50_us", "p99_us", "ours/peer"}, 3);
  for (const auto& row : report.results) {
    table.add({report.workload, row.operation, row.system, std::to_string(row.processes),
               fixed_if(row.measured, row.ops_per_s, 0), fixed_if(row.measured, row.p50_us, 2),
               fixed_if(row.measured, row.p99_us, 2), times_text(throughput_ratio(report, row))});
  }
  return table;
}

TextTable memory_table(const BenchReport& report) {
  TextTable table(
      {"sessions", "system", "bytes/session", "payload/session", "overhead", "ours/peer", "footprint/session"}, 2);
  for (const auto& row : report.memory) {
    table.add({std::to_string(row.sessions), row.system, fixed_if(row.measured, row.bytes_per_session, 0),
               fixed(row.payload_per_session, 0), fixed_if(row.measured, row.overhead_per_session(), 0),
               times_text(memory_ratio(report, row)),
               row.footprint_per_session ? fixed(*row.footprint_per_session, 0) : ""});
  }
  return table;
}

const ThroughputRow* find_row(const BenchReport& report, std::string_view operation, std::string_view system,
                              int processes) {
  for (const ThroughputRow& row : report.results)
    if (row.operation == operation && row.system == system && row.processes == processes) return &row;
  return nullptr;
}

// Every peer system in the report's throughput rows, in order of appearance
// (primary's separate stores are ours, not a peer).
std::vector<std::string> peers_of(const BenchReport& report) {
  std::vector<std::string> peers;
  for (const ThroughputRow& row : report.results)
    if (row.system != kOurSystem && row.system != kSeparateStoresSystem &&
        std::find(peers.begin(), peers.end(), row.system) == peers.end())
      peers.push_back(row.system);
  return peers;
}

std::vector<ComparisonRow> primary_headlines(const BenchReport& report) {
  std::vector<ComparisonRow> rows;
  const std::vector<std::string> peers = peers_of(report);
  for (std::string_view operation : {"commit", "read"}) {
    for (const std::string& peer : peers) {
      rows.push_back({report.workload, std::string(operation) + ", 1 process", "ops/s", kHigherIsBetter,
                      rate_of(find_row(report, operation, kOurSystem, 1)), peer,
                      rate_of(find_row(report, operation, peer, 1))});
    }
  }
  // Scaling: ours with 2 processes on one store against 1 process, beside
  // 2 processes on separate stores (nothing shared, and the second store's
  // pages written by its one worker alone): below 1x sharing one store
  // costs scaling, in lines or in layout.
  const auto per_one = [&](const ThroughputRow* two) -> std::optional<double> {
    const std::optional<double> one = rate_of(find_row(report, "commit", kOurSystem, 1));
    const std::optional<double> rate = rate_of(two);
    if (!one || !rate || *one <= 0) return std::nullopt;
    return *rate / *one;
  };
  if (const ThroughputRow* apart = find_row(report, "commit", kSeparateStoresSystem, 2))
    rows.push_back({report.workload, "commit, 2 processes / 1 process", "x", kHigherIsBetter,
                    per_one(find_row(report, "commit", kOurSystem, 2)), std::string(kSeparateStoresSystem),
                    per_one(apart)});
  if (report.memory.empty()) return rows;
  const std::uint64_t largest = report.memory.back().sessions;
  std::optional<double> ours;
  for (const MemoryRow& row : report.memory)
    if (row.sessions == largest && row.system == kOurSystem && row.measured) ours = row.bytes_per_session;
  for (const MemoryRow& row : report.memory) {
    if (row.sessions != largest || row.system == kOurSystem) continue;
    rows.push_back({report.workload, "memory at " + std::to_string(largest) + " sessions", "B/session", kLowerIsBetter,
                    ours, row.system, row.measured ? std::optional<double>(row.bytes_per_session) : std::nullopt});
  }
  return rows;
}

std::vector<ReportSection> generic_sections(const BenchReport& report) {
  std::vector<ReportSection> sections;
  if (!report.results.empty()) sections.push_back({"", throughput_table(report)});
  if (!report.memory.empty()) sections.push_back({"", memory_table(report)});
  return sections;
}

void print_report_header(std::ostream& out, const BenchReport& report) {
  if (!report.machine_above) out << "machine: " << machine_line(report.machine) << '\n';
  out << "peer: " << report.peer << " (" << report.peer_origin << ")\n";
  out << "workload: " << report.workload << (report.quick ? " (--quick)" : "");
  for (const auto& [key, value] : report.parameters) out << "  " << key << "=" << parameter_text(value);
  out << '\n';
  if (!report.description.empty()) out << report.description << '\n';
  out << '\n';
}

// The value of the first line starting with `key` ("model name\t: AMD",
// "PRETTY_NAME=\"Debian\""), without separators and quotes.
std::string first_line_value(const std::string& path, std::string_view key) {
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with(key)) continue;
    std::string value = line.substr(key.size());
    value.erase(0, value.find_first_not_of(" \t:=\""));
    value.erase(value.find_last_not_of(" \t\"") + 1);
    return value.empty() ? "unknown" : value;
  }
  return "unknown";
}

}  // namespace

MachineInfo describe_machine() {
  MachineInfo machine;
  const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  machine.cpus = cpus > 0 ? static_cast<unsigned>(cpus) : 0;
  machine.cpu_model = first_line_value("/proc/cpuinfo", "model name");
  utsname name{};
  machine.kernel = ::uname(&name) == 0 ? std::string(name.sysname) + " " + name.release : "unknown";
  machine.os = first_line_value("/etc/os-release", "PRETTY_NAME=");
  double load[1];
  if (::getloadavg(load, 1) == 1) machine.load_average = load[0];
  return machine;
}

std::string machine_line(const MachineInfo& machine) {
  return std::to_string(machine.cpus) + " cpus, " + machine.cpu_model + ", " + machine.kernel + ", " + machine.os +
         ", load " + fixed(machine.load_average, 2);
}

boost::json::object machine_json(const MachineInfo& machine) {
  return {{"cpus", machine.cpus},
          {"cpu_model", machine.cpu_model},
          {"kernel", machine.kernel},
          {"os", machine.os},
          {"load_average", machine.load_average}};
}

ThroughputRow throughput_row(std::string operation, std::string_view system, const LoopResult& loop) {
  ThroughputRow row{std::move(operation), std::string(system), loop.processes};
  row.measured = true;
  row.ops = loop.ops;
  row.wall_s = loop.wall_s;
  row.ops_per_s = loop.ops_per_s();
  row.p50_us = loop.latency.percentile_ns(0.50) / 1000.0;
  row.p99_us = loop.latency.percentile_ns(0.99) / 1000.0;
  return row;
}

ThroughputRow unavailable_row(std::string operation, std::string_view system, int processes) {
  return ThroughputRow{std::move(operation), std::string(system), processes};
}

const ReportLayout kGenericLayout{&generic_sections, nullptr, nullptr, &primary_headlines};

std::optional<double> rate_of(const ThroughputRow* row) {
  if (row == nullptr || !row->measured) return std::nullopt;
  return row->ops_per_s;
}

std::optional<double> ComparisonRow::advantage() const {
  if (!ours || !peer_figure || *ours <= 0 || *peer_figure <= 0) return std::nullopt;
  return higher_is_better ? *ours / *peer_figure : *peer_figure / *ours;
}

boost::json::value json_or_null(std::optional<double> value) {
  return value ? boost::json::value(*value) : boost::json::value(nullptr);
}

boost::json::value json_or_null(std::optional<std::uint64_t> value) {
  return value ? boost::json::value(*value) : boost::json::value(nullptr);
}

void print_report(std::ostream& out, const BenchReport& report, const ReportLayout& layout) {
  print_report_header(out, report);
  for (const ReportSection& section : layout.sections(report)) {
    if (!section.title.empty()) out << section.title << '\n';
    if (section.table) section.table->print(out);
    out << '\n';
  }
  if (layout.closing_lines != nullptr)
    for (const std::string& line : layout.closing_lines(report)) out << line << '\n';
  for (const auto& note : report.notes) out << "note: " << note << '\n';
  for (const auto& failure : report.failures) out << "FAILED: " << failure << '\n';
  out << "elapsed: " << fixed(report.elapsed_s, 1) << " s\n";
}

boost::json::object report_json(const BenchReport& report, const ReportLayout& layout) {
  boost::json::object doc;
  doc["machine"] = machine_json(report.machine);
  doc["workload"] = report.workload;
  doc["description"] = report.description;
  doc["quick"] = report.quick;
  doc["peer"] = report.peer;
  doc["parameters"] = report.parameters;
  boost::json::array results;
  for (const auto& row : report.results) {
    boost::json::object line{{"operation", row.operation},
                             {"system", row.system},
                             {"processes", row.processes},
                             {"ops", row.ops},
                             {"wall_s", json_if(row.measured, row.wall_s)},
                             {"ops_per_s", json_if(row.measured, row.ops_per_s)},
                             {"p50_us", json_if(row.measured, row.p50_us)},
                             {"p99_us", json_if(row.measured, row.p99_us)},
                             {"ours_per_peer", json_or_null(throughput_ratio(report, row))}};
    if (!row.routing.empty()) line["routing"] = row.routing;
    results.push_back(std::move(line));
  }
  doc["results"] = std::move(results);
  boost::json::array memory;
  for (const auto& row : report.memory) {
    memory.push_back({{"sessions", row.sessions},
                      {"system", row.system},
                      {"bytes_per_session", json_if(row.measured, row.bytes_per_session)},
                      {"payload_per_session", row.payload_per_session},
                      {"overhead_per_session", json_if(row.measured, row.overhead_per_session())},
                      {"ours_per_peer", json_or_null(memory_ratio(report, row))},
                      {"footprint_per_session", json_or_null(row.footprint_per_session)}});
  }
  doc["memory"] = std::move(memory);
  boost::json::array notes(report.notes.begin(), report.notes.end());
  doc["notes"] = std::move(notes);
  doc["elapsed_s"] = report.elapsed_s;
  if (layout.add_json != nullptr) layout.add_json(report, doc);
  return doc;
}

}  // namespace shmsession::bench
