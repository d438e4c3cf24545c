#include "sync/hosts/redis_sink.hpp"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <optional>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "shm/change_feed.hpp"
#include "shm/error.hpp"
#include "sync/hosts/ownership.hpp"

namespace shmsession::hosts {

using Clock = std::chrono::steady_clock;

namespace detail {

// What Redis holds of a session this host owns, as this sink last shipped it.
struct Tracked {
  std::uint64_t token = 0;
  std::uint64_t base = 0;  // Redis's version
  SessionVersion shipped{};
  std::vector<std::pair<std::string, std::uint64_t>> known;  // by name: attribute versions in Redis
  bool whole = true;                                         // the next ship sends the whole session
};

}  // namespace detail

namespace detail {

// The records' idle timeout from the store's (HostConfig::record_idle_s).
inline HostConfig with_record_idle(HostConfig config, const Store& store) {
  const std::uint64_t idle = store.info().default_idle_timeout_s;
  config.record_idle_s = static_cast<std::uint32_t>(std::min<std::uint64_t>(2 * idle, 0xFFFFFFFFu));
  return config;
}

}  // namespace detail

struct RedisSink::Impl {
  Impl(Store& s, RedisSinkOptions o)
      : store(s),
        options(std::move(o)),
        records(
            HostRecords::open_or_create(s.name(), detail::with_record_idle(options.config, s), options.records_bytes)) {
    try {
      claim = records.store().acquire(HostRecords::kConfigId, std::chrono::milliseconds(200));
    } catch (const Error& e) {
      if (e.code() != Errc::LockTimeout) throw;
      pid_t holder = 0;
      for (const LockInfo& l : records.store().locks())
        if (l.session == HostRecords::kConfigId) holder = l.holder_pid;
      throw Error(Errc::AlreadyExists,
                  "a Redis sink already runs on store '" + s.name() + "' (pid " + std::to_string(holder) + ")");
    }
    redis = std::make_unique<RedisCluster>(parse_redis_addresses(options.config.redis), options.redis);
    OwnershipOptions oo;
    oo.prefix = options.config.prefix;
    oo.lease = options.config.lease;
    ownership = std::make_unique<Ownership>(*redis, options.config.host, oo);
  }

  void log(const std::string& line) const {
    if (options.log) options.log(line);
  }

  // The host's channel is sharded: subscribe on its slot's master, found
  // by routing a command on the channel (which follows MOVED and re-reads
  // the map after a failover).
  void subscribe() {
    sub.reset();
    const std::string channel = ownership->channel(options.config.host);
    redis->command(channel, {"SPUBLISH", channel, "subscribing"});
    sub.emplace(redis->master_of(redis_key_slot(channel)), channel, options.redis, true);
  }

  void set_record(std::string_view sid, const HostRecord& r) { records.put(sid, r); }

  void lose(const std::string& sid, const HostRecord& rec, const char* how) {
    HostRecord lost = rec;
    lost.state = HostRecord::State::Lost;
    set_record(sid, lost);
    tracked.erase(sid);
    lost_.fetch_add(1, std::memory_order_relaxed);
    log("session '" + sid + "': ownership lost (" + how + "): another host has it");
  }

