#include "tools/shmbench/worker_report.hpp"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include "tools/shmbench/text_table.hpp"

namespace shmsession::bench {

namespace {

constexpr std::size_t kShownSamples = 30;
constexpr double kMiB = 1024.0 * 1024.0;

// One system's figures over its samples.
struct Peaks {
  std::size_t samples = 0;
  double rss_start_mib = 0;
  double rss_peak_mib = 0;
  double store_end_mib = 0;
  std::optional<std::uint64_t> kept;
  std::optional<double> kept_mib;
  std::optional<std::uint64_t> locks;
  std::optional<std::uint64_t> locks_in_store;
  std::optional<std::uint64_t> evictions;  // at the last sample
};

template <class T>
void raise(std::optional<T>& peak, const std::optional<T>& value) {
  if (value) peak = peak ? std::max(*peak, *value) : *value;
}

Peaks peaks_of(const BenchReport& report, std::string_view system) {
  Peaks peaks;
  for (const ResidencyRow& row : report.residency) {
    if (row.system != system) continue;
    if (peaks.samples++ == 0) peaks.rss_start_mib = row.worker_rss_anon_mib;
    peaks.rss_peak_mib = std::max(peaks.rss_peak_mib, row.worker_rss_anon_mib);
    peaks.store_end_mib = row.store_mib;
    raise(peaks.kept, row.kept_sessions);
    raise(peaks.kept_mib, row.kept_mib);
    raise(peaks.locks, row.locks_held);
    raise(peaks.locks_in_store, row.locks_in_store);
    peaks.evictions = row.evictions;
  }
  return peaks;
}

const ThroughputRow* request_row(const BenchReport& report, std::string_view system) {
  for (const ThroughputRow& row : report.results)
    if (row.system == system) return &row;
  return nullptr;
}

std::string optional_count_text(const std::optional<std::uint64_t>& value) {
  return value ? std::to_string(*value) : "-";
}

std::string tenths_text(const std::optional<double>& value) { return value ? fixed(*value, 1) : "-"; }

std::uint64_t parameter(const BenchReport& report, std::string_view key) {
  const boost::json::value* value = report.parameters.if_contains(key);
  return value != nullptr && value->is_number() ? value->to_number<std::uint64_t>() : 0;
}

// Nullopt if the system has no samples.
std::optional<ReportSection> samples_section(const BenchReport& report, std::string_view system) {
  std::vector<const ResidencyRow*> rows;
  for (const ResidencyRow& row : report.residency)
    if (row.system == system) rows.push_back(&row);
  if (rows.empty()) return std::nullopt;
  const std::size_t step = (rows.size() + kShownSamples - 1) / kShownSamples;
  ReportSection section{
      "samples, " + std::string(system) + " (" + std::to_string(rows.size()) + " samples, one a second" +
          (step > 1 ? ", one in " + std::to_string(step) + " and the last shown; --json has all" : std::string()) + ")",
      TextTable({"time_s", "requests", "sessions", "RssAnon MiB", "store MiB", "kept", "kept MiB", "evictions", "locks",
                 "locks in store"},
                0)};
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (i % step != 0 && i + 1 != rows.size()) continue;
    const ResidencyRow& row = *rows[i];
    section.table->add({fixed(row.time_s, 1), std::to_string(row.requests), std::to_string(row.sessions_seen),
                        fixed(row.worker_rss_anon_mib, 1), fixed(row.store_mib, 1),
                        optional_count_text(row.kept_sessions), tenths_text(row.kept_mib),
                        optional_count_text(row.evictions), optional_count_text(row.locks_held),
                        optional_count_text(row.locks_in_store)});
  }
  return section;
}

// One line of the summary: its figure for one system, and the limit it is
// held against (none: "").
enum class Limit { None, MaxSessions, MaxMiB };
struct SummaryMeasure {
  std::string_view label;
  std::string (*figure)(const WorkerRow& worker, const ThroughputRow& loop, const Peaks& peaks);
  Limit limit = Limit::None;
};

using W = const WorkerRow&;
using L = const ThroughputRow&;
using P = const Peaks&;

const SummaryMeasure kSummary[] = {
    {"requests", [](W w, L, P) { return std::to_string(w.requests); }},
    {"distinct sessions", [](W w, L, P) { return std::to_string(w.sessions); }},
    {"requests new / follow-up / returning",
     [](W w, L, P) {
       return std::to_string(w.new_visits) + " / " + std::to_string(w.follow_ups) + " / " + std::to_string(w.returning);
     }},
    {"requests/s", [](W, L l, P) { return fixed(l.ops_per_s, 0); }},
    {"request p50 us", [](W, L l, P) { return fixed(l.p50_us, 2); }},
    {"request p99 us", [](W, L l, P) { return fixed(l.p99_us, 2); }},
    {"worker RssAnon at start, MiB", [](W, L, P p) { return fixed(p.rss_start_mib, 1); }},
    {"worker RssAnon peak, MiB", [](W, L, P p) { return fixed(p.rss_peak_mib, 1); }},
    {"worker RssAnon peak growth, MiB", [](W, L, P p) { return fixed(p.rss_peak_mib - p.rss_start_mib, 1); }},
    {"store memory at the end, MiB", [](W, L, P p) { return fixed(p.store_end_mib, 1); }},
    {"peak kept sessions", [](W, L, P p) { return optional_count_text(p.kept); }, Limit::MaxSessions},
    {"peak kept MiB", [](W, L, P p) { return tenths_text(p.kept_mib); }, Limit::MaxMiB},
    {"peak locks held", [](W, L, P p) { return optional_count_text(p.locks); }, Limit::MaxSessions},
    {"peak locks in store (scan)", [](W, L, P p) { return optional_count_text(p.locks_in_store); }, Limit::MaxSessions},
    {"evictions", [](W, L, P p) { return optional_count_text(p.evictions); }},
    {"revisits whose copy was let go", [](W w, L, P) { return optional_count_text(w.reopened); }},
    {"longest sample, ms", [](W w, L, P) { return fixed(w.longest_sample_ms, 1); }},
    {"longest Store::locks() scan, ms", [](W w, L, P) { return tenths_text(w.longest_scan_ms); }},
    {"sessions read back / differing",
     [](W w, L, P) { return std::to_string(w.verified) + " / " + std::to_string(w.mismatched); }},
};

std::string max_mib_text(const BenchReport& report) {
  return fixed(static_cast<double>(parameter(report, "max_bytes")) / kMiB, 1);
}

TextTable summary_table(const BenchReport& report) {
  std::vector<std::string> header{"measure"};
  for (const WorkerRow& worker : report.workers) header.push_back(worker.system);
  header.push_back("limit");
  TextTable table(std::move(header), 1);
  for (const SummaryMeasure& measure : kSummary) {
    std::vector<std::string> line{std::string(measure.label)};
    for (const WorkerRow& worker : report.workers) {
      const ThroughputRow* loop = request_row(report, worker.system);
      line.push_back(worker.measured && loop != nullptr ? measure.figure(worker, *loop, peaks_of(report, worker.system))
                                                        : kNotAvailable);
    }
    line.push_back(measure.limit == Limit::MaxSessions ? std::to_string(parameter(report, "max_sessions"))
                   : measure.limit == Limit::MaxMiB    ? max_mib_text(report)
                                                       : "");
    table.add(std::move(line));
  }
  return table;
}

std::vector<ReportSection> worker_sections(const BenchReport& report) {
  std::vector<ReportSection> sections{{"limits of the worker's Client: max_sessions " +
                                           std::to_string(parameter(report, "max_sessions")) + ", max_bytes " +
                                           max_mib_text(report) + " MiB, max_idle " +
                                           std::to_string(parameter(report, "max_idle_s")) + " s",
                                       std::nullopt}};
  for (const WorkerRow& worker : report.workers)
    if (std::optional<ReportSection> samples = samples_section(report, worker.system))
      sections.push_back(std::move(*samples));
  sections.push_back({"", summary_table(report)});
  return sections;
}

boost::json::object summary_json(const BenchReport& report, const WorkerRow& worker) {
  const ThroughputRow* loop = request_row(report, worker.system);
  boost::json::object doc{{"measured", worker.measured && loop != nullptr}};
  if (!worker.measured || loop == nullptr) return doc;
  const Peaks peaks = peaks_of(report, worker.system);
  doc["requests"] = worker.requests;
  doc["sessions"] = worker.sessions;
  doc["requests_per_s"] = loop->ops_per_s;
  doc["p50_us"] = loop->p50_us;
  doc["p99_us"] = loop->p99_us;
  doc["rss_anon_start_mib"] = peaks.rss_start_mib;
  doc["rss_anon_peak_mib"] = peaks.rss_peak_mib;
  doc["rss_anon_peak_growth_mib"] = peaks.rss_peak_mib - peaks.rss_start_mib;
  doc["store_end_mib"] = peaks.store_end_mib;
  doc["peak_kept_sessions"] = json_or_null(peaks.kept);
  doc["peak_kept_mib"] = json_or_null(peaks.kept_mib);
  doc["peak_locks_held"] = json_or_null(peaks.locks);
  doc["peak_locks_in_store"] = json_or_null(peaks.locks_in_store);
  doc["evictions"] = json_or_null(peaks.evictions);
  doc["reopened"] = json_or_null(worker.reopened);
  doc["new_visits"] = worker.new_visits;
  doc["follow_ups"] = worker.follow_ups;
  doc["returning"] = worker.returning;
  doc["longest_sample_ms"] = worker.longest_sample_ms;
  doc["longest_scan_ms"] = json_or_null(worker.longest_scan_ms);
  doc["verified"] = worker.verified;
  doc["mismatched"] = worker.mismatched;
  return doc;
}

void add_worker_json(const BenchReport& report, boost::json::object& doc) {
  doc["limits"] = {{"max_sessions", parameter(report, "max_sessions")},
                   {"max_bytes", parameter(report, "max_bytes")},
                   {"max_idle_s", parameter(report, "max_idle_s")}};
  boost::json::array samples;
  for (const ResidencyRow& row : report.residency) {
    samples.push_back({{"system", row.system},
                       {"time_s", row.time_s},
                       {"requests", row.requests},
                       {"sessions_seen", row.sessions_seen},
                       {"worker_rss_anon_mib", row.worker_rss_anon_mib},
                       {"store_mib", row.store_mib},
                       {"kept_sessions", json_or_null(row.kept_sessions)},
                       {"kept_mib", json_or_null(row.kept_mib)},
                       {"evictions", json_or_null(row.evictions)},
                       {"locks_held", json_or_null(row.locks_held)},
                       {"locks_in_store", json_or_null(row.locks_in_store)}});
  }
  doc["samples"] = std::move(samples);
  boost::json::object summary;
  for (const WorkerRow& worker : report.workers) summary[worker.system] = summary_json(report, worker);
  doc["summary"] = std::move(summary);
}

std::vector<ComparisonRow> worker_headlines(const BenchReport& report) {
  const ThroughputRow* ours = request_row(report, kOurSystem);
  const ThroughputRow* peer = request_row(report, kRedisSystem);
  const auto p99 = [](const ThroughputRow* row) -> std::optional<double> {
    if (row == nullptr || !row->measured) return std::nullopt;
    return row->p99_us;
  };
  const boost::json::value* sessions = report.parameters.if_contains("sessions");
  const std::string over = sessions != nullptr ? ", " + boost::json::serialize(*sessions) + " sessions" : "";
  return {{report.workload, "requests/s, one worker" + over, "requests/s", kHigherIsBetter, rate_of(ours),
           std::string(kRedisSystem), rate_of(peer)},
          {report.workload, "request p99, one worker" + over, "us", kLowerIsBetter, p99(ours),
           std::string(kRedisSystem), p99(peer)}};
}

}  // namespace

void add_worker_notes(BenchReport& report) {
  report.notes.push_back(
      "RssAnon: the worker process's private resident memory (/proc/self/status), not the shared segment; "
      "store MiB: shmsession's segment used bytes (every session, in shared memory), redis's used_memory_rss");
  report.notes.push_back(
      "kept, kept MiB, evictions: the worker's Client::stats() (sessions kept with their copy and sticky lock); "
      "locks: ClientStats::locks_held; locks in store: Store::locks() held by the worker's pid, a scan of every "
      "session shard by shard while the worker runs, so locks let go and taken during the scan may both count");
  report.notes.push_back(
      "read back: every 997th session, by shmbench (another process) after the worker left, against a replay "
      "of the sequence: attribute bytes equal to the encoding of what was written");
}

const ReportLayout kWorkerLayout{&worker_sections, nullptr, &add_worker_json, &worker_headlines};

}  // namespace shmsession::bench
