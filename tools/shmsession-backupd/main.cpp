// shmsession-backupd: the backup daemon. Keeps a standby store (created at
// the first start, the same layout as the primary's) and applies what the
// sync agent ships; serves `shmctl restore`. One line on stderr per event;
// exit 0 after SIGTERM/SIGINT, 1 when it cannot start (one line naming why),
// 2 for a wrong command line.
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "shm/replica.hpp"
#include "shm/store.hpp"
#include "sync/backup/backup_server.hpp"
#include "sync/backup/endpoint.hpp"
#include "sync/wire/key.hpp"
#include "tools/shmctl/log_line.hpp"
#include "tools/shmctl/parse.hpp"

namespace {

using namespace shmsession;

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

void log_line(const std::string& line) { shmctl::log_line("shmsession-backupd", line); }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Backup daemon: keeps a standby shmsession store fed by a sync agent.", "shmsession-backupd"};
  std::string store_name, key_file, listen = "127.0.0.1:7480", size_text = "256M";
  unsigned idle_timeout_ms = 3000;  // three heartbeats of an idle agent
  app.add_option("STORE", store_name, "standby store name (created if missing)")->required();
  app.add_option("--key", key_file, "pre-shared key file (32 raw bytes or 64 hex digits, mode 0600)")->required();
  app.add_option("--listen", listen, "address and port to listen on")->capture_default_str();
  app.add_option("--size", size_text, "segment size when the standby is created (K, M, G)")->capture_default_str();
  app.add_option("--idle-timeout", idle_timeout_ms, "close an agent connection silent this long (ms)")
      ->capture_default_str()
      ->check(CLI::Range(1000u, 3600000u));
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "shmsession-backupd: usage: " << e.what() << " (see --help)\n";
    return kExitUsage;
  }
  try {
    const sync::Endpoint where = sync::parse_endpoint(listen, true);
    const std::optional<std::uint64_t> size = shmctl::parse_size(size_text);
    if (!size) throw Error(Errc::InvalidArgument, "--size '" + size_text + "' is not a size");
    const sync::wire::KeyRing keys = sync::wire::load_key_file(key_file);
    CreateOptions create;
    create.size_bytes = *size;
    Store standby = Store::open_or_create(store_name, create);
    const ReplicaPosition position = Replica(standby).position();
    sync::BackupServerOptions options;
    options.address = where.host;
    options.port = where.port;
    options.idle_timeout = std::chrono::milliseconds(idle_timeout_ms);
    options.log = log_line;
    options.stop_on_signals = true;
    options.key_file = key_file;  // read again for every connection
    sync::BackupServer server(standby, keys, options);
    log_line("standby store '" + store_name + "' " +
             (position.follows_a_primary() ? "follows store " + position.primary_store_id_hex() + " at seq " +
                                                 std::to_string(position.applied_seq)
                                           : std::string("holds no replica yet")) +
             "; listening on " + sync::Endpoint{where.host, server.port()}.to_string());
    server.run();
    log_line("stopped");
    return 0;
  } catch (const std::exception& e) {
    log_line(std::string("cannot run: ") + e.what());
    return kExitFailure;
  }
}
