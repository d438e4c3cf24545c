#include "tools/shmbench/our_backup.hpp"

#include <atomic>
#include <optional>
#include <stdexcept>
#include <thread>

#include "shm/agent_seat.hpp"
#include "shm/replica.hpp"
#include "sync/backup/agent.hpp"
#include "sync/backup/backup_server.hpp"
#include "sync/wire/key.hpp"
#include "tools/shmbench/fork_shared.hpp"

namespace shmsession::bench {

namespace {

constexpr auto kListenTimeout = std::chrono::seconds{10};
constexpr auto kBackupPollPause = std::chrono::milliseconds{1};

PeerProcess start_daemon(const std::string& standby_name, const sync::wire::Key& key,
                         const std::function<void(const std::string&)>& log, std::atomic<std::uint32_t>& port) {
  return PeerProcess::fork("backup daemon", [&] {
    Store standby = Store::attach(standby_name);
    sync::BackupServerOptions options;
    options.port = 0;  // any free port: no race with another listener
    options.log = log;
    options.stop_on_signals = true;
    sync::BackupServer server(standby, key, options);
    port.store(server.port(), std::memory_order_release);
    server.run();
    return 0;
  });
}

PeerProcess start_agent(const std::string& primary_name, const sync::wire::Key& key, std::uint16_t port,
                        const std::function<void(const std::string&)>& log) {
  return PeerProcess::fork("sync agent", [&] {
    Store primary = Store::attach(primary_name);
    sync::AgentOptions options;  // the defaults, poll interval included
    options.port = port;
    options.log = log;
    options.stop_on_signals = true;
    sync::Agent agent(primary, key, options);
    return agent.run() ? 0 : 3;
  });
}

}  // namespace

OurBackup::OurBackup(const std::string& primary_name, const std::string& standby_name,
                     const std::function<void(const std::string&)>& log) {
  const sync::wire::Key key = sync::wire::generate_key();
  ForkShared<std::atomic<std::uint32_t>> port;
  daemon_.emplace(start_daemon(standby_name, key, log, *port));
  const PeerProcess::Readiness listening =
      daemon_->wait_ready([&] { return port->load(std::memory_order_acquire) != 0; }, kListenTimeout);
  if (listening == PeerProcess::Readiness::Ended)
    throw std::runtime_error("the backup daemon " + daemon_->how_it_ended() + " before listening");
  if (listening == PeerProcess::Readiness::TimedOut)
    throw std::runtime_error("the backup daemon did not listen within " + std::to_string(kListenTimeout.count()) +
                             " s");
  port_ = static_cast<std::uint16_t>(port->load(std::memory_order_acquire));
  agent_.emplace(start_agent(primary_name, key, port_, log));
}

void OurBackup::check_running() {
  for (std::optional<PeerProcess>* child : {&daemon_, &agent_})
    if (!(*child)->running()) throw std::runtime_error("the " + (*child)->name() + " " + (*child)->how_it_ended());
}

std::chrono::nanoseconds OurBackup::wait_applied(Store& primary, Store& standby, std::uint64_t target,
                                                 std::chrono::seconds timeout) {
  const auto started = std::chrono::steady_clock::now();
  const auto store_id = primary.info().store_id;
  for (;;) {
    const ReplicaPosition position = Replica(standby).position();
    if (position.primary_store_id == store_id && position.applied_seq >= target)
      return std::chrono::steady_clock::now() - started;
    check_running();
    if (std::chrono::steady_clock::now() - started > timeout)
      throw std::runtime_error("the standby did not reach change " + std::to_string(target) + " within " +
                               std::to_string(timeout.count()) + " s (it applied up to " +
                               std::to_string(position.applied_seq) + ")");
    std::this_thread::sleep_for(kBackupPollPause);
  }
}

AgentStatus OurBackup::settled_status(Store& primary, std::uint64_t target, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    AgentStatus status = AgentSeat(primary).status();
    if (status.acked_seq >= target) return status;
    check_running();
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("the agent did not publish an acknowledged position >= " + std::to_string(target) +
                               " within " + std::to_string(timeout.count()) + " s");
    std::this_thread::sleep_for(kBackupPollPause);
  }
}

std::string OurBackup::stop() {
  std::string how;
  for (std::optional<PeerProcess>* child : {&agent_, &daemon_}) {
    if (!*child || (*child)->stop()) continue;
    how += (how.empty() ? "the " : "; the ") + (*child)->name() + " " + (*child)->how_it_ended();
  }
  return how;
}

std::string first_difference(Store& primary, Store& standby) {
  std::string why;
  std::uint64_t sessions = 0;
  primary.for_each_session([&](const SessionInfo& info) {
    ++sessions;
    const std::optional<SessionSnapshot> ours = primary.peek(info.id);
    const std::optional<SessionSnapshot> theirs = standby.peek(info.id);
    if (!ours) return true;  // expired meanwhile
    if (!theirs)
      why = "the standby lacks " + info.id;
    else if (ours->version != theirs->version)
      why = info.id + " is at version " + std::to_string(theirs->version) + " on the standby, " +
            std::to_string(ours->version) + " on the primary";
    else if (ours->attributes.size() != theirs->attributes.size())
      why = info.id + " has " + std::to_string(theirs->attributes.size()) + " attributes on the standby, " +
            std::to_string(ours->attributes.size()) + " on the primary";
    for (std::size_t a = 0; why.empty() && a < ours->attributes.size(); ++a) {
      const Attribute& p = ours->attributes[a];
      const Attribute& s = theirs->attributes[a];
      if (p.name != s.name || p.value != s.value || p.flags != s.flags)
        why = info.id + " attribute " + p.name + " differs on the standby";
    }
    return why.empty();
  });
  const std::uint64_t standby_sessions = standby.stats().sessions;
  if (why.empty() && standby_sessions != sessions)
    why =
        "the standby holds " + std::to_string(standby_sessions) + " sessions, the primary " + std::to_string(sessions);
  return why;
}

}  // namespace shmsession::bench