  // Ships what Redis lacks of `sid` if this host owns it. With `lock` (the
  // session's process lock, held), reads as its holder. Returns false if
  // this host does not own the session (any more).
  bool ship(const std::string& sid, std::optional<LockToken> lock) {
    const std::optional<HostRecord> rec = records.get(sid);
    if (!rec || rec->state != HostRecord::State::Owned) {
      tracked.erase(sid);
      return false;
    }
    detail::Tracked& t = tracked[sid];
    if (t.token != rec->token) t = detail::Tracked{rec->token, rec->redis_version, rec->local, {}, true};
    for (int attempt = 0; attempt < 4; ++attempt) {
      std::vector<KnownAttribute> known;
      const SessionVersion seen = t.whole ? SessionVersion{} : t.shipped;
      if (!t.whole)
        for (const auto& [name, version] : t.known) known.push_back({name, version});
      const bool present =
          lock ? store.read_moved(sid, *lock, seen, known, snap) : store.peek_moved(sid, seen, known, snap);
      if (!present) {
        // Removed or expired here: empty it in Redis (a new version, kept for
        // the store's idle timeout, so that a host holding an older copy
        // loads the empty state instead of shipping its copy back) and let
        // it go.
        const ShipOutcome out = ownership->ship(sid, t.token, t.base, {}, {}, removed_idle_ms, true);
        if (out.kind == ShipOutcome::Kind::Conflict) {
          t.base = out.version;
          continue;
        }
        const Ownership::Released r = ownership->release(sid, t.token);
        records.erase(sid);
        tracked.erase(sid);
        if (!r.next.empty()) ownership->announce_grant(r.next, sid);
        return false;
      }
      const SessionVersion now{snap.version, snap.incarnation};
      if (t.whole && now == rec->local && t.base == rec->redis_version && attempt == 0) {
        // What the host loaded (or released) at the grant: Redis has it.
        remember(t, now);
        return true;
      }
      if (!t.whole && now == t.shipped) return true;
      const bool whole = t.whole || now.incarnation != t.shipped.incarnation;
      std::vector<std::pair<std::string, std::string>> puts;
      std::vector<std::string> removes;
      std::uint64_t bytes = 0;
      for (Attribute& a : snap.attributes)
        if (!a.value_omitted || whole) {
          bytes += a.name.size() + a.value.size();
          puts.emplace_back(a.name, std::move(a.value));
        }
      if (!whole)
        for (const auto& [name, version] : t.known)
          if (!snap.find(name)) {
            removes.push_back(name);
            bytes += name.size();
          }
      const ShipOutcome out =
          ownership->ship(sid, t.token, t.base, puts, removes, std::uint64_t{snap.idle_timeout_s} * 1000, whole);
      if (out.kind == ShipOutcome::Kind::Fenced) {
        lose(sid, *rec, "a ship was fenced");
        return false;
      }
      if (out.kind == ShipOutcome::Kind::Conflict) {  // Redis lost writes (a failover): ship it all
        conflicts_.fetch_add(1, std::memory_order_relaxed);
        log("session '" + sid + "': Redis is at version " + std::to_string(out.version) + ", not " +
            std::to_string(t.base) + ": shipping it whole");
        t.base = out.version;
        t.whole = true;
        continue;
      }
      t.base = out.version;
      ships_.fetch_add(1, std::memory_order_relaxed);
      if (whole) whole_ships_.fetch_add(1, std::memory_order_relaxed);
      shipped_bytes_.fetch_add(bytes, std::memory_order_relaxed);
      remember(t, now);
      return true;
    }
    throw Error(Errc::Io, "session '" + sid + "': Redis kept refusing its base version");
  }

  void remember(detail::Tracked& t, SessionVersion now) {
    t.shipped = now;
    t.whole = false;
    t.known.clear();
    for (const Attribute& a : snap.attributes) t.known.emplace_back(a.name, a.version);
  }

  void release(const std::string& sid) {
    const std::optional<HostRecord> rec = records.get(sid);
    if (!rec || rec->state != HostRecord::State::Owned) {
      // Not served here: if Redis says this host owns it (a process took it
      // and died before recording it), nothing was served under it.
      const OwnerInfo info = ownership->owner(sid);
      if (info.host == options.config.host) {
        const Ownership::Released r = ownership->release(sid, info.token);
        if (r.released && !r.next.empty()) ownership->announce_grant(r.next, sid);
      }
      return;
    }
    LockToken lock{};
    try {
      lock = store.acquire(sid, options.release_lock_timeout);
    } catch (const Error& e) {
      if (e.code() == Errc::NotFound) {  // gone here: ship() empties and releases it
        ship(sid, std::nullopt);
        return;
      }
      if (e.code() != Errc::LockTimeout) throw;
      log("session '" + sid + "': release asked, but its local holder kept it: " + e.what());
      return;
    }
    struct Unlock {
      Store& store;
      const std::string& sid;
      LockToken lock;
      ~Unlock() {
        try {
          store.release(sid, lock);
        } catch (const Error&) {  // revoked or removed meanwhile: not held any more
        }
      }
    } unlock{store, sid, lock};
    if (!ship(sid, lock)) return;  // lost, or removed
    const detail::Tracked t = tracked[sid];
    const Ownership::Released r = ownership->release(sid, t.token);
    if (!r.released) {
      lose(sid, *rec, "released by another");
      return;
    }
    set_record(sid, HostRecord{HostRecord::State::Released, t.token, t.base, t.shipped});
    tracked.erase(sid);
    releases_.fetch_add(1, std::memory_order_relaxed);
    if (!r.next.empty()) ownership->announce_grant(r.next, sid);
  }

