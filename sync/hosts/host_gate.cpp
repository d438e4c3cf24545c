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
  // Owned as this process last found it, if the record has not moved since
  // (its version is read before the record, so a change in between makes
  // the next look read the record again).
  thread_local std::string scratch;
  HostRecords::validate_session_id(id);  // a session id the records cannot hold: refused here
  const std::optional<SessionVersion> seen = records_.version(id, scratch);
  if (seen) {
    std::lock_guard<std::mutex> g(cache_mutex_);
    auto it = owned_.find(id);
    if (it != owned_.end() && it->second == *seen) {
      admitted_owned_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  std::optional<HostRecord> record = records_.get(id);
  if (record && record->state == HostRecord::State::Owned) {
    if (seen) remember(id, *seen);
    admitted_owned_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  try {
    take(store, id, token, record, timeout);
  } catch (...) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    throw;
  }
  if (const std::optional<SessionVersion> now = records_.version(id, scratch)) remember(id, *now);
}

void HostGate::remember(std::string_view id, SessionVersion record) {
  std::lock_guard<std::mutex> g(cache_mutex_);
  if (owned_.size() >= kMostRemembered) owned_.clear();  // a bound, not an eviction policy: they are re-read
  auto it = owned_.find(id);
  if (it == owned_.end())
    owned_.emplace(std::string(id), record);
  else
    it->second = record;
}

using Clock = std::chrono::steady_clock;

void HostGate::take(Store& store, std::string_view id, LockToken token, const std::optional<HostRecord>& record,
                    std::chrono::milliseconds timeout) {
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
    // Until the grant is announced on this host's channel, or the poll's
    // time passed (an announcement missed, a waiter ahead that died).
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::min<Clock::duration>(poll, deadline - now) + std::chrono::microseconds(999));
    if (!await_grant(id, wait)) std::this_thread::sleep_for(std::min<Clock::duration>(poll, deadline - now));
    poll = std::min(poll * 2, options_.poll_max);
  }
  install(store, id, token, record, got);
  if (waited) waited_.fetch_add(1, std::memory_order_relaxed);
}

void HostGate::take_over(Store& store, std::string_view id, std::chrono::milliseconds timeout) {
  HostRecords::validate_session_id(id);
  if (!store.version(id)) store.create_session(id);
  const LockToken token = store.acquire(id, timeout);
  struct Unlock {
    Store& store;
    std::string_view id;
    LockToken token;
    ~Unlock() {
      try {
        store.release(id, token);
      } catch (const Error&) {  // revoked or removed meanwhile
      }
    }
  } unlock{store, id, token};
  const std::optional<HostRecord> record = records_.get(id);
  std::lock_guard<std::mutex> g(redis_mutex_);
  Acquired got = ownership().seize(id);
  install(store, id, token, record, got);
}

// Granted: makes the local session Redis's state unless it is that
// already, and records the ownership.
void HostGate::install(Store& store, std::string_view id, LockToken token, const std::optional<HostRecord>& record,
                       const Acquired& got) {
  Ownership& own = *ownership_;
  const std::optional<SessionVersion> local = store.version(id);
  if (!local) throw Error(Errc::NotFound, "session '" + std::string(id) + "' does not exist");
  const bool current = record && record->state == HostRecord::State::Released && record->redis_version == got.version &&
                       record->local == *local;
  HostRecord mine{HostRecord::State::Owned, got.token, got.version, *local};
  // Redis never had the session: what this host holds of it is not in
  // Redis (a store shared from now on, a session only ever served here):
  // no local version matches, so the sink ships it whole.
  if (got.version == 0 && local->version > 0) mine.local = SessionVersion{};
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
}

// Waits on this host's channel (sharded pub/sub, subscribed at the first
// wait and kept) for "granted <id>", at most `wait`. False if there is no
// subscription to wait on (the caller sleeps instead); a lost subscription
// is made again at the next wait.
bool HostGate::await_grant(std::string_view id, std::chrono::milliseconds wait) {
  try {
    if (!grants_) {
      const std::string channel = ownership_->channel(records_.config().host);
      redis_->command(channel, {"SPUBLISH", channel, "listening"});  // follows MOVED: the map is current
      grants_ = std::make_unique<RedisSubscription>(redis_->master_of(redis_key_slot(channel)), channel, options_.redis,
                                                    true);
    }
    const Clock::time_point end = Clock::now() + wait;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
      const std::optional<std::string> m = grants_->next(std::max(left, std::chrono::milliseconds(0)));
      if (!m) return true;  // waited the whole time
      if (m->size() == id.size() + 8 && m->starts_with("granted ") && std::string_view(*m).substr(8) == id) return true;
      if (left.count() <= 0) return true;
    }
  } catch (const Error& e) {
    if (e.code() != Errc::Io) throw;
    grants_.reset();
    return false;
  }
}

HostGateStats HostGate::stats() const {
  return {admitted_owned_.load(), acquired_.load(), waited_.load(), loaded_.load(), refused_.load()};
}

}  // namespace shmsession::hosts
