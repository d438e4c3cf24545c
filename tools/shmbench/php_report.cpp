#include "tools/shmbench/php_report.hpp"

#include <optional>
#include <string>
#include <vector>

namespace shmsession::bench {

namespace {

const PhpHandlerRow* ours_of(const BenchReport& report) {
  for (const PhpHandlerRow& row : report.php)
    if (row.system == kOurSystem && row.measured && row.load_measured) return &row;
  return nullptr;
}

std::string count_text(bool measured, std::uint64_t value) { return measured ? std::to_string(value) : kNotAvailable; }

std::vector<ReportSection> php_sections(const BenchReport& report) {
  const PhpHandlerRow* ours = ours_of(report);
  TextTable load({"handler", "requests", "requests/s", "p50 ms", "p99 ms", "failed", "ours/handler (requests/s)"}, 1);
  TextTable one({"handler", "sent", "answered 200", "refused", "n at the end", "lost updates"}, 1);
  for (const PhpHandlerRow& row : report.php) {
    const bool load_ok = row.measured && row.load_measured;
    std::optional<double> ratio;
    if (ours != nullptr && load_ok && row.requests_per_s > 0) ratio = ours->requests_per_s / row.requests_per_s;
    load.add({row.system, count_text(load_ok, row.requests), fixed_if(load_ok, row.requests_per_s, 0),
              fixed_if(load_ok, row.p50_us / 1000.0, 2), fixed_if(load_ok, row.p99_us / 1000.0, 2),
              count_text(load_ok, row.load_failures), row.system == kOurSystem ? "" : times_text(ratio)});
    one.add({row.system, count_text(row.measured, row.one_sent), count_text(row.measured, row.one_answered),
             count_text(row.measured, row.one_refused), row.measured ? std::to_string(row.one_final_n) : kNotAvailable,
             count_text(row.measured, row.one_lost)});
  }
  return {{"many sessions: wrk -t2 -c16, each thread over 256 sessions of its own", std::move(load)},
          {"one session: 8 threads, one request at a time each", std::move(one)}};
}

std::vector<std::string> php_closing_lines(const BenchReport& report) {
  std::vector<std::string> lines;
  for (const PhpHandlerRow& row : report.php)
    if (!row.measured) lines.push_back(row.system + " is n/a: " + row.why_not);
  return lines;
}

void add_php_json(const BenchReport& report, boost::json::object& doc) {
  boost::json::array rows;
  for (const PhpHandlerRow& row : report.php) {
    const bool load_ok = row.measured && row.load_measured;
    const auto figure = [&](bool ok, double value) { return ok ? boost::json::value(value) : boost::json::value(); };
    boost::json::object one;
    if (row.measured)
      one = {{"sent", row.one_sent},
             {"answered", row.one_answered},
             {"refused", row.one_refused},
             {"final_n", row.one_final_n},
             {"lost_updates", row.one_lost}};
    rows.push_back({{"handler", row.system},
                    {"measured", row.measured},
                    {"why_not", row.why_not},
                    {"requests", figure(load_ok, static_cast<double>(row.requests))},
                    {"requests_per_s", figure(load_ok, row.requests_per_s)},
                    {"p50_us", figure(load_ok, row.p50_us)},
                    {"p99_us", figure(load_ok, row.p99_us)},
                    {"load_failures", figure(load_ok, static_cast<double>(row.load_failures))},
                    {"one_session", row.measured ? boost::json::value(std::move(one)) : boost::json::value()}});
  }
  doc["php"] = std::move(rows);
}

}  // namespace

const ReportLayout kPhpLayout{&php_sections, &php_closing_lines, &add_php_json, nullptr};

}  // namespace shmsession::bench
