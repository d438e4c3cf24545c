#include "tools/shmbench/workload.hpp"

#include <chrono>
#include <cstdio>
#include <iostream>

#include "tools/shmbench/cycle_report.hpp"
#include "tools/shmbench/delta_report.hpp"
#include "tools/shmbench/lock_report.hpp"
#include "tools/shmbench/php_report.hpp"
#include "tools/shmbench/replicate_report.hpp"
#include "tools/shmbench/worker_report.hpp"
#include "tools/shmbench/workload_cycle.hpp"
#include "tools/shmbench/workload_delta.hpp"
#include "tools/shmbench/workload_lock.hpp"
#include "tools/shmbench/workload_php.hpp"
#include "tools/shmbench/workload_primary.hpp"
#include "tools/shmbench/workload_replicate.hpp"
#include "tools/shmbench/workload_worker.hpp"

namespace shmsession::bench {

namespace {

constexpr Workload kWorkloads[] = {
    {"primary", "commit 1 KiB / read 3 attributes, 1 and 2 processes; bytes per session", kPrimaryDetails, &run_primary,
     &kGenericLayout},
    {"lock", "session lock: uncontended cycle, 2-process handoff, 4 processes on 1 session", kLockDetails, &run_lock,
     &kLockLayout},
    {"cycle", "request cycle: open, read 3, edit 1, commit, in N processes, sticky or random routing; beside redis",
     kCycleDetails, &run_cycle, &kCycleLayout},
    {"delta", "replication bytes of one edit: our binary delta vs the whole attribute; diff MB/s", kDeltaDetails,
     &run_delta, &kDeltaLayout},
    {"replicate", "commits/s with our backup attached vs without, lag, bytes per commit; beside a redis replica",
     kReplicateDetails, &run_replicate, &kReplicateLayout},
    {"worker", "one long-running worker, 1M sessions over time: RSS, kept sessions, locks each second vs limits",
     kWorkerDetails, &run_worker, &kWorkerLayout},
    {"hosts", "sessions shared by 2 hosts through Redis: on their host, 10% on the other, beside redis (not in `all`)",
     kHostsDetails, &run_hosts, &kGenericLayout, false},
    {"php", "PHP's session handlers behind nginx + php-fpm: files, redis, memcached, shmsession (not in `all`)",
     kPhpDetails, &run_php, &kPhpLayout, false},
};

}  // namespace

std::span<const Workload> workloads() { return kWorkloads; }

std::string_view routing_name(Routing routing) noexcept { return routing == Routing::Random ? "random" : "sticky"; }

BenchReport start_report(std::string_view workload, const RunOptions& options) {
  BenchReport report;
  report.workload = std::string(workload);
  report.quick = options.quick;
  report.machine = describe_machine();
  return report;
}

void progress(const RunOptions& options, std::string_view workload, const std::string& message) {
  static const auto started = std::chrono::steady_clock::now();
  if (!options.progress) return;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "[%6.1f s] ", seconds);
  std::cerr << "shmbench: " << stamp << workload << ": " << message << std::endl;
}

std::optional<RedisServer> start_redis_peer(const RunOptions& options, BenchReport& report) {
  progress(options, report.workload, "starting the redis peer");
  std::string why;
  std::optional<RedisServer> server = RedisServer::start(options.redis_program, &why);
  if (!server) {
    const std::string note = "peer redis is n/a: " + why;
    std::cerr << "shmbench: note: " << note << std::endl;
    report.notes.push_back(note);
    report.peer = "n/a";
    return server;
  }
  RedisConnection connection = RedisConnection::connect(server->port());
  report.peer = "redis " + connection.info_field("server", "redis_version");
  return server;
}

std::optional<MemcachedServer> start_memcached_peer(const RunOptions& options, BenchReport& report) {
  progress(options, report.workload, "starting the memcached peer");
  std::string why;
  std::optional<MemcachedServer> server = MemcachedServer::start(options.memcached_program, &why);
  if (report.peer == "n/a") report.peer = "redis n/a";  // which peer is missing, now that there are two
  const std::string separator = report.peer.empty() ? "" : ", ";
  if (!server) {
    const std::string note = "peer memcached is n/a: " + why;
    std::cerr << "shmbench: note: " << note << std::endl;
    report.notes.push_back(note);
    report.peer += separator + "memcached n/a";
    return server;
  }
  MemcachedConnection connection = MemcachedConnection::connect(server->port());
  report.peer += separator + "memcached " + connection.version();
  return server;
}

}  // namespace shmsession::bench
