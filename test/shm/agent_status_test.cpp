// The replication agent's claim and status block: one agent per store,
// taken over when it dies, and a status readers always see whole.
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "shm/agent_seat.hpp"
#include "shm/change_feed.hpp"
#include "shm/detail/test_hooks.hpp"
#include "shm/store.hpp"
#include "test/support/test_support.hpp"

using namespace shmsession;
using namespace std::chrono_literals;
using shmsession::test::ChildProcess;
using shmsession::test::code_of;
using shmsession::test::message_of;
using shmsession::test::SegmentGuard;
using shmsession::test::Signal;

namespace {

Store make(const SegmentGuard& g) { return make_store(g, {.size_bytes = 16 << 20, .shards = 8}); }

// A status whose every caller-set number is `n`, its state and texts derived
// from `n` too, so a mix of two publishes shows.
AgentStatus status_of(std::uint64_t n) {
  AgentStatus s;
  s.state = static_cast<AgentState>(n % 5);
  s.backup = "backup-" + std::to_string(n) + ":7001";
  s.last_error = "error " + std::to_string(n);
  for (std::uint64_t* field :
       {&s.updated_unix_ms, &s.connected_unix_ms, &s.sent_seq, &s.acked_seq, &s.lag_ms, &s.frames_sent, &s.frames_per_s,
        &s.wire_bytes, &s.delta_bytes, &s.whole_bytes, &s.full_resyncs, &s.partial_resyncs, &s.reconnects, &s.resends})
    *field = n;
  return s;
}

// The `n` of a status made by status_of, or nullopt if its fields disagree.
std::optional<std::uint64_t> counter_of(const AgentStatus& s) {
  const std::uint64_t n = s.updated_unix_ms;
  for (std::uint64_t v :
       {s.connected_unix_ms, s.sent_seq, s.acked_seq, s.lag_ms, s.frames_sent, s.frames_per_s, s.wire_bytes,
        s.delta_bytes, s.whole_bytes, s.full_resyncs, s.partial_resyncs, s.reconnects, s.resends})
    if (v != n) return std::nullopt;
  if (s.state != static_cast<AgentState>(n % 5)) return std::nullopt;
  if (s.backup != "backup-" + std::to_string(n) + ":7001" || s.last_error != "error " + std::to_string(n))
    return std::nullopt;
  return n;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_fresh_store_has_no_agent) {
  SegmentGuard g("agent_fresh");
  Store store = make(g);
  AgentStatus s = AgentSeat(store).status();
  BOOST_TEST(s.pid == 0);
  BOOST_TEST(!s.alive);
  BOOST_TEST((s.state == AgentState::Stopped));
  BOOST_TEST(s.backup.empty());
  BOOST_TEST(s.last_error.empty());
  BOOST_TEST(s.started_unix_ms == 0u);
  BOOST_TEST(s.updated_unix_ms == 0u);
  BOOST_TEST(s.frames_sent == 0u);
}

BOOST_AUTO_TEST_CASE(state_names) {
  BOOST_TEST(agent_state_name(AgentState::Stopped) == "stopped");
  BOOST_TEST(agent_state_name(AgentState::Connecting) == "connecting");
  BOOST_TEST(agent_state_name(AgentState::Handshake) == "handshake");
  BOOST_TEST(agent_state_name(AgentState::FullResync) == "full-resync");
  BOOST_TEST(agent_state_name(AgentState::Streaming) == "streaming");
  BOOST_TEST(agent_state_name(static_cast<AgentState>(9)) == "unknown");
}

BOOST_AUTO_TEST_CASE(claim_and_publish_round_trip_every_field) {
  SegmentGuard g("agent_roundtrip");
  Store store = make(g);
  BOOST_TEST_REQUIRE(AgentSeat(store).claim());
  AgentStatus claimed = AgentSeat(store).status();
  BOOST_TEST(claimed.pid == ::getpid());
  BOOST_TEST(claimed.alive);
  BOOST_TEST((claimed.state == AgentState::Stopped));
  BOOST_TEST(claimed.started_unix_ms > 0u);
  BOOST_TEST(AgentSeat(store).claim());  // again by the same process
  BOOST_TEST(AgentSeat(store).status().started_unix_ms == claimed.started_unix_ms);

  AgentStatus in;
  in.pid = 4242;  // ignored: the store fills pid, alive and started
  in.alive = false;
  in.started_unix_ms = 1;
  in.state = AgentState::Streaming;
  in.backup = std::string(40, 'b') + std::string(40, 'B');
  in.last_error = std::string(150, 'e') + std::string(150, 'E');
  in.updated_unix_ms = 1001;
  in.connected_unix_ms = 1002;
  in.sent_seq = 1003;
  in.acked_seq = 1004;
  in.lag_ms = 1005;
  in.frames_sent = 1006;
  in.frames_per_s = 1007;
  in.wire_bytes = 1008;
  in.delta_bytes = 1009;
  in.whole_bytes = 1010;
  in.full_resyncs = 1011;
  in.partial_resyncs = 1012;
  in.reconnects = 1013;
  in.resends = std::uint64_t{1} << 63;
  AgentSeat(store).publish(in);

  // Another attachment (the way shmctl reads it) sees exactly that.
  Store reader = Store::attach(g.name());
  AgentStatus out = AgentSeat(reader).status();
  BOOST_TEST(out.pid == ::getpid());
  BOOST_TEST(out.alive);
  BOOST_TEST(out.started_unix_ms == claimed.started_unix_ms);
  BOOST_TEST((out.state == AgentState::Streaming));
  BOOST_TEST(out.backup == in.backup.substr(0, kMaxAgentBackupBytes));
  BOOST_TEST(out.backup.size() == 63u);
  BOOST_TEST(out.last_error == in.last_error.substr(0, kMaxAgentErrorBytes));
  BOOST_TEST(out.last_error.size() == 191u);
  BOOST_TEST(out.updated_unix_ms == 1001u);
  BOOST_TEST(out.connected_unix_ms == 1002u);
  BOOST_TEST(out.sent_seq == 1003u);
  BOOST_TEST(out.acked_seq == 1004u);
  BOOST_TEST(out.lag_ms == 1005u);
  BOOST_TEST(out.frames_sent == 1006u);
  BOOST_TEST(out.frames_per_s == 1007u);
  BOOST_TEST(out.wire_bytes == 1008u);
  BOOST_TEST(out.delta_bytes == 1009u);
  BOOST_TEST(out.whole_bytes == 1010u);
  BOOST_TEST(out.full_resyncs == 1011u);
  BOOST_TEST(out.partial_resyncs == 1012u);
  BOOST_TEST(out.reconnects == 1013u);
  BOOST_TEST(out.resends == std::uint64_t{1} << 63);

  // Texts that fit are kept whole, empty ones stay empty, and a cut never
  // splits a UTF-8 sequence.
  AgentStatus small;
  small.backup = "127.0.0.1:7001";
  small.updated_unix_ms = 5;
  AgentSeat(store).publish(small);
  BOOST_TEST(AgentSeat(store).status().backup == "127.0.0.1:7001");
  BOOST_TEST(AgentSeat(store).status().last_error.empty());
  AgentStatus accented;
  // 64 bytes, the last character two of them (appended, not `+`: GCC 12
  // sees a false -Warray-bounds in that operator+ here).
  accented.backup = std::string(62, 'h');
  accented.backup += "\xC3\xA9";
  AgentSeat(store).publish(accented);
  BOOST_TEST(AgentSeat(store).status().backup == std::string(62, 'h'));
  // An updated time of 0 is stamped by the store.
  BOOST_TEST(AgentSeat(store).status().updated_unix_ms >= claimed.started_unix_ms);
}

BOOST_AUTO_TEST_CASE(publish_without_the_claim_is_refused) {
  SegmentGuard g("agent_noclaim");
  Store store = make(g);
  BOOST_TEST((code_of([&] { AgentSeat(store).publish(status_of(1)); }) == Errc::InvalidArgument));
  BOOST_TEST(AgentSeat(store).status().pid == 0);
  AgentSeat(store).release();  // no-op without the claim
  BOOST_TEST(AgentSeat(store).status().pid == 0);

  BOOST_TEST_REQUIRE(AgentSeat(store).claim());
  AgentStatus bad;
  bad.state = static_cast<AgentState>(7);
  BOOST_TEST((code_of([&] { AgentSeat(store).publish(bad); }) == Errc::InvalidArgument));
  AgentSeat(store).release();
  BOOST_TEST((code_of([&] { AgentSeat(store).publish(status_of(1)); }) == Errc::InvalidArgument));
}

BOOST_AUTO_TEST_CASE(release_stops_the_agent_and_lets_another_claim) {
  SegmentGuard g("agent_release");
  Store store = make(g);
  BOOST_TEST_REQUIRE(AgentSeat(store).claim());
  AgentSeat(store).publish(status_of(42));
  AgentSeat(store).release();
  AgentStatus released = AgentSeat(store).status();
  BOOST_TEST((released.state == AgentState::Stopped));
  BOOST_TEST(released.pid == ::getpid());   // the last agent, for inspection
  BOOST_TEST(!released.alive);              // it holds no claim any more
  BOOST_TEST(released.frames_sent == 42u);  // figures stay
  BOOST_TEST(released.backup == status_of(42).backup);
  BOOST_TEST(released.updated_unix_ms > 42u);

  Signal done;
  ChildProcess other([&] {
    Store mine = Store::attach(g.name());
    if (!AgentSeat(mine).claim()) return 1;
    AgentSeat(mine).publish(status_of(7));
    if (AgentSeat(mine).status().pid != ::getpid()) return 2;
    done.notify();
    return 0;
  });
  BOOST_TEST(other.wait() == 0);
  BOOST_TEST(done.wait(0ms));
  AgentStatus now = AgentSeat(store).status();
  BOOST_TEST(now.pid == other.pid());
  BOOST_TEST((counter_of(now) == std::optional<std::uint64_t>(7)));
  BOOST_TEST(!now.alive);  // it exited without releasing
}

BOOST_AUTO_TEST_CASE(one_agent_at_a_time_and_a_dead_one_is_taken_over) {
  SegmentGuard g("agent_takeover");
  Store store = make(g);
  Signal claimed, never;
  ChildProcess agent([&] {
    Store mine = Store::attach(g.name());
    if (!AgentSeat(mine).claim()) return 1;
    AgentSeat(mine).publish(status_of(3));
    claimed.notify();
    never.wait(60s);
    return 0;
  });
  BOOST_TEST_REQUIRE(claimed.wait(10s));

  BOOST_TEST(!AgentSeat(store).claim());
  AgentStatus held = AgentSeat(store).status();
  BOOST_TEST(held.pid == agent.pid());
  BOOST_TEST(held.alive);
  BOOST_TEST((counter_of(held) == std::optional<std::uint64_t>(3)));
  BOOST_TEST((code_of([&] { AgentSeat(store).publish(status_of(4)); }) == Errc::InvalidArgument));
  AgentSeat(store).release();  // not ours: nothing happens
  BOOST_TEST(AgentSeat(store).status().alive);
  BOOST_TEST(AgentSeat(store).status().pid == agent.pid());

  agent.kill(SIGKILL);
  BOOST_TEST(agent.wait() == 128 + SIGKILL);
  AgentStatus dead = AgentSeat(store).status();
  BOOST_TEST(dead.pid == agent.pid());
  BOOST_TEST(!dead.alive);
  BOOST_TEST((counter_of(dead) == std::optional<std::uint64_t>(3)));  // the last status stays readable

  BOOST_TEST_REQUIRE(AgentSeat(store).claim());
  AgentStatus mine = AgentSeat(store).status();
  BOOST_TEST(mine.pid == ::getpid());
  BOOST_TEST(mine.alive);
  BOOST_TEST((mine.state == AgentState::Stopped));
  // A new claim keeps the counters of the agent before (they survive a
  // restart) and blanks the rest.
  for (std::uint64_t v : {mine.frames_sent, mine.wire_bytes, mine.delta_bytes, mine.whole_bytes, mine.full_resyncs,
                          mine.partial_resyncs, mine.reconnects, mine.resends})
    BOOST_TEST(v == 3u);
  for (std::uint64_t v : {mine.connected_unix_ms, mine.sent_seq, mine.acked_seq, mine.lag_ms, mine.frames_per_s})
    BOOST_TEST(v == 0u);
  BOOST_TEST(mine.backup.empty());
  BOOST_TEST(mine.last_error.empty());
  AgentSeat(store).publish(status_of(8));
  BOOST_TEST((counter_of(AgentSeat(store).status()) == std::optional<std::uint64_t>(8)));
}

BOOST_AUTO_TEST_CASE(a_reader_never_sees_a_torn_status) {
  SegmentGuard g("agent_torn");
  Store store = make(g);
  BOOST_TEST_REQUIRE(AgentSeat(store).claim());
  AgentSeat(store).publish(status_of(1));  // the reader's first look is well formed
  constexpr std::uint64_t kPublishes = 100000;
  constexpr std::uint64_t kLast = std::uint64_t{1} << 40;  // tells the reader to stop
  Signal reading, overlapped;
  // Exit codes: 0 fine, 1 torn status, 2 never saw the writer mid-run, 3 too slow.
  ChildProcess reader([&] {
    Store mine = Store::attach(g.name());
    reading.notify();
    std::uint64_t last = 0, distinct = 0;
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    for (;;) {
      std::optional<std::uint64_t> n = counter_of(AgentSeat(mine).status());
      if (!n) return 1;
      if (*n == kLast) return distinct >= 2 ? 0 : 2;
      if (*n != last && *n != 0 && ++distinct == 2) overlapped.notify();
      last = *n;
      if (std::chrono::steady_clock::now() > deadline) return 3;
    }
  });
  BOOST_TEST_REQUIRE(reading.wait(10s));
  std::uint64_t n = 1;
  for (; n <= kPublishes; ++n) AgentSeat(store).publish(status_of(n));
  // On a loaded machine the reader may not have run yet: keep writing until
  // it has seen the status move (or a bound passes).
  bool seen = false;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!seen && std::chrono::steady_clock::now() < deadline) {
    for (int i = 0; i < 1000; ++i) AgentSeat(store).publish(status_of(n++));
    seen = overlapped.wait(0ms);
  }
  AgentSeat(store).publish(status_of(kLast));
  BOOST_TEST(reader.wait() == 0);
}

