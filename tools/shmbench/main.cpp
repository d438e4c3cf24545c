// shmbench: speed and memory of shmsession beside a peer measured in the
// same run. One subcommand per workload (workload.cpp lists them); each
// prints aligned tables, or with --json one JSON document and nothing else
// on stdout. Progress and notes go to stderr. Failures print one line
// "shmbench: <workload>: <why>" and exit 1.
#include <signal.h>

#include <exception>
#include <iostream>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>
#include <boost/json/serialize.hpp>

#include "shm/error.hpp"
#include "tools/shmbench/cycle_report.hpp"
#include "tools/shmbench/delta_report.hpp"
#include "tools/shmbench/interrupt_cleanup.hpp"
#include "tools/shmbench/lock_report.hpp"
#include "tools/shmbench/replicate_report.hpp"
#include "tools/shmbench/workload.hpp"

namespace {

using shmsession::bench::BenchReport;
using shmsession::bench::RunOptions;
using shmsession::bench::Workload;

// Workloads whose figures read better in a layout of their own than in the
// generic tables (print_tables / to_json); every other workload uses those.
struct ReportLayout {
  std::string_view workload;
  void (*print)(std::ostream& out, const BenchReport& report);
  boost::json::object (*json)(const BenchReport& report);
};

constexpr ReportLayout kLayouts[] = {
    {"lock", &shmsession::bench::print_lock_tables, &shmsession::bench::lock_report_json},
    {"cycle", &shmsession::bench::print_cycle_tables, &shmsession::bench::cycle_report_json},
    {"delta", &shmsession::bench::print_delta_tables, &shmsession::bench::delta_report_json},
    {"replicate", &shmsession::bench::print_replicate_tables, &shmsession::bench::replicate_report_json},
};

ReportLayout layout_of(std::string_view workload) {
  for (const ReportLayout& layout : kLayouts)
    if (layout.workload == workload) return layout;
  return {workload, &shmsession::bench::print_tables, &shmsession::bench::to_json};
}

constexpr const char* kFooter =
    "Every workload with a server peer starts its own redis-server on 127.0.0.1 (a free\n"
    "port), measures it in the same run with the same session shape and stops it by pid;\n"
    "if redis-server cannot be run its figures are n/a. (delta's peer is whole-attribute\n"
    "replication, computed from the same values: no server. replicate also starts a Redis\n"
    "replica, and our sync agent and backup daemon in forked children, stopped by pid.)\n"
    "Scratch segments are named shmbench_<pid>_* and removed on exit, as on SIGINT.\n"
    "`shmbench <workload> --help` describes one workload.";

void add_run_options(CLI::App& command, RunOptions& options, bool& quiet) {
  command.add_flag("--quick", options.quick, "CI/smoke sizes: the whole run takes a few seconds");
  command.add_flag("--json", options.json, "print one JSON document on stdout instead of tables");
  command.add_flag("--quiet", quiet, "no progress lines on stderr");
  command.add_option("--redis-server", options.redis_program, "the peer's server program")
      ->capture_default_str();
  command.add_option("--seed", options.seed, "seed of the random session sequences")->capture_default_str();
}

int run_workload(const Workload& workload, const RunOptions& options) {
  try {
    const BenchReport report = workload.run(options);
    const ReportLayout layout = layout_of(workload.name);
    if (options.json) {
      std::cout << boost::json::serialize(layout.json(report)) << std::endl;
    } else {
      layout.print(std::cout, report);
      std::cout.flush();
    }
    // A check that failed (e.g. a backup unequal to its primary) fails the
    // run after its figures are out.
    for (const std::string& failure : report.failures)
      std::cerr << "shmbench: " << workload.name << ": " << failure << std::endl;
    return std::cout && report.failures.empty() ? 0 : 1;
  } catch (const shmsession::Error& e) {
    std::cerr << "shmbench: " << workload.name << ": " << shmsession::errc_name(e.code()) << ": " << e.what()
              << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "shmbench: " << workload.name << ": " << e.what() << std::endl;
  }
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"shmbench: speed and memory of shmsession beside a peer measured in the same run"};
  app.footer(kFooter);
  app.require_subcommand(1, 1);
  RunOptions options;
  bool quiet = false;
  for (const Workload& workload : shmsession::bench::workloads()) {
    CLI::App* command = app.add_subcommand(std::string(workload.name), std::string(workload.summary));
    command->footer(std::string(workload.details));
    add_run_options(*command, options, quiet);
  }
  CLI11_PARSE(app, argc, argv);
  options.progress = !quiet;

  ::signal(SIGPIPE, SIG_IGN);  // a dead peer is an error reply, not a silent exit
  shmsession::bench::install_interrupt_cleanup();
  const std::string chosen = app.get_subcommands().front()->get_name();
  for (const Workload& workload : shmsession::bench::workloads())
    if (workload.name == chosen) return run_workload(workload, options);
  return 1;
}
