// shmsession-appserver: the demo shop over HTTP on a shmsession store.
//   shmsession-appserver serve --store NAME [--port 8080] [--workers 4]
//                              [--address 127.0.0.1] [--worker-ports BASE]
//   shmsession-appserver serve --sessions redis [...]
//     N worker processes share the port (SO_REUSEPORT) and the store; any
//     worker serves any request of any session. With --sessions redis the
//     same shop keeps its sessions in a redis-server it starts (phpredis's
//     lock recipe; tools/appserver/redis_sessions.hpp) instead, the peer
//     the demo sets beside it. Stops on SIGTERM/SIGINT.
//   shmsession-appserver load --port P [--connections 8] [--seconds 5]
//                             [--sessions 64] [--json]
//     drives the shop with a realistic request mix; progress on stderr,
//     summary on stdout.
// Exit status: 0 ok, 1 cannot run, 2 wrong command line, 3 (load) some
// requests failed.
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "tools/appserver/load_client.hpp"
#include "tools/appserver/worker_pool.hpp"

namespace {

constexpr int kExitUsage = 2;

}  // namespace

int main(int argc, char** argv) {
  using namespace shmsession::appserver;
  CLI::App app{"Demo shop over HTTP on a shmsession store: an app server and its load client.", "shmsession-appserver"};
  app.require_subcommand(1);

  ServeOptions serve_options;
  unsigned idle_s = 30;
  std::string sessions_in = "store";
  CLI::App* serve_cmd = app.add_subcommand(
      "serve", "run N worker processes on one port, sessions in one store (or in Redis: --sessions redis)");
  serve_cmd
      ->add_option("--sessions", sessions_in,
                   "where sessions are kept: store (the shmsession store --store), or redis (a redis-server "
                   "this command starts on a free loopback port and stops, sessions as hashes behind "
                   "phpredis's lock recipe)")
      ->capture_default_str()
      ->check(CLI::IsMember({"store", "redis"}));
  serve_cmd->add_option("--store", serve_options.store,
                        "store name (create it with shmctl create); required with "
                        "--sessions store");
  serve_cmd->add_option("--address", serve_options.address, "address to listen on")->capture_default_str();
  serve_cmd->add_option("--port", serve_options.port, "port every worker shares (SO_REUSEPORT)")
      ->capture_default_str()
      ->check(CLI::Range(1, 65535));
  serve_cmd->add_option("--workers", serve_options.workers, "worker processes")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  serve_cmd
      ->add_option("--worker-ports", serve_options.direct_port_base,
                   "worker k also listens alone on BASE+k (to address one worker; 0: off)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65000));
  serve_cmd->add_option("--idle-timeout", idle_s, "close a keep-alive connection silent this long (s)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 3600u));

  LoadOptions load_options;
  CLI::App* load_cmd = app.add_subcommand("load", "drive the shop over keep-alive connections");
  load_cmd->add_option("--host", load_options.host, "server address")->capture_default_str();
  load_cmd->add_option("--port", load_options.port, "server port")->required()->check(CLI::Range(1, 65535));
  load_cmd->add_option("--connections", load_options.connections, "keep-alive connections")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  load_cmd->add_option("--sessions", load_options.sessions, "sessions, spread over the connections")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  load_cmd->add_option("--seconds", load_options.seconds, "how long to drive")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  load_cmd->add_option("--seed", load_options.seed, "random seed of the request mix")->capture_default_str();
  load_cmd->add_flag("--json", load_options.json, "print the summary as one JSON document");
  load_cmd->add_flag("--quiet", load_options.quiet, "no progress lines on stderr");

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "shmsession-appserver: usage: " << e.what() << " (see --help)\n";
    return kExitUsage;
  }
  if (serve_cmd->parsed()) {
    serve_options.sessions = sessions_in == "redis" ? SessionsIn::Redis : SessionsIn::Store;
    if (serve_options.sessions == SessionsIn::Store && serve_options.store.empty()) {
      std::cerr << "shmsession-appserver: usage: --store is required (or --sessions redis)\n";
      return kExitUsage;
    }
    if (serve_options.sessions == SessionsIn::Redis && !serve_options.store.empty()) {
      std::cerr << "shmsession-appserver: usage: --store has no use with --sessions redis\n";
      return kExitUsage;
    }
    if (serve_options.direct_port_base != 0 && serve_options.direct_port_base + serve_options.workers - 1 > 65535) {
      std::cerr << "shmsession-appserver: usage: --worker-ports leaves no room for " << serve_options.workers
                << " workers\n";
      return kExitUsage;
    }
    serve_options.idle_timeout = std::chrono::seconds(idle_s);
    return serve(serve_options);
  }
  return run_load(load_options);
}
