// How the `delta` workload's report reads: one line per edit (report.deltas)
// with the bytes whole-attribute replication sends beside our patch and
// frame, the ratio whole/patch (>1: shmsession sends less), the patch
// method, make/apply speed and the object-graph diff's findings.
//
// Thread safety: plain functions over a report they only read.
// Cross-process safety: not shared between processes.
#pragma once

#include <ostream>

#include <boost/json/object.hpp>

#include "tools/shmbench/bench_report.hpp"

namespace shmsession::bench {

// Machine, peer, parameters, description, the bytes table, the speed and
// graph table, notes and elapsed time.
void print_delta_tables(std::ostream& out, const BenchReport& report);

// to_json(report) plus "deltas": [{"scenario", "whole_bytes", "patch_bytes",
// "method", "frame_bytes", "whole_per_patch", "whole_per_frame",
// "diff_mb_per_s", "apply_mb_per_s", "graph_changes", "graph_first_path",
// "graph_ms"}].
boost::json::object delta_report_json(const BenchReport& report);

}  // namespace shmsession::bench
