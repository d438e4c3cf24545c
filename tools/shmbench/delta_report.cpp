#include "tools/shmbench/delta_report.hpp"

#include <string>

namespace shmsession::bench {

namespace {

double byte_quotient(std::uint64_t numerator, std::uint64_t denominator) {
  return denominator == 0 ? 0.0 : static_cast<double>(numerator) / static_cast<double>(denominator);
}

std::vector<ReportSection> delta_sections(const BenchReport& report) {
  TextTable bytes({"edit", "whole B", "patch B", "method", "frame B", "whole/patch", "whole/frame"}, 1);
  TextTable speed({"edit", "diff MB/s", "apply MB/s", "graph paths", "graph ms", "first graph path"}, 1);
  for (const DeltaRow& row : report.deltas) {
    bytes.add({row.scenario, std::to_string(row.whole_bytes), std::to_string(row.patch_bytes), row.method,
               std::to_string(row.frame_bytes), times_text(byte_quotient(row.whole_bytes, row.patch_bytes)),
               times_text(byte_quotient(row.whole_bytes, row.frame_bytes))});
    speed.add({row.scenario, figure_text(row.diff_mb_per_s), figure_text(row.apply_mb_per_s),
               std::to_string(row.graph_changes), figure_text(row.graph_ms), row.graph_first_path});
  }
  return {{"", std::move(bytes)}, {"", std::move(speed)}};
}

void add_delta_json(const BenchReport& report, boost::json::object& doc) {
  doc["peer_origin"] = report.peer_origin;
  boost::json::array rows;
  for (const DeltaRow& row : report.deltas) {
    rows.push_back({{"scenario", row.scenario},
                    {"whole_bytes", row.whole_bytes},
                    {"patch_bytes", row.patch_bytes},
                    {"method", row.method},
                    {"frame_bytes", row.frame_bytes},
                    {"whole_per_patch", byte_quotient(row.whole_bytes, row.patch_bytes)},
                    {"whole_per_frame", byte_quotient(row.whole_bytes, row.frame_bytes)},
                    {"diff_mb_per_s", row.diff_mb_per_s},
                    {"apply_mb_per_s", row.apply_mb_per_s},
                    {"graph_changes", row.graph_changes},
                    {"graph_first_path", row.graph_first_path},
                    {"graph_ms", row.graph_ms}});
  }
  doc["deltas"] = std::move(rows);
}

std::vector<ComparisonRow> delta_headlines(const BenchReport& report) {
  std::vector<ComparisonRow> rows;
  for (const DeltaRow& row : report.deltas) {
    rows.push_back({report.workload, row.scenario, "B sent", kLowerIsBetter, static_cast<double>(row.frame_bytes),
                    "whole attribute", static_cast<double>(row.whole_bytes)});
  }
  return rows;
}

}  // namespace

const ReportLayout kDeltaLayout{&delta_sections, nullptr, &add_delta_json, &delta_headlines};

}  // namespace shmsession::bench
