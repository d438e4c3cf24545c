// The `all` run's summary: one line per headline figure of every workload
// (ours, a peer's, and how many times better ours is; each workload's
// ReportLayout::headlines reads them off its BenchReport); and the heading
// lines that hold the workloads' own reports together.
//
// Thread safety: plain functions of their arguments.
#pragma once

#include <ostream>
#include <span>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "tools/shmbench/bench_report.hpp"

namespace shmsession::bench {

// "=== primary (load 1.05 at its start) ===" before each workload's tables
// (the machine line is printed once, above them all).
void print_workload_heading(std::ostream& out, const BenchReport& report);
void print_summary(std::ostream& out, std::span<const ComparisonRow> rows);

boost::json::array summary_json(std::span<const ComparisonRow> rows);

}  // namespace shmsession::bench
