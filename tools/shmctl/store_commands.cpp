// Commands about a whole store: create, info, list, expire, destroy.
#include <algorithm>
#include <cstdio>
#include <ostream>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "shm/agent_seat.hpp"
#include "shm/replica.hpp"
#include "tools/shmctl/agent_report.hpp"
#include "tools/shmctl/commands.hpp"
#include "tools/shmctl/failover_report.hpp"
#include "tools/shmctl/output.hpp"

namespace shmsession::shmctl {
namespace {

boost::json::object info_json(const StoreInfo& info, const StoreStats& stats, const ReplicaPosition& replica,
                              const FailoverState& failover, const ReplicationBound& bound, const AgentStatus& agent) {
  boost::json::object doc{
      {"replica_of",
       replica.follows_a_primary() ? boost::json::value(replica.primary_store_id_hex()) : boost::json::value(nullptr)},
      {"replica_applied_seq", replica.applied_seq},
      {"name", info.name},
      {"layout_version", info.layout_version},
      {"store_id", info.store_id_hex()},
      {"generation", stats.generation},
      {"created", format_unix_ms(info.created_unix_ms)},
      {"created_unix_ms", info.created_unix_ms},
      {"size_bytes", stats.size_bytes},
      {"free_bytes", stats.free_bytes},
      {"used_bytes", stats.used_bytes},
      {"shards", info.shard_count},
      {"change_log_capacity", info.change_log_capacity},
      {"change_lanes", info.change_lanes},
      {"default_idle_timeout_s", info.default_idle_timeout_s},
      {"sessions", stats.sessions},
      {"attributes", stats.attributes},
      {"payload_bytes", stats.payload_bytes},
      {"commits", stats.commits},
      {"expirations", stats.expirations},
      {"lock_recoveries", stats.lock_recoveries},
      {"lock_revocations", stats.lock_revocations},
      {"lock_states", stats.lock_states},
      {"lock_state_slots", stats.lock_state_slots},
      {"unflushed_edits", stats.unflushed_edits},
      {"replication_bound", boost::json::object{{"max_lag_ms", bound.max_lag_ms}, {"wait_ms", bound.wait_ms}}},
      {"bound_waits", stats.bound_waits},
      {"bound_refusals", stats.bound_refusals},
      {"lock_lease_ms", info.lock_lease_ms},
      {"max_lock_queue", info.max_lock_queue},
      {"next_change_seq", stats.next_change_seq},
      {"agent", agent_json(agent, stats)},
  };
  add_failover_json(doc, failover);
  return doc;
}

FieldList info_fields(const StoreInfo& info, const StoreStats& stats, const ReplicaPosition& replica,
                      const FailoverState& failover, const ReplicationBound& bound, const AgentStatus& agent) {
  FieldList fields;
  fields.add("name", info.name)
      .add("layout version", std::to_string(info.layout_version))
      .add("store id", info.store_id_hex())
      .add("generation", std::to_string(stats.generation))
      .add("created", format_unix_ms(info.created_unix_ms))
      .add("size", format_bytes(stats.size_bytes))
      .add("used", format_bytes(stats.used_bytes))
      .add("free", format_bytes(stats.free_bytes))
      .add("shards", std::to_string(info.shard_count))
      .add("change log capacity", std::to_string(info.change_log_capacity))
      .add("change lanes", std::to_string(info.change_lanes))
      .add("default idle timeout", format_timeout(info.default_idle_timeout_s))
      .add("sessions", std::to_string(stats.sessions))
      .add("attributes", std::to_string(stats.attributes))
      .add("payload", format_bytes(stats.payload_bytes))
      .add("commits", std::to_string(stats.commits))
      .add("expirations", std::to_string(stats.expirations))
      .add("lock recoveries", std::to_string(stats.lock_recoveries))
      .add("lock revocations", std::to_string(stats.lock_revocations))
      .add("lock states",
           std::to_string(stats.lock_states) + " in use, " + std::to_string(stats.lock_state_slots) + " slots")
      .add("unflushed edits", std::to_string(stats.unflushed_edits))
      .add("lock lease", info.lock_lease_ms ? std::to_string(info.lock_lease_ms) + "ms" : "none")
      .add("max lock queue", std::to_string(info.max_lock_queue))
      .add("next change seq", std::to_string(stats.next_change_seq));
  add_failover_fields(fields, failover);
  fields.add("replication bound", format_bound(bound))
      .add("bounded writes",
           std::to_string(stats.bound_waits) + " waited, " + std::to_string(stats.bound_refusals) + " refused");
  if (replica.follows_a_primary())
    fields.add("replica of", replica.primary_store_id_hex())
        .add("replica applied seq", std::to_string(replica.applied_seq));
  add_agent_fields(fields, agent, stats);
  return fields;
}

void print_info(Store& store, const Options& options, std::ostream& out) {
  const std::string what = "read info of " + quote(options.store);
  StoreInfo info = run_step(what, [&] { return store.info(); });
  StoreStats stats = run_step(what, [&] { return store.stats(); });
  ReplicaPosition replica = run_step(what, [&] { return Replica(store).position(); });
  FailoverState failover = run_step(what, [&] { return Replica(store).failover_state(); });
  ReplicationBound bound = run_step(what, [&] { return store.replication_bound(); });
  AgentStatus agent = run_step(what, [&] { return AgentSeat(store).status(); });
  if (options.json) {
    boost::json::object doc = info_json(info, stats, replica, failover, bound, agent);
    add_hosts_info(options.store, &doc, nullptr);
    print_json(out, doc);
  } else {
    FieldList fields = info_fields(info, stats, replica, failover, bound, agent);
    add_hosts_info(options.store, nullptr, &fields);
    fields.print(out);
  }
}

// Up to `limit` sessions (all for 0) in visiting order, and whether more
// were left out.
std::pair<std::vector<SessionInfo>, bool> collect_sessions(const Store& store, std::uint64_t limit) {
  std::vector<SessionInfo> sessions;
  bool truncated = false;
  store.for_each_session([&](const SessionInfo& session) {
    if (limit != 0 && sessions.size() >= limit) {
      truncated = true;
      return false;
    }
    sessions.push_back(session);
    return true;
  });
  return {std::move(sessions), truncated};
}

void print_sessions(const std::vector<SessionInfo>& sessions, bool json, std::ostream& out) {
  const std::uint64_t now = now_unix_ms();
  if (json) {
    boost::json::array array;
    for (const SessionInfo& s : sessions) {
      array.push_back(boost::json::object{
          {"id", s.id},
          {"version", s.version},
          {"attributes", s.attribute_count},
          {"bytes", s.payload_bytes},
          {"created_unix_ms", s.created_unix_ms},
          {"last_access_unix_ms", s.last_access_unix_ms},
          {"idle_s", seconds_between(s.last_access_unix_ms, now)},
          {"idle_timeout_s", s.idle_timeout_s},
      });
    }
    print_json(out, array);
    return;
  }
  Table table({{"ID"},
               {"VERSION", Align::Right},
               {"ATTRIBUTES", Align::Right},
               {"BYTES", Align::Right},
               {"IDLE", Align::Right},
               {"TIMEOUT", Align::Right}});
  for (const SessionInfo& s : sessions) {
    table.add_row({s.id, std::to_string(s.version), std::to_string(s.attribute_count), std::to_string(s.payload_bytes),
                   std::to_string(seconds_between(s.last_access_unix_ms, now)) + "s",
                   format_timeout(s.idle_timeout_s)});
  }
  table.print(out);
}

}  // namespace

Store attach_store(const std::string& name) {
  return run_step("attach " + quote(name), [&] { return Store::attach(name); });
}

void run_create(const Options& options, std::ostream& out) {
  Store store =
      run_step("create " + quote(options.store), [&] { return Store::create(options.store, options.create); });
  print_info(store, options, out);
}

void run_info(const Options& options, std::ostream& out) {
  Store store = attach_store(options.store);
  print_info(store, options, out);
}

void run_list(const Options& options, std::ostream& out) {
  Store store = attach_store(options.store);
  auto [sessions, truncated] =
      run_step("list sessions of " + quote(options.store), [&] { return collect_sessions(store, options.limit); });
  std::sort(sessions.begin(), sessions.end(), [](const SessionInfo& a, const SessionInfo& b) { return a.id < b.id; });
  print_sessions(sessions, options.json, out);
  if (truncated && !options.json) {
    out << "(first " << options.limit << " sessions shown; --limit 0 shows all)\n";
  }
}

void run_expire(const Options& options, std::ostream& out) {
  Store store = attach_store(options.store);
  std::uint64_t expired = run_step("expire sessions of " + quote(options.store), [&] { return store.expire(); });
  if (options.json) {
    print_json(out, boost::json::object{{"store", options.store}, {"expired", expired}});
  } else {
    FieldList().add("store", options.store).add("expired", std::to_string(expired)).print(out);
  }
}

// "1234 (appserver, holds 2 locks), 1240 (shmsession-agent)"
std::string describe_users(const std::vector<AttachedProcess>& users, const std::vector<LockInfo>& locks) {
  std::string text;
  for (const AttachedProcess& p : users) {
    auto held = std::count_if(locks.begin(), locks.end(), [&](const LockInfo& l) { return l.holder_pid == p.pid; });
    if (!text.empty()) text += ", ";
    text += std::to_string(p.pid) + " (" + (p.command.empty() ? "?" : p.command);
    if (held > 0) text += ", holds " + std::to_string(held) + (held == 1 ? " lock" : " locks");
    text += ")";
  }
  return text;
}

// Unless forced, the store must attach first, so that a mistyped name never
// removes some other program's shared-memory object, and no live process
// may have it mapped: removing the name under them would let them go on
// committing (and holding locks) in a segment no one else can reach.
void run_destroy(const Options& options, std::ostream& out) {
  const std::string what = "destroy " + quote(options.store);
  if (!options.force) {
    std::vector<LockInfo> locks;
    try {
      Store store = Store::attach(options.store);
      locks = store.locks();
    } catch (const Error& e) {
      bool forcible = e.code() == Errc::Corrupt || e.code() == Errc::LayoutMismatch;
      throw CommandError(what, e.what() + std::string(forcible ? " (--force removes it anyway)" : ""));
    }
    std::vector<AttachedProcess> users = run_step(what, [&] { return Store::attached_processes(options.store); });
    if (!users.empty())
      throw CommandError(what, "store " + quote(options.store) + " is in use by " + std::to_string(users.size()) +
                                   (users.size() == 1 ? " live process: " : " live processes: ") +
                                   describe_users(users, locks) +
                                   "; stop them first (--force removes the name anyway, and they carry on "
                                   "in the unlinked segment)");
  }
  if (!run_step(what, [&] { return Store::remove(options.store); })) {
    throw CommandError(what, "store " + quote(options.store) + " does not exist");
  }
  if (options.json) {
    print_json(out, boost::json::object{{"store", options.store}, {"destroyed", true}});
  } else {
    FieldList().add("store", options.store).add("destroyed", "yes").print(out);
  }
}

}  // namespace shmsession::shmctl
