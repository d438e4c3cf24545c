// Workload: one named shmbench measurement (`shmbench <name>`), and the
// registry main.cpp builds its subcommands and --help from. A workload
// measures shmsession and its peer in the same run and returns a
// BenchReport; it prints progress only to stderr (stdout is the report's).
//
// To add a workload: write workload_<name>.{hpp,cpp} with a
// `BenchReport run_<name>(const RunOptions&)` and add one line to the table
// in workload.cpp, with the ReportLayout its report is printed with
// (bench_report.hpp: kGenericLayout, or one of <name>_report.hpp).
//
// Thread safety: the registry is immutable; a workload runs on one thread
// and may fork worker processes (see process_group.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tools/shmbench/bench_report.hpp"
#include "tools/shmbench/memcached_peer.hpp"
#include "tools/shmbench/redis_peer.hpp"

namespace shmsession::bench {

// How the `cycle` workload's requests reach its worker processes: sticky,
// session k always to process k % N (a balancer with session affinity);
// random, each request to any process (SO_REUSEPORT, PHP-FPM). With one
// process the two are the same.
enum class Routing { Sticky, Random };
enum class CycleLockPolicy { Adaptive, Sticky, PerRequest };
std::string_view routing_name(Routing routing) noexcept;

struct CycleSetup {
  int processes = 1;
  Routing routing = Routing::Sticky;
};

inline constexpr int kMaxCycleProcesses = 16;
// What `shmbench all` measures of the cycle: 1 process, then 2 and 4 both ways.
inline constexpr CycleSetup kAllCycleSetups[] = {
    {1, Routing::Sticky}, {2, Routing::Random}, {2, Routing::Sticky}, {4, Routing::Random}, {4, Routing::Sticky}};

struct RunOptions {
  bool quick = false;    // CI/smoke sizes: the whole run takes seconds
  bool json = false;     // one JSON document on stdout instead of tables
  bool progress = true;  // progress lines on stderr
  std::string redis_program = "redis-server";
  std::string memcached_program = "memcached";  // the second peer, where a workload fits it
  std::uint64_t seed = 20240601;                // of every random session sequence
  // `cycle` only: the setups it measures, in order (`shmbench cycle`: the
  // one of --procs and --routing; `shmbench all`: kAllCycleSetups).
  std::vector<CycleSetup> cycle_setups{CycleSetup{}};
  // `cycle` only: the Client's lock policy (--lock-policy, as
  // sync::LockPolicy): adaptive (the Client's default), sticky (keep the
  // lock until another process asks) or per-request (release it at the end
  // of every request).
  CycleLockPolicy cycle_lock_policy = CycleLockPolicy::Adaptive;
};

struct Workload {
  std::string_view name;
  std::string_view summary;  // one line for `shmbench --help`
  std::string_view details;  // for `shmbench <name> --help`
  BenchReport (*run)(const RunOptions& options);
  const ReportLayout* layout;  // how print_report and report_json lay its report out
  bool in_all = true;          // run by `shmbench all`
};

// Every workload, in the order `--help` lists them.
std::span<const Workload> workloads();

// A report with the machine, workload name and quick flag filled in.
BenchReport start_report(std::string_view workload, const RunOptions& options);

// "shmbench: <name>: <message>" on stderr, unless progress is off.
void progress(const RunOptions& options, std::string_view workload, const std::string& message);

// Starts the Redis peer (with a progress line). If redis cannot be run at
// all, prints a one-line note on stderr, records it in the report, sets
// report.peer to "n/a" and returns nullopt: the peer's figures are then
// reported as n/a. Throws if redis runs but does not answer.
std::optional<RedisServer> start_redis_peer(const RunOptions& options, BenchReport& report);

// Starts the memcached peer, likewise: if memcached cannot be run, a note
// says so and nullopt is returned (its figures are n/a); otherwise
// report.peer gains ", memcached <version>". Throws if it runs but does not
// answer.
std::optional<MemcachedServer> start_memcached_peer(const RunOptions& options, BenchReport& report);

}  // namespace shmsession::bench
