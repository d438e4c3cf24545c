// shmbench: speed and memory of shmsession beside a peer measured in the
// same run. One subcommand per workload (workload.cpp lists them), and
// `all`, which runs every workload in turn and ends with a summary; each
// prints aligned tables, or with --json one JSON document and nothing else
// on stdout. Progress and notes go to stderr. Failures print one line
// "shmbench: <workload>: <why>" and exit 1 (`all` runs the other workloads
// first).
#include <signal.h>

#include <chrono>
#include <exception>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include "shm/error.hpp"
#include "tools/shmbench/all_report.hpp"
#include "tools/shmbench/interrupt_cleanup.hpp"
#include "tools/shmbench/text_table.hpp"
#include "tools/shmbench/workload.hpp"

namespace {

using shmsession::bench::BenchReport;
using shmsession::bench::ComparisonRow;
using shmsession::bench::RunOptions;
using shmsession::bench::Workload;

constexpr const char* kFooter =
    "Every workload with a server peer starts its own redis-server on 127.0.0.1 (a free\n"
    "port), measures it in the same run with the same session shape and stops it by pid;\n"
    "if redis-server cannot be run its figures are n/a. primary then starts memcached the\n"
    "same way as a second peer. (delta's peer is whole-attribute replication, computed\n"
    "from the same values: no server. replicate also starts a Redis replica, and our sync\n"
    "agent and backup daemon in forked children, stopped by pid.)\n"
    "Scratch segments are named shmbench_<pid>_* and removed on exit, as on SIGINT.\n"
    "`shmbench <workload> --help` describes one workload; `shmbench all` runs them all.";

constexpr const char* kAllDetails =
    "Runs every workload in turn (primary, lock, cycle, delta, replicate, worker) with the same\n"
    "options (cycle with 1 process, then 2 and 4 processes with random and sticky routing),\n"
    "prints the machine once, then each workload's tables under a heading, then\n"
    "a summary: one line per headline figure, ours beside the peer's, and how many times\n"
    "better ours is (rates: ours/peer; times and bytes: peer/ours; below 1x the peer is\n"
    "better). --json: one document {machine, quick, workloads: {name: report}, summary,\n"
    "failed, elapsed_s}. A workload that fails is reported and the others still run;\n"
    "the exit status is then 1.";

void add_run_options(CLI::App& command, RunOptions& options, bool& quiet) {
  command.add_flag("--quick", options.quick, "CI/smoke sizes: the whole run takes a few seconds");
  command.add_flag("--json", options.json, "print one JSON document on stdout instead of tables");
  command.add_flag("--quiet", quiet, "no progress lines on stderr");
  command.add_option("--redis-server", options.redis_program, "the peer's server program")->capture_default_str();
  command.add_option("--memcached", options.memcached_program, "the second peer's server program (primary)")
      ->capture_default_str();
  command.add_option("--seed", options.seed, "seed of the random session sequences")->capture_default_str();
}

// The cycle workload's --procs and --routing (its setup for `shmbench cycle`).
void add_cycle_options(CLI::App& command, int& processes, std::string& routing, std::string& lock_policy) {
  command.add_option("--procs", processes, "worker processes sharing the store (each its own redis connection)")
      ->check(CLI::Range(1, shmsession::bench::kMaxCycleProcesses))
      ->capture_default_str();
  command.add_option("--routing", routing, "sticky: session k always to process k % procs; random: any process")
      ->check(CLI::IsMember({"sticky", "random"}))
      ->capture_default_str();
  command
      .add_option("--lock-policy", lock_policy,
                  "adaptive (the Client's default): per session, sticky until another process asks, then "
                  "released at the end of each request until quiet again; sticky: keep a session's lock until "
                  "another process asks; per-request: release it at the end of every request")
      ->check(CLI::IsMember({"adaptive", "sticky", "per-request"}))
      ->capture_default_str();
}

// Runs one workload and sets the report's elapsed time; on failure prints
// "shmbench: <workload>: <why>" and returns nullopt.
std::optional<BenchReport> run_reporting_errors(const Workload& workload, const RunOptions& options) {
  try {
    const auto started = std::chrono::steady_clock::now();
    BenchReport report = workload.run(options);
    report.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return report;
  } catch (const shmsession::Error& e) {
    std::cerr << "shmbench: " << workload.name << ": " << shmsession::errc_name(e.code()) << ": " << e.what()
              << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "shmbench: " << workload.name << ": " << e.what() << std::endl;
  }
  return std::nullopt;
}

// A check that failed (e.g. a backup unequal to its primary) fails the run
// after its figures are out. Returns whether none did.
bool report_failures(const Workload& workload, const BenchReport& report) {
  for (const std::string& failure : report.failures)
    std::cerr << "shmbench: " << workload.name << ": " << failure << std::endl;
  return report.failures.empty();
}

int run_workload(const Workload& workload, const RunOptions& options) {
  const std::optional<BenchReport> report = run_reporting_errors(workload, options);
  if (!report) return 1;
  if (options.json) {
    std::cout << boost::json::serialize(shmsession::bench::report_json(*report, *workload.layout)) << std::endl;
  } else {
    shmsession::bench::print_report(std::cout, *report, *workload.layout);
    std::cout.flush();
  }
  const bool checks_held = report_failures(workload, *report);
  return std::cout && checks_held ? 0 : 1;
}

int run_all(const RunOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  const shmsession::bench::MachineInfo machine = shmsession::bench::describe_machine();
  if (!options.json) {
    std::cout << "machine: " << shmsession::bench::machine_line(machine) << '\n'
              << "shmbench all" << (options.quick ? " (--quick)" : "") << ": every workload in turn, each beside"
              << " its peers measured in the same run\n\n";
    std::cout.flush();
  }
  std::vector<ComparisonRow> summary;
  boost::json::object reports;
  boost::json::array failed;
  for (const Workload& workload : shmsession::bench::workloads()) {
    if (!workload.in_all) continue;
    shmsession::bench::progress(options, "all", "workload " + std::string(workload.name));
    std::optional<BenchReport> report = run_reporting_errors(workload, options);
    if (!report) {
      failed.emplace_back(workload.name);
      if (!options.json) std::cout << "=== " << workload.name << ": failed (see stderr) ===\n\n";
      continue;
    }
    report->machine_above = true;
    if (options.json) {
      boost::json::object doc = shmsession::bench::report_json(*report, *workload.layout);
      doc.erase("machine");  // the document's one machine is at its top
      doc["load_average"] = report->machine.load_average;
      reports[workload.name] = std::move(doc);
    } else {
      shmsession::bench::print_workload_heading(std::cout, *report);
      shmsession::bench::print_report(std::cout, *report, *workload.layout);
      std::cout << '\n';
      std::cout.flush();
    }
    if (!report_failures(workload, *report)) failed.emplace_back(workload.name);
    if (workload.layout->headlines != nullptr)
      for (ComparisonRow& row : workload.layout->headlines(*report)) summary.push_back(std::move(row));
  }
  const double elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (options.json) {
    boost::json::object doc;
    doc["machine"] = shmsession::bench::machine_json(machine);
    doc["quick"] = options.quick;
    doc["workloads"] = std::move(reports);
    doc["summary"] = shmsession::bench::summary_json(summary);
    doc["failed"] = failed;
    doc["elapsed_s"] = elapsed_s;
    std::cout << boost::json::serialize(doc) << std::endl;
  } else {
    std::cout << "=== summary ===\n\n";
    shmsession::bench::print_summary(std::cout, summary);
    std::cout << "\nours better by: rates ours/peer; times and bytes peer/ours; below 1x the peer is better\n";
    for (const auto& name : failed) std::cout << "failed: " << name.as_string() << '\n';
    std::cout << "elapsed: " << shmsession::bench::fixed(elapsed_s, 1) << " s\n";
    std::cout.flush();
  }
  return std::cout && failed.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"shmbench: speed and memory of shmsession beside a peer measured in the same run"};
  app.footer(kFooter);
  app.require_subcommand(1, 1);
  RunOptions options;
  bool quiet = false;
  int cycle_processes = 1;
  std::string cycle_routing = "sticky";
  std::string cycle_lock_policy = "adaptive";
  for (const Workload& workload : shmsession::bench::workloads()) {
    CLI::App* command = app.add_subcommand(std::string(workload.name), std::string(workload.summary));
    command->footer(std::string(workload.details));
    add_run_options(*command, options, quiet);
    if (workload.name == "cycle") add_cycle_options(*command, cycle_processes, cycle_routing, cycle_lock_policy);
  }
  CLI::App* all = app.add_subcommand("all", "every workload in turn, then a one-table summary beside the peers");
  all->footer(kAllDetails);
  add_run_options(*all, options, quiet);
  CLI11_PARSE(app, argc, argv);
  options.progress = !quiet;

  ::signal(SIGPIPE, SIG_IGN);  // a dead peer is an error reply, not a silent exit
  shmsession::bench::install_interrupt_cleanup();
  const std::string chosen = app.get_subcommands().front()->get_name();
  if (chosen == "all") {
    options.cycle_setups.assign(std::begin(shmsession::bench::kAllCycleSetups),
                                std::end(shmsession::bench::kAllCycleSetups));
    return run_all(options);
  }
  // One process serves every session whichever the routing: one setup, sticky.
  const auto routing = cycle_routing == "random" && cycle_processes > 1 ? shmsession::bench::Routing::Random
                                                                        : shmsession::bench::Routing::Sticky;
  options.cycle_setups = {{cycle_processes, routing}};
  options.cycle_lock_policy = cycle_lock_policy == "sticky"        ? shmsession::bench::CycleLockPolicy::Sticky
                              : cycle_lock_policy == "per-request" ? shmsession::bench::CycleLockPolicy::PerRequest
                                                                   : shmsession::bench::CycleLockPolicy::Adaptive;
  for (const Workload& workload : shmsession::bench::workloads())
    if (workload.name == chosen) return run_workload(workload, options);
  return 1;
}
