// Pieces the replication tests share: a key, a free loopback port, a
// backup daemon and an agent each in a forked child (real processes, real
// TCP on 127.0.0.1 unless a test picks another address), writers, and the
// checks "caught up" and "equal".
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <thread>

#include <boost/asio.hpp>
#include <boost/test/unit_test.hpp>

#include "shm/agent_seat.hpp"
#include "shm/change_feed.hpp"
#include "shm/replica.hpp"
#include "shm/store.hpp"
#include "sync/backup/agent.hpp"
#include "sync/backup/backup_server.hpp"
#include "sync/wire/key.hpp"
#include "test/support/test_support.hpp"
#include "tools/common/loopback_port.hpp"

namespace shmsession::test {

inline sync::wire::Key replication_key(std::uint8_t fill = 0x42) {
  sync::wire::Key::Bytes bytes{};
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(fill + 7 * i);
  return sync::wire::Key(bytes);
}

// A loopback port nobody listens on right now, out of the range the
// kernel gives connect()s (tools/common/loopback_port.hpp says why).
inline std::uint16_t free_port() { return tools::free_loopback_port(); }

inline Store make_store(const std::string& name, std::uint32_t log_capacity = 1 << 16,
                        std::uint64_t size = std::uint64_t{64} << 20, std::uint32_t change_lanes = 0) {
  CreateOptions o;
  o.size_bytes = size;
  o.shards = 16;
  o.change_log_capacity = log_capacity;
  o.change_lanes = change_lanes;
  return Store::create(name, o);
}

// Daemon and agent log lines go to stderr when SHMSESSION_TEST_VERBOSE is set.
inline std::function<void(const std::string&)> test_log(const std::string& who) {
  if (std::getenv("SHMSESSION_TEST_VERBOSE") == nullptr) return [](const std::string&) {};
  return [who](const std::string& line) { std::fprintf(stderr, "[%s] %s\n", who.c_str(), line.c_str()); };
}

// The backup daemon's body, for a child process: serves `standby` (created
// if missing) on address:port until killed. With drop_every > 0 it also cuts
// the agent's connection that often, from the backup side. A child that
// must prepare itself first (join a network namespace) calls this itself.
inline int serve_backup(const std::string& standby, const std::string& address, std::uint16_t port,
                        std::chrono::milliseconds drop_every = std::chrono::milliseconds(0),
                        const std::string& key_file = {}) {
  CreateOptions o;
  o.size_bytes = std::uint64_t{64} << 20;
  o.shards = 16;
  Store store = Store::open_or_create(standby, o);
  sync::BackupServerOptions options;
  options.address = address;
  options.port = port;
  options.log = test_log("backupd");
  options.key_file = key_file;  // when set, read again for every connection
  sync::BackupServer server(
      store, key_file.empty() ? sync::wire::KeyRing(replication_key()) : sync::wire::load_key_file(key_file), options);
  if (drop_every.count() > 0) {
    std::thread cutter([&] {
      // Cuts start once the first full resync is in (a cut during it only
      // means another full resync, which the cut tests do not look at).
      while (!Replica(store).position().follows_a_primary()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      for (;;) {
        std::this_thread::sleep_for(drop_every);
        server.drop_agent();
      }
    });
    cutter.detach();
  }
  server.run();
  return 0;
}

// The backup daemon in a child process on 127.0.0.1:port (see serve_backup).
inline ChildProcess start_backup(const std::string& standby, std::uint16_t port,
                                 std::chrono::milliseconds drop_every = std::chrono::milliseconds(0)) {
  return ChildProcess([=] { return serve_backup(standby, "127.0.0.1", port, drop_every); });
}

// The hex line of a key, as a key file holds it.
inline std::string key_line(const sync::wire::Key& key) {
  std::string hex;
  for (std::size_t i = 0; i < sync::wire::kKeyBytes; ++i) {
    hex += "0123456789abcdef"[key.data()[i] >> 4];
    hex += "0123456789abcdef"[key.data()[i] & 15];
  }
  return hex + "\n";
}

// The agent's body, for a child process: ships `primary` to host:port until
// SIGTERM; exit code 0 when everything was acknowledged at the stop, 3 if
// not. Reconnects quickly (backoff 20..200 ms); `tune` may change the other
// options.
inline int run_agent(const std::string& primary, const std::string& host, std::uint16_t port,
                     const std::function<void(sync::AgentOptions&)>& tune = {}) {
  Store store = Store::attach(primary);
  sync::AgentOptions options;
  options.host = host;
  options.port = port;
  options.backoff_min = std::chrono::milliseconds(20);
  options.backoff_max = std::chrono::milliseconds(200);
  options.log = test_log("agent");
  options.stop_on_signals = true;
  if (tune) tune(options);
  sync::Agent agent(store, replication_key(), options);
  return agent.run() ? 0 : 3;
}

// The agent in a child process, shipping to 127.0.0.1:port (see run_agent).
inline ChildProcess start_agent(const std::string& primary, std::uint16_t port) {
  return ChildProcess([=] { return run_agent(primary, "127.0.0.1", port); });
}

// The writers' body: commits random puts, patches and removals while
// `keep_going(n)` (n: commits so far) says so: 40 sessions, some removed and
// re-created, values up to ~2 KiB; at most `per_second` commits a second (a
// busy app server, not a CPU hog: on two cores an unpaced writer starves the
// agent, whose log then overflows by design). Each round makes at least one
// change-log entry unless another writer removed the session meanwhile.
inline int write_random(const std::string& primary, int seed, int per_second, bool removals,
                        const std::function<bool(long)>& keep_going) {
  Store store = Store::attach(primary);
  std::mt19937 rng(seed);
  const auto start = std::chrono::steady_clock::now();
  for (long n = 0; keep_going(n); ++n) {
    if (per_second > 0 && n % 100 == 0)
      std::this_thread::sleep_until(start + std::chrono::microseconds(n * 1000000L / per_second));
    const std::string id = "s" + std::to_string(rng() % 40);
    store.create_session(id);
    CommitBatch b;
    const std::string name = "a" + std::to_string(rng() % 6);
    std::string value(100 + rng() % 2000, static_cast<char>('a' + rng() % 26));
    value[rng() % value.size()] = static_cast<char>(rng());
    b.put(name, value);
    if (rng() % 9 == 0) b.remove("a" + std::to_string(rng() % 6));
    try {
      store.commit(id, b);
    } catch (const Error& e) {
      if (e.code() != Errc::NotFound && e.code() != Errc::InvalidArgument) throw;  // removed meanwhile
    }
    if (removals && rng() % 97 == 0) store.remove_session(id);
  }
  return 0;
}

// A writer (write_random) that runs for `duration`: how much it writes
// depends on the machine, so a test must not decide by that amount.
inline ChildProcess start_writer(const std::string& primary, int seed, std::chrono::milliseconds duration,
                                 int per_second = 20000, bool removals = true) {
  return ChildProcess([=] {
    const auto end = std::chrono::steady_clock::now() + duration;
    return write_random(primary, seed, per_second, removals,
                        [&](long) { return std::chrono::steady_clock::now() < end; });
  });
}

// A writer that makes exactly `commits` rounds.
inline ChildProcess start_counted_writer(const std::string& primary, int seed, long commits, int per_second = 20000,
                                         bool removals = true) {
  return ChildProcess(
      [=] { return write_random(primary, seed, per_second, removals, [&](long n) { return n < commits; }); });
}

// A writer that runs until `stop` is notified (notify once per writer that
// shares it), or at most `max_commits` rounds: a cap that keeps a test's
// change log from overflowing however long the machine makes it wait.
inline ChildProcess start_writer_until(const std::string& primary, int seed, Signal& stop, long max_commits,
                                       int per_second = 20000, bool removals = true) {
  return ChildProcess([=, &stop] {
    return write_random(primary, seed, per_second, removals, [&](long n) {
      return n < max_commits && (n % 64 != 0 || !stop.wait(std::chrono::milliseconds(0)));
    });
  });
}

// Polls `done` every 10 ms until it holds; false after `timeout` (a bound
// to fail instead of hang, not a figure the test relies on).
inline bool poll_until(const std::function<bool()>& done,
                       std::chrono::milliseconds timeout = std::chrono::seconds(120)) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// Attaches the standby once the backup daemon (a child) has created it.
inline std::optional<Store> attach_when_created(const std::string& name,
                                                std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  std::optional<Store> store;
  poll_until(
      [&] {
        try {
          store.emplace(Store::attach(name));
        } catch (const Error& e) {
          if (e.code() != Errc::NotFound) throw;
        }
        return store.has_value();
      },
      timeout);
  return store;
}

// Waits until the standby follows `primary` at its current log head.
inline bool wait_caught_up(Store& primary, Store& standby,
                           std::chrono::milliseconds timeout = std::chrono::seconds(120)) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    const ReplicaPosition p = Replica(standby).position();
    if (p.primary_store_id == primary.info().store_id && p.applied_seq == ChangeFeed(primary).next_seq()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// Session by session, attribute by attribute: the same sessions, versions,
// values and flags.
inline void check_equal(Store& primary, Store& standby) {
  std::size_t sessions = 0;
  primary.for_each_session([&](const SessionInfo& info) {
    ++sessions;
    std::optional<SessionSnapshot> p = primary.peek(info.id), s = standby.peek(info.id);
    if (!p) return true;  // expired meanwhile
    BOOST_REQUIRE_MESSAGE(s.has_value(), "standby lacks " << info.id);
    BOOST_TEST(p->version == s->version, info.id);
    BOOST_REQUIRE_EQUAL(p->attributes.size(), s->attributes.size());
    for (std::size_t i = 0; i < p->attributes.size(); ++i) {
      BOOST_TEST(p->attributes[i].name == s->attributes[i].name);
      BOOST_TEST(p->attributes[i].value == s->attributes[i].value, info.id << " " << p->attributes[i].name);
      BOOST_TEST(p->attributes[i].flags == s->attributes[i].flags);
    }
    return true;
  });
  BOOST_TEST(standby.stats().sessions == sessions);
}

// The agent's status once it has published the primary's current head as
// acknowledged (it publishes every 100 ms), or the latest after 60 s.
// Callers make sure the standby caught up first (wait_caught_up), so the
// wait ends as soon as the agent publishes.
inline AgentStatus published_status(Store& primary) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  AgentStatus status = AgentSeat(primary).status();
  while (status.acked_seq != ChangeFeed(primary).next_seq() && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    status = AgentSeat(primary).status();
  }
  return status;
}

}  // namespace shmsession::test
