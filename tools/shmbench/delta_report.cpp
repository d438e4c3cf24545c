#include "tools/shmbench/delta_report.hpp"

#include <string>

#include "tools/shmbench/text_table.hpp"

namespace shmsession::bench {

namespace {

double quotient(std::uint64_t numerator, std::uint64_t denominator) {
  return denominator == 0 ? 0.0 : static_cast<double>(numerator) / static_cast<double>(denominator);
}

std::string ratio_text(double ratio) { return fixed(ratio, ratio < 10 ? 2 : ratio < 1000 ? 1 : 0) + "x"; }

// Three significant digits or more: 0.412, 41.2, 412, 41200.
std::string figure_text(double value) { return fixed(value, value < 1 ? 3 : value < 10 ? 2 : value < 100 ? 1 : 0); }

void print_bytes(std::ostream& out, const BenchReport& report) {
  TextTable table({"edit", "whole B", "patch B", "method", "frame B", "whole/patch", "whole/frame"}, 1);
  for (const DeltaRow& row : report.deltas) {
    table.add({row.scenario, std::to_string(row.whole_bytes), std::to_string(row.patch_bytes), row.method,
               std::to_string(row.frame_bytes), ratio_text(quotient(row.whole_bytes, row.patch_bytes)),
               ratio_text(quotient(row.whole_bytes, row.frame_bytes))});
  }
  table.print(out);
}

void print_speed(std::ostream& out, const BenchReport& report) {
  TextTable table({"edit", "diff MB/s", "apply MB/s", "graph paths", "graph ms", "first graph path"}, 1);
  for (const DeltaRow& row : report.deltas) {
    table.add({row.scenario, figure_text(row.diff_mb_per_s), figure_text(row.apply_mb_per_s),
               std::to_string(row.graph_changes), figure_text(row.graph_ms), row.graph_first_path});
  }
  table.print(out);
}

}  // namespace

void print_delta_tables(std::ostream& out, const BenchReport& report) {
  print_report_header(out, report);
  print_bytes(out, report);
  out << '\n';
  print_speed(out, report);
  out << '\n';
  for (const auto& note : report.notes) out << "note: " << note << '\n';
  out << "elapsed: " << fixed(report.elapsed_s, 1) << " s\n";
}

boost::json::object delta_report_json(const BenchReport& report) {
  boost::json::object doc = to_json(report);
  doc["peer_origin"] = report.peer_origin;
  boost::json::array rows;
  for (const DeltaRow& row : report.deltas) {
    rows.push_back({{"scenario", row.scenario},
                    {"whole_bytes", row.whole_bytes},
                    {"patch_bytes", row.patch_bytes},
                    {"method", row.method},
                    {"frame_bytes", row.frame_bytes},
                    {"whole_per_patch", quotient(row.whole_bytes, row.patch_bytes)},
                    {"whole_per_frame", quotient(row.whole_bytes, row.frame_bytes)},
                    {"diff_mb_per_s", row.diff_mb_per_s},
                    {"apply_mb_per_s", row.apply_mb_per_s},
                    {"graph_changes", row.graph_changes},
                    {"graph_first_path", row.graph_first_path},
                    {"graph_ms", row.graph_ms}});
  }
  doc["deltas"] = std::move(rows);
  return doc;
}

}  // namespace shmsession::bench
