// shmsession-agent: the sync agent on the primary host.
//   shmsession-agent run STORE --backup HOST:PORT --key FILE
//     ships the store's changes to the backup daemon until SIGTERM/SIGINT
//     (exit 0 when the backup acknowledged everything at the stop, 3 when
//     it stopped with a lag), 4 when the backup's store was promoted in
//     place of this one (the agent fenced the store and stopped), 1 when it
//     cannot start, 2 for a wrong command line;
//   shmsession-agent status STORE [--json]
//     the running (or last) agent's status, as `shmctl info` shows it.
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "shm/store.hpp"
#include "sync/backup/agent.hpp"
#include "sync/backup/endpoint.hpp"
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
  unsigned idle_wait_ms = 5;
  std::uint64_t max_unacked = 32u << 20;
};

int run_agent(const RunArgs& args) {
  try {
    const sync::Endpoint backup = sync::parse_endpoint(args.backup);
    const sync::wire::KeyRing keys = sync::wire::load_key_file(args.key_file);
    Store primary = Store::attach(args.store);
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
  CLI::App app{"Sync agent: ships a shmsession store's changes to a backup daemon.", "shmsession-agent"};
  app.require_subcommand(1);
  RunArgs args;
  CLI::App* run = app.add_subcommand("run", "ship the store's changes until SIGTERM");
  run->add_option("STORE", args.store, "primary store name")->required();
  run->add_option("--backup", args.backup, "the backup daemon, HOST:PORT")->required();
  run->add_option("--key", args.key_file, "pre-shared key file (32 raw bytes or 64 hex digits, mode 0600)")->required();
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
  if (run->parsed()) return run_agent(args);
  return show_status(status_store, json);
}
