// How the `php` workload's report reads (report.php, one PhpHandlerRow per
// session handler): a table of the many-sessions load (requests/s beside
// ours, p50/p99, failures), then one of the one-session phase (answered,
// refused, n at the end, lost updates). JSON adds "php": [{"handler",
// "measured", "why_not", "requests", "requests_per_s", "p50_us", "p99_us",
// "load_failures", "one_session": {"sent", "answered", "refused",
// "final_n", "lost_updates"}}]; figures not measured are null.
//
// Thread safety: plain functions over a report they only read.
#pragma once

#include "tools/shmbench/bench_report.hpp"

namespace shmsession::bench {

extern const ReportLayout kPhpLayout;

}  // namespace shmsession::bench
