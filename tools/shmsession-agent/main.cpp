// shmsession-agent: the sync agent on the primary host.
//   shmsession-agent run STORE [--backup HOST:PORT --key FILE]
//                              [--redis HOST:PORT[,...] --host-id ID]
//     ships the store's changes to the backup daemon, and/or to Redis for
//     the sessions this host owns among several (sync/hosts/hosts.md),
//     until SIGTERM/SIGINT
//     (exit 0 when the backup acknowledged everything at the stop, 3 when
//     it stopped with a lag), 4 when the backup's store was promoted in
//     place of this one (the agent fenced the store and stopped), 1 when it
//     cannot start, 2 for a wrong command line;
//   shmsession-agent status STORE [--json]
//     the running (or last) agent's status, as `shmctl info` shows it.
#include <atomic>
#include <cctype>
#include <csignal>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include <unistd.h>

#include <CLI/CLI.hpp>

#include "shm/store.hpp"
#include "sync/backup/agent.hpp"
#include "sync/backup/endpoint.hpp"
#include "sync/hosts/redis_sink.hpp"
#include "sync/wire/key.hpp"
#include "tools/shmctl/agent_report.hpp"
#include "tools/shmctl/log_line.hpp"

namespace {

using namespace shmsession;

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr int kExitLagging = 3;
constexpr int kExitFenced = 4;

void log_line(const std::string& line) { shmctl::log_line("shmsession-agent", line); }

struct RunArgs {
  std::string store, backup, key_file;
  std::string redis, host_id, prefix = "shms:";
  unsigned lease_ms = 10000;
  unsigned ship_interval_ms = 1000;
  std::uint64_t records_mb = 64;
  unsigned idle_wait_ms = 5;
  std::uint64_t max_unacked = 32u << 20;
};

std::atomic<hosts::RedisSink*> g_sink{nullptr};

extern "C" void stop_sink(int /*signal*/) {
  if (hosts::RedisSink* sink = g_sink.load()) sink->stop();
}

std::string default_host_id() {
  char name[256] = {};
  ::gethostname(name, sizeof name - 1);
  std::string id;
  for (const char c : std::string(name))
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-') id += c;
  return id.substr(0, 64);
}

std::unique_ptr<hosts::RedisSink> make_sink(Store& primary, const RunArgs& args) {
  if (args.redis.empty()) return nullptr;
  hosts::RedisSinkOptions options;
  options.config.host = args.host_id.empty() ? default_host_id() : args.host_id;
  options.config.redis = args.redis;
  options.config.prefix = args.prefix;
  options.config.lease = std::chrono::milliseconds(args.lease_ms);
  options.records_bytes = args.records_mb << 20;
  options.ship_interval = std::chrono::milliseconds(args.ship_interval_ms);
  options.log = log_line;
  auto sink = std::make_unique<hosts::RedisSink>(primary, options);
  log_line("store '" + args.store + "': sessions shared as host '" + options.config.host + "' through Redis " +
           args.redis);
  return sink;
}

int run_agent(const RunArgs& args) {
  try {
    Store primary = Store::attach(args.store);
    std::unique_ptr<hosts::RedisSink> sink = make_sink(primary, args);
    if (args.backup.empty()) {  // Redis only
      g_sink = sink.get();
      struct sigaction sa {};
      sa.sa_handler = stop_sink;
      ::sigaction(SIGTERM, &sa, nullptr);
      ::sigaction(SIGINT, &sa, nullptr);
      sink->run();
      g_sink = nullptr;
      log_line("stopped");
      return 0;
    }
    std::thread sink_thread;
    struct StopSink {
      hosts::RedisSink* sink;
      std::thread& thread;
      ~StopSink() {
        if (sink) sink->stop();
        if (thread.joinable()) thread.join();
      }
    } stop_sink_at_end{sink.get(), sink_thread};
    if (sink)
      sink_thread = std::thread([&] {
        try {
          sink->run();
        } catch (const std::exception& e) {
          log_line(std::string("Redis sink stopped: ") + e.what());
        }
      });
    const sync::Endpoint backup = sync::parse_endpoint(args.backup);
    const sync::wire::KeyRing keys = sync::wire::load_key_file(args.key_file);
    sync::AgentOptions options;
    options.host = backup.host;
    options.port = backup.port;
    options.idle_wait = std::chrono::milliseconds(args.idle_wait_ms);
    options.max_unacked_bytes = args.max_unacked;
    options.log = log_line;
    options.stop_on_signals = true;
    options.key_file = args.key_file;  // read again at every connection (SIGHUP: now)
    sync::Agent agent(primary, keys, options);
    log_line("store '" + args.store + "' (id " + primary.info().store_id_hex() + "): shipping to " +
             backup.to_string());
    return agent.run() ? 0 : kExitLagging;
  } catch (const Error& e) {
    if (e.code() != Errc::Fenced) {
      log_line(std::string("cannot run: ") + e.what());
      return kExitFailure;
    }
    log_line(std::string("stopped: ") + e.what());
    return kExitFenced;
  } catch (const std::exception& e) {
    log_line(std::string("cannot run: ") + e.what());
    return kExitFailure;
  }
}

int show_status(const std::string& store, bool json) {
  try {
    Store primary = Store::attach(store);
    shmctl::print_agent_report(std::cout, primary, json);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "shmsession-agent: status: " << e.what() << '\n';
    return kExitFailure;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Sync agent: ships a shmsession store's changes to a backup daemon and/or to Redis.",
               "shmsession-agent"};
  app.require_subcommand(1);
  RunArgs args;
  CLI::App* run = app.add_subcommand("run", "ship the store's changes until SIGTERM");
  run->add_option("STORE", args.store, "primary store name")->required();
  CLI::Option* backup_opt = run->add_option("--backup", args.backup, "the backup daemon, HOST:PORT");
  CLI::Option* key_opt =
      run->add_option("--key", args.key_file, "pre-shared key file (32 raw bytes or 64 hex digits, mode 0600)");
  backup_opt->needs(key_opt);
  key_opt->needs(backup_opt);
  CLI::Option* redis_opt = run->add_option(
      "--redis", args.redis, "share sessions with other hosts through this Redis (Cluster): HOST:PORT[,HOST:PORT...]");
  run->add_option("--host-id", args.host_id, "this host's id among the hosts sharing sessions (default: its name)")
      ->needs(redis_opt);
  run->add_option("--key-prefix", args.prefix, "prefix of the Redis keys and channels")
      ->capture_default_str()
      ->needs(redis_opt);
  run->add_option("--lease-ms", args.lease_ms, "how long a dead host keeps its sessions")
      ->capture_default_str()
      ->check(CLI::Range(100u, 3600000u))
      ->needs(redis_opt);
  run->add_option("--ship-interval-ms", args.ship_interval_ms,
                  "a changed session is shipped to Redis this long after its first unshipped change (0: at once); "
                  "a hand-over ships at once")
      ->capture_default_str()
      ->check(CLI::Range(0u, 60000u))
      ->needs(redis_opt);
  run->add_option("--records-mb", args.records_mb, "size of the host's ownership records (STORE.hosts)")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 16))
      ->needs(redis_opt);
  run->add_option("--idle-wait-ms", args.idle_wait_ms,
                  "longest sleep on the change log when idle (a commit wakes the agent at once)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1000u));
  run->add_option("--max-unacked", args.max_unacked, "bytes sent and not yet acknowledged")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1} << 16, std::uint64_t{1} << 32));
  std::string status_store;
  bool json = false;
  CLI::App* status = app.add_subcommand("status", "show the agent's lag, bytes shipped and resyncs");
  status->add_option("STORE", status_store, "primary store name")->required();
  status->add_flag("--json", json, "print one JSON document");
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "shmsession-agent: usage: " << e.what() << " (see --help)\n";
    return kExitUsage;
  }
  if (run->parsed()) {
    if (args.backup.empty() && args.redis.empty()) {
      std::cerr << "shmsession-agent: usage: run needs --backup (with --key), --redis, or both (see --help)\n";
      return kExitUsage;
    }
    return run_agent(args);
  }
  return show_status(status_store, json);
}