// The same within one process, where ThreadSanitizer sees both sides.
BOOST_AUTO_TEST_CASE(a_reader_thread_never_sees_a_torn_status) {
  SegmentGuard g("agent_torn_threads");
  Store store = make(g);
  Store other = Store::attach(g.name());
  BOOST_TEST_REQUIRE(AgentSeat(store).claim());
  AgentSeat(store).publish(status_of(1));
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> torn{0}, reads{0};
  std::thread reader([&] {
    while (!stop.load()) {
      if (!counter_of(AgentSeat(other).status())) torn.fetch_add(1);
      reads.fetch_add(1);
    }
  });
  for (std::uint64_t n = 2; n <= 20000 || reads.load() < 100; ++n) AgentSeat(store).publish(status_of(n));
  stop.store(true);
  reader.join();
  BOOST_TEST(torn.load() == 0u);
}

#ifdef SHMSESSION_TEST_HOOKS
namespace {
Signal* g_parked = nullptr;
void park_in_agent_write(shm::detail::HookPoint point) {
  if (point != shm::detail::HookPoint::kAgentStatusWrite) return;
  g_parked->notify();
  for (;;) ::pause();  // wait for SIGKILL
}
}  // namespace

BOOST_AUTO_TEST_CASE(an_agent_killed_mid_publish_leaves_the_last_status_readable) {
  SegmentGuard g("agent_midwrite");
  Store store = make(g);
  Signal parked;
  ChildProcess agent([&] {
    Store mine = Store::attach(g.name());
    if (!AgentSeat(mine).claim()) return 1;
    AgentSeat(mine).publish(status_of(10));
    g_parked = &parked;
    shm::detail::set_test_hook(park_in_agent_write);
    AgentSeat(mine).publish(status_of(11));  // parks holding the claim lock, mid-write
    return 2;
  });
  BOOST_TEST_REQUIRE(parked.wait(10s));
  // While the agent is stuck inside, readers still get the last whole status.
  AgentStatus stuck = AgentSeat(store).status();
  BOOST_TEST(stuck.pid == agent.pid());
  BOOST_TEST(stuck.alive);
  BOOST_TEST((counter_of(stuck) == std::optional<std::uint64_t>(10)));

  agent.kill(SIGKILL);
  BOOST_TEST(agent.wait() == 128 + SIGKILL);
  AgentStatus dead = AgentSeat(store).status();
  BOOST_TEST(!dead.alive);
  BOOST_TEST((counter_of(dead) == std::optional<std::uint64_t>(10)));

  // The claim lock its holder died in is recovered; the torn copy is rewritten.
  BOOST_TEST_REQUIRE(AgentSeat(store).claim());
  for (std::uint64_t n = 20; n < 24; ++n) {
    AgentSeat(store).publish(status_of(n));
    BOOST_TEST((counter_of(AgentSeat(store).status()) == std::optional<std::uint64_t>(n)));
  }
  BOOST_TEST(AgentSeat(store).status().pid == ::getpid());
}
#endif