  void renew_all() {
    std::uint64_t owned = 0;
    records.for_each([&](const std::string& sid, const HostRecord& rec) {
      if (rec.state != HostRecord::State::Owned) return;
      ++owned;
      records.touch(sid);
      if (ownership->renew(sid, rec.token)) {
        renewals_.fetch_add(1, std::memory_order_relaxed);
      } else {
        const std::optional<HostRecord> again = records.get(sid);  // still what was renewed?
        if (again && again->state == HostRecord::State::Owned && again->token == rec.token)
          lose(sid, rec, "its lease ran out");
      }
    });
    owned_.store(owned, std::memory_order_relaxed);
    records.store().expire();  // the records of sessions gone and not owned
  }

  void handle_messages() {
    if (!sub) subscribe();
    while (std::optional<std::string> m = sub->next(std::chrono::milliseconds(0))) {
      if (m->starts_with("release ")) release(m->substr(8));
    }
  }

  void read_changes() {
    for (;;) {
      ChangeBatch batch = ChangeFeed(store).read(next_seq, options.max_batch_entries);
      if (batch.fell_behind) {
        records.for_each([&](const std::string& sid, const HostRecord& rec) {
          if (rec.state == HostRecord::State::Owned) mark(sid);
        });
      }
      for (const ChangeEntry& e : batch.entries) mark(e.session_id);
      next_seq = batch.next_seq;
      next_seq_.store(next_seq, std::memory_order_relaxed);
      if (batch.entries.size() < options.max_batch_entries) break;
    }
    // Ownerships taken (a grant, `shmctl take`) without a change of the
    // session itself: Redis may lack what this host holds.
    for (;;) {
      ChangeBatch batch = ChangeFeed(records.store()).read(next_record_seq, options.max_batch_entries);
      if (batch.fell_behind) {
        records.for_each([&](const std::string& sid, const HostRecord& rec) {
          if (rec.state == HostRecord::State::Owned) mark(sid);
        });
      }
      for (const ChangeEntry& e : batch.entries)
        if (e.session_id.starts_with("s:") && e.kind == ChangeKind::Committed) mark(e.session_id.substr(2));
      next_record_seq = batch.next_seq;
      if (batch.entries.size() < options.max_batch_entries) return;
    }
  }

  // A changed session waits in `queue` (once) until ship_interval after
  // its first unshipped change: its later changes leave with it.
  void mark(const std::string& sid) {
    if (queued.insert(sid).second) queue.emplace_back(sid, Clock::now());
  }

  void ship_due(bool all) {
    const Clock::time_point now = Clock::now();
    lag_ms_.store(queue.empty()
                      ? 0
                      : static_cast<std::uint64_t>(
                            std::chrono::duration_cast<std::chrono::milliseconds>(now - queue.front().second).count()),
                  std::memory_order_relaxed);
    while (!queue.empty() && (all || queue.front().second + options.ship_interval <= now)) {
      const std::string sid = queue.front().first;
      ship(sid, std::nullopt);
      queue.pop_front();
      queued.erase(sid);
    }
  }

  // The change log is read every poll with no ship interval, else every
  // interval / 8 (at most every poll, at least every 10 ms: a lane of the
  // log holds thousands of changes): a busy store's changes are read in
  // batches, not one look per commit.
  void step(bool stopping) {
    const Clock::time_point now = Clock::now();
    if (stopping || now >= next_read) {
      read_changes();
      next_read = now + std::clamp<Clock::duration>(options.ship_interval / 8, Clock::duration::zero(),
                                                    std::chrono::milliseconds(10));
    }
    ship_due(stopping);
    if (stopping) return;
    handle_messages();
    if (Clock::now() >= next_status) {
      publish_status();
      next_status = Clock::now() + std::chrono::milliseconds(500);
    }
    if (Clock::now() >= next_renewal) {
      renew_all();
      next_renewal = Clock::now() + options.config.lease / 3;
    }
  }

