// How the `delta` workload's report reads: one line per edit (report.deltas)
// with the bytes whole-attribute replication sends beside our patch and
// frame, the ratio whole/patch (>1: shmsession sends less), the patch
// method, make/apply speed and the object-graph diff's findings.
//
// Thread safety: plain functions over a report they only read.
// Cross-process safety: not shared between processes.
#pragma once

#include "tools/shmbench/bench_report.hpp"

namespace shmsession::bench {

// The bytes table, then the speed and graph table. JSON adds "peer_origin"
// and "deltas": [{"scenario", "whole_bytes", "patch_bytes", "method",
// "frame_bytes", "whole_per_patch", "whole_per_frame", "diff_mb_per_s",
// "apply_mb_per_s", "graph_changes", "graph_first_path", "graph_ms"}].
// Headlines: each edit's frame bytes beside the whole attribute's.
extern const ReportLayout kDeltaLayout;

}  // namespace shmsession::bench