// ---- the replication bound (Store::set_replication_bound) -----------------

namespace {

// The status of an agent streaming with `lag_ms`, stamped now by publish.
AgentStatus lagging(std::uint64_t lag_ms) {
  AgentStatus s;
  s.state = AgentState::Streaming;
  s.lag_ms = lag_ms;
  return s;
}

std::uint64_t wall_ms() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

}  // namespace

// Under a bound, application writes are refused while no agent runs or the
// agent lags past it (at once with no wait), writing nothing; reads go on.
BOOST_AUTO_TEST_CASE(writes_are_refused_while_the_agent_lags_past_the_bound) {
  SegmentGuard g("bound_refuse");
  Store store = make(g);
  store.create_session("s");
  BOOST_TEST((store.replication_bound() == ReplicationBound{}));
  BOOST_TEST((code_of([&] { store.set_replication_bound({0, 5}); }) == Errc::InvalidArgument));
  store.set_replication_bound({500, 0});
  BOOST_TEST((Store::attach(g.name()).replication_bound() == ReplicationBound{500, 0}));
  const CommitBatch b = CommitBatch{}.put("a", "1");
  BOOST_TEST((code_of([&] { store.commit("s", b); }) == Errc::ReplicaBehind));
  BOOST_TEST((code_of([&] { store.create_session("t"); }) == Errc::ReplicaBehind));
  BOOST_TEST((code_of([&] { store.remove_session("s"); }) == Errc::ReplicaBehind));
  BOOST_TEST(message_of([&] { store.commit("s", b); })
                 .find("no replication agent runs, more than the store's bound "
                       "of 500 ms") != std::string::npos);
  BOOST_TEST(store.peek("s")->version == 0u);
  BOOST_TEST(!store.peek("t"));
  BOOST_TEST(store.stats().bound_refusals == 4u);
  BOOST_TEST(store.touch("s"));

  AgentSeat seat(store);
  BOOST_REQUIRE(seat.claim());
  seat.publish(lagging(0));
  BOOST_TEST(store.commit("s", b) == 1u);
  seat.publish(lagging(5000));
  BOOST_TEST(message_of([&] { store.commit("s", b); }).find("its replication agent lags 5000 ms") != std::string::npos);
  // An agent that stopped publishing lags at least since its last status.
  AgentStatus stale = lagging(0);
  stale.updated_unix_ms = wall_ms() - 60000;
  seat.publish(stale);
  BOOST_TEST((code_of([&] { store.commit("s", b); }) == Errc::ReplicaBehind));
  seat.release();
  BOOST_TEST((code_of([&] { store.commit("s", b); }) == Errc::ReplicaBehind));
  store.set_replication_bound({});
  BOOST_TEST(store.commit("s", b) == 2u);
  BOOST_TEST(store.stats().bound_refusals == 7u);
  BOOST_TEST(store.stats().bound_waits == 0u);
}