  void publish_status() {
    const auto n = [](const std::atomic<std::uint64_t>& v) { return std::to_string(v.load()); };
    records.publish_status({{"pid", std::to_string(::getpid())},
                            {"owned", n(owned_)},
                            {"ships", n(ships_)},
                            {"whole_ships", n(whole_ships_)},
                            {"shipped_bytes", n(shipped_bytes_)},
                            {"lag_ms", n(lag_ms_)},
                            {"releases", n(releases_)},
                            {"lost", n(lost_)},
                            {"conflicts", n(conflicts_)},
                            {"redis_errors", n(redis_errors_)},
                            {"ship_interval_ms", std::to_string(options.ship_interval.count())}});
  }

  void run() {
    // Everything owned is shipped whole once: what an agent stopped or killed
    // before shipping it is in the local store, and Redis may lack it.
    next_seq = ChangeFeed(store).next_seq();
    next_record_seq = ChangeFeed(records.store()).next_seq();
    records.for_each([&](const std::string& sid, const HostRecord& rec) {
      if (rec.state == HostRecord::State::Owned) mark(sid);
    });
    log("Redis sink of host '" + options.config.host + "' on " + options.config.redis);
    Clock::duration backoff = std::chrono::milliseconds(0);
    while (!stopping.load()) {
      try {
        step(false);
        backoff = std::chrono::milliseconds(0);
        pollfd p{sub ? sub->fd() : -1, POLLIN, 0};
        ::poll(&p, 1, static_cast<int>(options.poll.count()));
      } catch (const Error& e) {
        redis_errors_.fetch_add(1, std::memory_order_relaxed);
        if (e.code() != Errc::Io) throw;
        log(std::string("Redis: ") + e.what() + " (retrying)");
        sub.reset();
        backoff = std::clamp<Clock::duration>(backoff * 2, std::chrono::milliseconds(10), std::chrono::seconds(1));
        const Clock::time_point until = Clock::now() + backoff;
        while (!stopping.load() && Clock::now() < until) ::poll(nullptr, 0, 10);
      }
    }
    try {
      step(true);
    } catch (const Error& e) {
      log(std::string("stopping with changes not shipped: ") + e.what());
    }
  }

  Store& store;
  RedisSinkOptions options;
  HostRecords records;
  const std::uint64_t removed_idle_ms = std::uint64_t{store.info().default_idle_timeout_s} * 1000;
  LockToken claim{};
  std::unique_ptr<RedisCluster> redis;
  std::unique_ptr<Ownership> ownership;
  std::optional<RedisSubscription> sub;
  std::unordered_map<std::string, detail::Tracked> tracked;
  std::deque<std::pair<std::string, Clock::time_point>> queue;  // sessions changed, since when
  std::unordered_set<std::string> queued;                       // those in `queue`
  std::uint64_t next_seq = 0;
  std::uint64_t next_record_seq = 0;
  Clock::time_point next_renewal{};
  Clock::time_point next_read{};
  Clock::time_point next_status{};
  SessionSnapshot snap;
  std::atomic<bool> stopping{false};
  std::atomic<std::uint64_t> owned_{0}, ships_{0}, whole_ships_{0}, shipped_bytes_{0}, releases_{0}, lost_{0},
      conflicts_{0}, renewals_{0}, redis_errors_{0}, lag_ms_{0}, next_seq_{0};
};

RedisSink::RedisSink(Store& store, RedisSinkOptions options)
    : impl_(std::make_unique<Impl>(store, std::move(options))) {}

RedisSink::~RedisSink() = default;

void RedisSink::run() { impl_->run(); }

void RedisSink::stop() noexcept { impl_->stopping.store(true); }

RedisSinkStats RedisSink::stats() const {
  const Impl& i = *impl_;
  return {i.owned_.load(),        i.ships_.load(),  i.whole_ships_.load(), i.shipped_bytes_.load(),
          i.releases_.load(),     i.lost_.load(),   i.conflicts_.load(),   i.renewals_.load(),
          i.redis_errors_.load(), i.lag_ms_.load(), i.next_seq_.load()};
}

}  // namespace shmsession::hosts
