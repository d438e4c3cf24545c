// The `all` run's summary: one line per headline figure of every workload
// (ours, a peer's, and how many times better ours is), read off the
// workloads' BenchReports; and the heading lines and JSON document that
// hold the workloads' own reports together.
//
// Thread safety: plain functions of their arguments.
#pragma once

#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "tools/shmbench/bench_report.hpp"

namespace shmsession::bench {

struct HeadlineRow {
  std::string workload;
  std::string measure;
  std::string unit;
  bool higher_is_better = true;
  std::optional<double> ours;  // nullopt: not measured
  std::string peer;            // "redis", "memcached", "whole attribute"
  std::optional<double> peer_figure;

  // How many times better ours is: ours/peer for rates, peer/ours for
  // times and sizes; below 1 the peer is better. nullopt if either is missing.
  std::optional<double> advantage() const;
};

// The headline figures of one workload's report (none for a workload this
// summary does not know).
std::vector<HeadlineRow> headlines(const BenchReport& report);

// "=== primary (load 1.05 at its start) ===" before each workload's tables
// (the machine line is printed once, above them all).
void print_workload_heading(std::ostream& out, const BenchReport& report);
void print_summary(std::ostream& out, std::span<const HeadlineRow> rows);

boost::json::array summary_json(std::span<const HeadlineRow> rows);

}  // namespace shmsession::bench
