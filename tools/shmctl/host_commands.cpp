// Commands about sessions shared across hosts through Redis
// (sync/hosts/hosts.md, "Operators"): hosts (this host's configuration,
// its Redis sink's figures and its records), owner (who owns a session,
// its token, lease and queue), hand-over (ask this host's sink to release
// a session it owns) and take --force (grant a session to this host
// whoever owns it: the old owner is fenced).
#include <chrono>
#include <ostream>
#include <thread>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "sync/hosts/host_gate.hpp"
#include "sync/hosts/host_records.hpp"
#include "sync/hosts/ownership.hpp"
#include "sync/hosts/redis_cluster.hpp"
#include "tools/shmctl/commands.hpp"
#include "tools/shmctl/output.hpp"

namespace shmsession::shmctl {
namespace {

hosts::HostRecords attach_records(const std::string& store) {
  return run_step("attach the host records of " + quote(store), [&] { return hosts::HostRecords::attach(store); });
}

// A Redis connection and this host's view of the ownership scripts.
struct HostRedis {
  explicit HostRedis(const hosts::HostConfig& config)
      : cluster(run_step("connect to Redis " + config.redis,
                         [&] { return hosts::RedisCluster(hosts::parse_redis_addresses(config.redis)); })),
        ownership(cluster, config.host, hosts::OwnershipOptions{config.prefix, config.lease}) {}
  hosts::RedisCluster cluster;
  hosts::Ownership ownership;
};

std::string record_text(const std::optional<hosts::HostRecord>& r) {
  if (!r) return "none (never owned here)";
  return std::string(hosts::host_record_state_name(r->state)) + ", token " + std::to_string(r->token) +
         ", Redis version " + std::to_string(r->redis_version);
}

}  // namespace

void add_hosts_info(const std::string& store, boost::json::object* json, FieldList* fields) {
  if (!Store::exists(hosts::HostRecords::name_for(store))) return;
  hosts::HostRecords records = attach_records(store);
  const hosts::HostConfig& c = records.config();
  std::string owned = "?", lag = "?", ships = "?", bytes = "?";
  for (const auto& [name, value] : records.status()) {
    if (name == "owned") owned = value;
    if (name == "lag_ms") lag = value;
    if (name == "ships") ships = value;
    if (name == "shipped_bytes") bytes = value;
  }
  if (json != nullptr) {
    boost::json::object h{{"host", c.host}, {"redis", c.redis}};
    for (const auto& [name, value] : records.status()) h["sink_" + name] = value;
    (*json)["hosts"] = std::move(h);
  }
  if (fields != nullptr) {
    fields->add("hosts", "shared as host '" + c.host + "' through Redis " + c.redis);
    fields->add("hosts owned", owned + " sessions (at the sink's last lease renewal)");
    fields->add("hosts lag", lag + "ms");
    fields->add("hosts shipped", ships + " ships, " + bytes + " bytes");
  }
}

void run_hosts(const Options& options, std::ostream& out) {
  hosts::HostRecords records = attach_records(options.store);
  const hosts::HostConfig& c = records.config();
  std::uint64_t owned = 0, released = 0, lost = 0;
  run_step("read the host records of " + quote(options.store), [&] {
    records.for_each([&](const std::string&, const hosts::HostRecord& r) {
      (r.state == hosts::HostRecord::State::Owned  ? owned
       : r.state == hosts::HostRecord::State::Lost ? lost
                                                   : released)++;
    });
  });
  const auto figures = records.status();
  if (options.json) {
    boost::json::object sink;
    for (const auto& [name, value] : figures) sink[name] = value;
    print_json(out, boost::json::object{{"store", options.store},
                                        {"host", c.host},
                                        {"redis", c.redis},
                                        {"prefix", c.prefix},
                                        {"lease_ms", c.lease.count()},
                                        {"owned", owned},
                                        {"released", released},
                                        {"lost", lost},
                                        {"sink", std::move(sink)}});
    return;
  }
  FieldList list;
  list.add("store", options.store).add("host", c.host).add("redis", c.redis).add("key prefix", c.prefix);
  list.add("lease", std::to_string(c.lease.count()) + "ms");
  list.add("sessions owned", std::to_string(owned)).add("released", std::to_string(released));
  list.add("lost", std::to_string(lost));
  if (figures.empty()) list.add("redis sink", "never ran");
  for (const auto& [name, value] : figures) list.add("sink " + name, value);
  list.print(out);
}

void run_owner(const Options& options, std::ostream& out) {
  hosts::HostRecords records = attach_records(options.store);
  HostRedis redis(records.config());
  const hosts::OwnerInfo info =
      run_step("read the owner of " + quote(options.session), [&] { return redis.ownership.owner(options.session); });
  const std::optional<hosts::HostRecord> mine =
      run_step("read the host record of " + quote(options.session), [&] { return records.get(options.session); });
  if (options.json) {
    boost::json::array queue;
    for (const std::string& h : info.queue) queue.push_back(boost::json::string(h));
    boost::json::object doc{{"session", options.session}, {"owner", info.host},
                            {"token", info.token},        {"lease_left_ms", info.lease_left_ms},
                            {"version", info.version},    {"last_token", info.last_token},
                            {"queue", std::move(queue)}};
    doc["this_host"] = records.config().host;
    doc["this_host_record"] = mine ? boost::json::value(std::string(hosts::host_record_state_name(mine->state)))
                                   : boost::json::value(nullptr);
    print_json(out, doc);
    return;
  }
  std::string queue;
  for (const std::string& h : info.queue) queue += (queue.empty() ? "" : ",") + h;
  FieldList()
      .add("session", quote(options.session))
      .add("owner", info.host.empty() ? "nobody" : info.host)
      .add("token", std::to_string(info.token))
      .add("lease left", info.host.empty() ? "-" : std::to_string(info.lease_left_ms) + "ms")
      .add("Redis version", std::to_string(info.version))
      .add("last token", std::to_string(info.last_token))
      .add("queue", queue.empty() ? "-" : queue)
      .add("this host", records.config().host + ": " + record_text(mine))
      .print(out);
}

void run_hand_over(const Options& options, std::ostream& out) {
  hosts::HostRecords records = attach_records(options.store);
  const std::optional<hosts::HostRecord> mine =
      run_step("read the host record of " + quote(options.session), [&] { return records.get(options.session); });
  if (!mine || mine->state != hosts::HostRecord::State::Owned)
    throw CommandError("hand over " + quote(options.session),
                       "host '" + records.config().host + "' does not own it (" + record_text(mine) + ")");
  HostRedis redis(records.config());
  // The host's own sink answers it as it answers another host's request:
  // ships what is left, releases, and tells the host queued first.
  run_step("ask this host's Redis sink to release " + quote(options.session),
           [&] { return redis.ownership.request_release(records.config().host, options.session); });
  std::optional<hosts::HostRecord> now;
  for (const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);;) {
    now = run_step("read the host record of " + quote(options.session), [&] { return records.get(options.session); });
    if (!now || now->state != hosts::HostRecord::State::Owned || now->token != mine->token) break;
    if (std::chrono::steady_clock::now() > end)
      throw CommandError("hand over " + quote(options.session),
                         "this host's Redis sink did not release it within 10 s (is shmsession-agent running with "
                         "--redis? a request of an app server may still hold it)");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (options.json) {
    print_json(out, boost::json::object{{"session", options.session},
                                        {"state", now ? std::string(hosts::host_record_state_name(now->state)) : ""}});
    return;
  }
  FieldList().add("session", quote(options.session)).add("this host", record_text(now)).print(out);
}

void run_take(const Options& options, std::ostream& out) {
  if (!options.force)
    throw UsageError(
        "take grants the session to this host whoever owns it (the owner is fenced): confirm with --force");
  Store store = attach_store(options.store);
  hosts::HostGate gate =
      run_step("attach the host records of " + quote(options.store), [&] { return hosts::HostGate(options.store); });
  run_step("take " + quote(options.session),
           [&] { gate.take_over(store, options.session, std::chrono::milliseconds(10000)); });
  hosts::HostRecords records = attach_records(options.store);
  const std::optional<hosts::HostRecord> now = records.get(options.session);
  if (options.json) {
    print_json(out, boost::json::object{{"session", options.session},
                                        {"owner", records.config().host},
                                        {"token", now ? now->token : 0},
                                        {"redis_version", now ? now->redis_version : 0}});
    return;
  }
  FieldList()
      .add("session", quote(options.session))
      .add("owner", records.config().host)
      .add("this host", record_text(now))
      .print(out);
}

}  // namespace shmsession::shmctl
