#include "sync/hosts/host_gate.hpp"

#include <algorithm>
#include <thread>

#include "shm/error.hpp"

namespace shmsession::hosts {

HostGate::HostGate(std::string_view store, HostGateOptions options)
    : records_(HostRecords::attach(store)), options_(std::move(options)) {}

HostGate::~HostGate() = default;

Ownership& HostGate::ownership() {
  if (!ownership_) {
    redis_ = std::make_unique<RedisCluster>(parse_redis_addresses(records_.config().redis), options_.redis);
    OwnershipOptions o;
    o.prefix = records_.config().prefix;
    o.lease = records_.config().lease;
    ownership_ = std::make_unique<Ownership>(*redis_, records_.config().host, o);
  }
  return *ownership_;
}

void HostGate::admit(Store& store, std::string_view id, LockToken token, std::chrono::milliseconds timeout) {
  std::optional<HostRecord> record = records_.get(id);
  if (record && record->state == HostRecord::State::Owned) {
    admitted_owned_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  try {
    take(store, id, token, record, timeout);
  } catch (...) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    throw;
  }
}

void HostGate::take(Store& store, std::string_view id, LockToken token, const std::optional<HostRecord>& record,
                    std::chrono::milliseconds timeout) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point deadline = Clock::now() + timeout;
  std::lock_guard<std::mutex> g(redis_mutex_);
  Ownership& own = ownership();
  std::chrono::milliseconds poll = options_.poll_min;
  Clock::time_point next_request{};
  bool waited = false;
  Acquired got;
  for (;;) {
    got = own.acquire(id);
    if (got.kind == Acquired::Kind::Granted) break;
    waited = true;
    const Clock::time_point now = Clock::now();
    if (got.kind == Acquired::Kind::Owned && now >= next_request) {
      own.request_release(got.owner, id);
      next_request = now + options_.rerequest;
    }
    if (now >= deadline) {
      own.leave_queue(id);
      throw Error(Errc::LockTimeout, "session '" + std::string(id) + "' is owned by host '" + got.owner +
                                         "' and was not handed over within " + std::to_string(timeout.count()) +
                                         " ms (place " + std::to_string(got.position) + " in its queue)");
    }
    std::this_thread::sleep_for(std::min<Clock::duration>(poll, deadline - now));
    poll = std::min(poll * 2, options_.poll_max);
  }
  // Granted: make the local session Redis's state unless it is that already.
  const std::optional<SessionVersion> local = store.version(id);
  if (!local) throw Error(Errc::NotFound, "session '" + std::string(id) + "' does not exist");
  const bool current = record && record->state == HostRecord::State::Released && record->redis_version == got.version &&
                       record->local == *local;
  HostRecord mine{HostRecord::State::Owned, got.token, got.version, *local};
  if (!current && got.version > 0) {
    const StoredSession stored = own.load(id);
    CommitBatch batch;
    for (const auto& [name, value] : stored.attributes) batch.put(name, value);
    auto in_redis = [&](const std::string& name) {
      auto it = std::lower_bound(stored.attributes.begin(), stored.attributes.end(), name,
                                 [](const auto& a, const std::string& n) { return a.first < n; });
      return it != stored.attributes.end() && it->first == name;
    };
    if (const std::optional<SessionInfo> info = store.describe(id))
      for (const AttributeInfo& a : info->attributes)
        if (!in_redis(a.name)) batch.remove(a.name);
    if (!batch.empty()) store.commit(id, token, batch);
    mine.redis_version = stored.version;
    mine.local = store.version(id).value_or(*local);
    loaded_.fetch_add(1, std::memory_order_relaxed);
  }
  records_.put(id, mine);
  acquired_.fetch_add(1, std::memory_order_relaxed);
  if (waited) waited_.fetch_add(1, std::memory_order_relaxed);
}

HostGateStats HostGate::stats() const {
  return {admitted_owned_.load(), acquired_.load(), waited_.load(), loaded_.load(), refused_.load()};
}

}  // namespace shmsession::hosts
