#include "tools/shmbench/all_report.hpp"

#include <boost/json/array.hpp>

#include "tools/shmbench/text_table.hpp"

namespace shmsession::bench {

void print_workload_heading(std::ostream& out, const BenchReport& report) {
  out << "=== " << report.workload << " (load " << fixed(report.machine.load_average, 2) << " at its start) ===\n\n";
}

void print_summary(std::ostream& out, std::span<const ComparisonRow> rows) {
  TextTable table({"workload", "measure", "unit", std::string(kOurSystem), "peer", "peer's", "ours better by"}, 3);
  for (const ComparisonRow& row : rows)
    table.add({row.workload, row.measure, row.unit, figure_text(row.ours), row.peer, figure_text(row.peer_figure),
               times_text(row.advantage())});
  table.print(out);
}

boost::json::array summary_json(std::span<const ComparisonRow> rows) {
  boost::json::array lines;
  for (const ComparisonRow& row : rows) {
    lines.push_back({{"workload", row.workload},
                     {"measure", row.measure},
                     {"unit", row.unit},
                     {"shmsession", json_or_null(row.ours)},
                     {"peer", row.peer},
                     {"peer_figure", json_or_null(row.peer_figure)},
                     {"ours_better_by", json_or_null(row.advantage())},
                     {"better_by_is", row.higher_is_better ? "ours/peer" : "peer/ours"}});
  }
  return lines;
}

}  // namespace shmsession::bench
