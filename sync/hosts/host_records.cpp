#include "sync/hosts/host_records.hpp"

#include <algorithm>
#include <charconv>

#include "shm/error.hpp"
#include "sync/hosts/ownership.hpp"
#include "sync/hosts/redis_cluster.hpp"

namespace shmsession::hosts {

namespace {

constexpr std::string_view kRecord = "r";

std::string encode(const HostRecord& r) {
  return std::string(host_record_state_name(r.state)) + ' ' + std::to_string(r.token) + ' ' +
         std::to_string(r.redis_version) + ' ' + std::to_string(r.local.version) + ' ' +
         std::to_string(r.local.incarnation);
}

std::optional<HostRecord> decode(std::string_view text) {
  auto word = [&]() {
    const std::size_t end = std::min(text.find(' '), text.size());
    const std::string_view w = text.substr(0, end);
    text.remove_prefix(std::min(end + 1, text.size()));
    return w;
  };
  auto number = [&](std::uint64_t& out) {
    const std::string_view w = word();
    return !w.empty() && std::from_chars(w.data(), w.data() + w.size(), out).ec == std::errc{};
  };
  HostRecord r;
  const std::string_view state = word();
  if (!number(r.token) || !number(r.redis_version) || !number(r.local.version) || !number(r.local.incarnation) ||
      !text.empty())
    return std::nullopt;
  if (state == "owned")
    r.state = HostRecord::State::Owned;
  else if (state == "released")
    r.state = HostRecord::State::Released;
  else if (state == "lost")
    r.state = HostRecord::State::Lost;
  else
    return std::nullopt;
  return r;
}

void validate(const HostConfig& c) {
  validate_host_id(c.host);
  if (parse_redis_addresses(c.redis).empty()) throw Error(Errc::InvalidArgument, "no Redis address given");
  if (c.prefix.find_first_of("{}") != std::string::npos)
    throw Error(Errc::InvalidArgument, "key prefix '" + c.prefix + "' has '{' or '}'");
  if (c.lease < std::chrono::milliseconds(100) || c.lease > std::chrono::hours(1))
    throw Error(Errc::InvalidArgument, "a host lease must be 100 ms to 1 h");
}

}  // namespace

std::string_view host_record_state_name(HostRecord::State state) noexcept {
  switch (state) {
    case HostRecord::State::Owned:
      return "owned";
    case HostRecord::State::Released:
      return "released";
    case HostRecord::State::Lost:
      return "lost";
  }
  return "unknown";
}

std::string HostRecords::name_for(std::string_view store) { return std::string(store) + ".hosts"; }

std::string HostRecords::record_id(std::string_view sid) {
  validate_session_id(sid);
  return "s:" + std::string(sid);
}

void HostRecords::validate_session_id(std::string_view sid) {
  if (sid.size() > kMaxHostSessionIdBytes)
    throw Error(Errc::InvalidArgument, "session id of " + std::to_string(sid.size()) +
                                           " bytes: a store shared across hosts holds ids of at most " +
                                           std::to_string(kMaxHostSessionIdBytes));
  if (sid.find_first_of("{}") != std::string_view::npos)
    throw Error(Errc::InvalidArgument,
                "session id '" + std::string(sid) + "' has '{' or '}': it is the hash tag of the session's Redis keys");
}

HostConfig HostRecords::read_config(Store& store) {
  const std::optional<SessionSnapshot> snap = store.peek(HostRecords::kConfigId);
  auto field = [&](std::string_view name) -> std::string {
    const Attribute* a = snap ? snap->find(name) : nullptr;
    if (a == nullptr)
      throw Error(Errc::Corrupt,
                  "store '" + store.name() + "' has no host configuration ('" + std::string(name) + "')");
    return a->value;
  };
  HostConfig c;
  c.host = field("host");
  c.redis = field("redis");
  c.prefix = field("prefix");
  const std::string lease = field("lease_ms");
  std::uint64_t ms = 0;
  if (std::from_chars(lease.data(), lease.data() + lease.size(), ms).ec != std::errc{})
    throw Error(Errc::Corrupt, "store '" + store.name() + "' has a bad lease '" + lease + "'");
  c.lease = std::chrono::milliseconds(ms);
  // Absent in records made before it existed: records never expire there.
  if (const Attribute* a = snap->find("record_idle_s")) {
    std::uint32_t idle = 0;
    if (std::from_chars(a->value.data(), a->value.data() + a->value.size(), idle).ec != std::errc{})
      throw Error(Errc::Corrupt, "store '" + store.name() + "' has a bad record idle timeout '" + a->value + "'");
    c.record_idle_s = idle;
  }
  return c;
}

HostRecords HostRecords::open_or_create(std::string_view store, const HostConfig& config, std::uint64_t size_bytes) {
  validate(config);
  CreateOptions options;
  options.size_bytes = size_bytes;
  options.default_idle_timeout_s = 0;  // each record is made with its own (HostConfig::record_idle_s)
  options.lock_lease_ms = 0;           // the config lock marks the running sink: only its death frees it
  Store records = Store::open_or_create(name_for(store), options);
  const bool configured = !records.create_session(HostRecords::kConfigId, 0) &&
                          records.peek(HostRecords::kConfigId)->find("host") != nullptr;
  if (configured) {
    HostConfig old = read_config(records);
    if (old.host != config.host) {
      HostRecords existing(std::move(records), std::move(old));
      bool owns = false;
      existing.for_each(
          [&](const std::string&, const HostRecord& r) { owns = owns || r.state == HostRecord::State::Owned; });
      if (owns)
        throw Error(Errc::InvalidArgument, "store '" + std::string(store) + "' owns sessions as host '" +
                                               existing.config().host + "', not '" + config.host + "': run it as '" +
                                               existing.config().host +
                                               "', or hand its sessions over first (shmctl hand-over)");
      records = std::move(existing.store_);
    }
  }
  CommitBatch batch;
  batch.put("host", config.host).put("redis", config.redis).put("prefix", config.prefix);
  batch.put("lease_ms", std::to_string(config.lease.count()));
  batch.put("record_idle_s", std::to_string(config.record_idle_s));
  records.commit(HostRecords::kConfigId, batch);
  return HostRecords(std::move(records), config);
}

HostRecords HostRecords::attach(std::string_view store) {
  const std::string name = name_for(store);
  if (!Store::exists(name))
    throw Error(Errc::NotFound, "store '" + std::string(store) + "' is not shared across hosts (no '" + name +
                                    "'): start its agent with --redis first (shmsession-agent run " +
                                    std::string(store) + " --redis HOST:PORT --host-id ID)");
  Store records = Store::attach(name);
  HostConfig config = read_config(records);
  return HostRecords(std::move(records), std::move(config));
}

bool HostRecords::remove(std::string_view store) { return Store::remove(name_for(store)); }

std::optional<HostRecord> HostRecords::get(std::string_view sid) {
  const std::string id = record_id(sid);
  const std::string_view names[] = {kRecord};
  const std::optional<SessionSnapshot> snap = store_.peek(id, names);
  const Attribute* a = snap ? snap->find(kRecord) : nullptr;
  if (a == nullptr) return std::nullopt;
  std::optional<HostRecord> r = decode(a->value);
  if (!r) throw Error(Errc::Corrupt, "host record of session '" + std::string(sid) + "' reads '" + a->value + "'");
  return r;
}

std::optional<SessionVersion> HostRecords::version(std::string_view sid, std::string& scratch) const {
  scratch.assign("s:");
  scratch.append(sid);
  return store_.version(scratch);
}

void HostRecords::put(std::string_view sid, const HostRecord& record) {
  const std::string id = record_id(sid);
  CommitBatch batch;
  batch.put(std::string(kRecord), encode(record));
  for (int attempt = 0;; ++attempt) {
    try {
      store_.commit(id, batch);
      return;
    } catch (const Error& e) {
      if (e.code() != Errc::NotFound || attempt == 2) throw;
      store_.create_session(id, config_.record_idle_s);
    }
  }
}

std::vector<std::pair<std::string, std::string>> HostRecords::status() const {
  std::vector<std::pair<std::string, std::string>> figures;
  if (const std::optional<SessionSnapshot> snap = store_.peek(kStatusId))
    for (const Attribute& a : snap->attributes) figures.emplace_back(a.name, a.value);
  return figures;
}

void HostRecords::publish_status(const std::vector<std::pair<std::string, std::string>>& figures) {
  CommitBatch batch;
  for (const auto& [name, value] : figures) batch.put(name, value);
  try {
    store_.commit(kStatusId, batch);
  } catch (const Error& e) {
    if (e.code() != Errc::NotFound) throw;
    store_.create_session(kStatusId, 0);
    store_.commit(kStatusId, batch);
  }
}

void HostRecords::erase(std::string_view sid) { store_.remove_session(record_id(sid)); }

void HostRecords::touch(std::string_view sid) { store_.touch(record_id(sid)); }

void HostRecords::for_each(const std::function<void(const std::string& sid, const HostRecord&)>& visit) {
  std::vector<std::string> ids;
  store_.for_each_session([&](const SessionInfo& s) {
    if (s.id.starts_with("s:")) ids.push_back(s.id);
    return true;
  });
  for (const std::string& id : ids) {
    const std::string sid = id.substr(2);
    if (std::optional<HostRecord> r = get(sid)) visit(sid, *r);
  }
}

}  // namespace shmsession::hosts