// A write that waits under the bound goes through once the agent publishes
// a lag within it, and is counted as waited.
BOOST_AUTO_TEST_CASE(a_write_waiting_under_the_bound_goes_through_when_the_agent_catches_up) {
  SegmentGuard g("bound_wait");
  Store store = make(g);
  store.create_session("s");
  AgentSeat seat(store);
  BOOST_REQUIRE(seat.claim());
  seat.publish(lagging(5000));
  store.set_replication_bound({500, 600000});
  std::atomic<pid_t> tid{0};
  std::optional<std::uint64_t> version;
  std::thread writer([&] {
    tid = ::gettid();
    version = store.commit("s", CommitBatch{}.put("a", "1"));
  });
  while (tid.load() == 0) std::this_thread::yield();  // the thread starts
  BOOST_REQUIRE(shmsession::test::wait_until_thread_in_futex(tid.load(), 60s));
  BOOST_TEST(store.peek("s")->version == 0u);  // asleep, nothing written
  seat.publish(lagging(100));
  writer.join();
  BOOST_TEST((version == std::optional<std::uint64_t>(1)));
  BOOST_TEST(store.stats().bound_waits == 1u);
  BOOST_TEST(store.stats().bound_refusals == 0u);
}

// Writers that outrun the agent many times over make a backlog far longer
// to ship than the bound before the oldest change's age shows it: the
// bound also holds writes on the backlog (the log's head, lanes included,
// past what the backup acknowledged) over what the agent ships a second,
// with a margin: the backlog must ship within half the bound. Here the
// agent reports no lag at all. 1,000 changes behind (four polls or fewer)
// is not projected. 2,000 behind: at 1,000 a second that is 2 s to ship
// and the writes are refused; at 5,000 a second, 400 ms, within the
// 500 ms bound but not within its half, and they are refused too (with
// the bound itself as the limit, they went through); at 1,000,000 a
// second, 2 ms, and they go through. (With the age alone, all went
// through.)
BOOST_AUTO_TEST_CASE(the_bound_holds_writes_on_the_backlog_the_agent_has_to_ship) {
  SegmentGuard g("bound_backlog");
  Store store = make(g);
  store.create_session("s");
  AgentSeat seat(store);
  BOOST_REQUIRE(seat.claim());
  AgentStatus status = lagging(0);
  status.acked_seq = ChangeFeed(store).next_seq();
  for (int i = 0; i < 1000; ++i) store.commit("s", CommitBatch{}.put("a", std::to_string(i)));
  status.shipped_per_s = 1;  // 1,000 behind: four polls or fewer, not projected
  seat.publish(status);
  store.set_replication_bound({500, 0});
  BOOST_TEST(store.commit("s", CommitBatch{}.put("a", "within four polls")) == 1001u);
  store.set_replication_bound({});
  for (int i = 1; i < 1000; ++i) store.commit("s", CommitBatch{}.put("a", std::to_string(i)));
  status.shipped_per_s = 1000;
  seat.publish(status);
  BOOST_TEST(AgentSeat(store).status().shipped_per_s == 1000u);
  store.set_replication_bound({500, 0});
  const std::string refusal = message_of([&] { store.commit("s", CommitBatch{}.put("a", "refused")); });
  BOOST_TEST(refusal.find("backlog takes 2000 ms to ship") != std::string::npos, refusal);
  status.shipped_per_s = 5000;
  seat.publish(status);
  const std::string within_but_not_half = message_of([&] { store.commit("s", CommitBatch{}.put("a", "refused")); });
  BOOST_TEST(within_but_not_half.find("backlog takes 400 ms to ship") != std::string::npos, within_but_not_half);
  BOOST_TEST(within_but_not_half.find("more than half the store's bound of 500 ms") != std::string::npos,
             within_but_not_half);
  status.shipped_per_s = 1000000;
  seat.publish(status);
  BOOST_TEST(store.commit("s", CommitBatch{}.put("a", "through")) == 2001u);
  status.shipped_per_s = 0;  // not measured yet: the age alone
  seat.publish(status);
  BOOST_TEST(store.commit("s", CommitBatch{}.put("a", "through again")) == 2002u);
  BOOST_TEST(store.stats().bound_refusals == 2u);
}
