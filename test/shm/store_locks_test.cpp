// Process locks across real processes: tokens and fencing, FIFO queues,
// release requests, dead holders and waiters, leases, timeouts.
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/mman.h>
#include <time.h>

#include <atomic>
#include <thread>

#include "shm/detail/test_hooks.hpp"
#include "shm/lock_probe.hpp"
#include "shm/recovery.hpp"
#include "shm/store.hpp"
#include "test/support/test_support.hpp"

using shmsession::test::code_of;

using namespace shmsession;
using namespace std::chrono_literals;
using shmsession::test::ChildProcess;
using shmsession::test::SegmentGuard;
using shmsession::test::Signal;

namespace {

Store make(const SegmentGuard& g, std::uint32_t lease_ms = kDefaultLockLeaseMs, std::uint32_t max_queue = 64) {
  Store s =
      make_store(g, {.size_bytes = 16 << 20, .shards = 16, .lock_lease_ms = lease_ms, .max_lock_queue = max_queue});
  s.create_session("s");
  return s;
}

// Polls the operators' view until the session's queue has `n` waiters.
bool wait_queue_length(Store& s, std::size_t n, std::chrono::milliseconds limit = 60s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    for (const LockInfo& l : s.locks())
      if (l.session == "s" && l.queue.size() == n) return true;
    std::this_thread::sleep_for(1ms);
  }
  return false;
}

// A child that takes the lock, tells the parent, and sits on it.
ChildProcess holder_child(const SegmentGuard& g, Signal& holding) {
  return ChildProcess([&] {
    Store mine = Store::attach(g.name());
    mine.acquire("s", 60s);
    holding.notify();
    for (;;) ::pause();
    return 0;
  });
}

double monotonic_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

}  // namespace

BOOST_AUTO_TEST_CASE(tokens_only_grow_and_old_tokens_are_fenced) {
  SegmentGuard g("tokens");
  Store s = make(g);
  LockToken last{0};
  for (int i = 0; i < 50; ++i) {
    LockToken t = s.acquire("s", 1s);
    BOOST_TEST(t.value > last.value);
    BOOST_TEST(s.try_acquire("s")->value == t.value);  // this process holds it already
    s.commit("s", t, CommitBatch{}.put("n", std::to_string(i)));
    s.release("s", t);
    BOOST_TEST((code_of([&] { s.commit("s", t, CommitBatch{}.put("n", "stale")); }) == Errc::StaleToken));
    BOOST_TEST((code_of([&] { s.read("s", t); }) == Errc::StaleToken));
    BOOST_TEST((code_of([&] { s.release("s", t); }) == Errc::StaleToken));
    last = t;
  }
  BOOST_TEST(s.read("s")->find("n")->value == "49");
  BOOST_TEST((code_of([&] { s.acquire("nope", 1s); }) == Errc::NotFound));
}

BOOST_AUTO_TEST_CASE(another_process_cannot_take_a_held_lock) {
  SegmentGuard g("held");
  Store s = make(g);
  LockToken t = s.acquire("s", 1s);
  ChildProcess other([&] {
    Store mine = Store::attach(g.name());
    if (mine.try_acquire("s")) return 1;
    try {
      mine.acquire("s", 50ms);
      return 2;
    } catch (const Error& e) {
      return e.code() == Errc::LockTimeout ? 0 : 3;
    }
  });
  BOOST_TEST(other.wait() == 0);
  // The timed-out waiter left the queue: nobody waits, the holder is intact.
  auto locks = s.locks();
  BOOST_REQUIRE(locks.size() == 1u);
  BOOST_TEST(locks[0].queue.empty());
  BOOST_TEST(locks[0].token == t.value);
  s.release("s", t);
  BOOST_TEST(s.locks().empty());
}

BOOST_AUTO_TEST_CASE(forced_unlock_fences_the_old_holder) {
  SegmentGuard g("force");
  Store s = make(g);
  Signal holding, forced, done;
  ChildProcess child([&] {
    Store mine = Store::attach(g.name());
    LockToken t = mine.acquire("s", 60s);
    mine.commit("s", t, CommitBatch{}.put("by", "child"));
    holding.notify();
    if (!forced.wait(60s)) return 1;
    return code_of([&] { mine.commit("s", t, CommitBatch{}.put("by", "stale child")); }) == Errc::StaleToken ? 0 : 2;
  });
  BOOST_REQUIRE(holding.wait(60s));
  BOOST_TEST(s.force_unlock("s"));
  BOOST_TEST(!s.force_unlock("s"));
  forced.notify();
  BOOST_TEST(child.wait() == 0);
  BOOST_TEST(s.read("s")->find("by")->value == "child");
  BOOST_TEST(s.stats().lock_revocations == 1u);
}

BOOST_AUTO_TEST_CASE(five_waiters_are_granted_in_the_order_they_asked) {
  SegmentGuard g("fifo");
  Store s = make(g);
  LockToken t = s.acquire("s", 1s);
  s.commit("s", t, CommitBatch{}.put("order", ""));
  std::vector<ChildProcess> waiters;
  std::vector<pid_t> pids;
  for (int i = 0; i < 5; ++i) {
    waiters.emplace_back([&, i] {
      Store mine = Store::attach(g.name());
      LockToken mt = mine.acquire("s", 120s);
      std::string order = mine.read("s", mt)->find("order")->value;
      mine.commit("s", mt, CommitBatch{}.put("order", order + std::to_string(i)));
      mine.release("s", mt);
      return 0;
    });
    pids.push_back(waiters.back().pid());
    BOOST_REQUIRE(wait_queue_length(s, i + 1));
  }
  auto locks = s.locks();
  BOOST_REQUIRE(locks.size() == 1u);
  BOOST_TEST(locks[0].queue == pids, boost::test_tools::per_element());
  BOOST_TEST(locks[0].release_requested);
  s.release("s", t);
  for (auto& w : waiters) BOOST_TEST(w.wait() == 0);
  BOOST_TEST(s.read("s")->find("order")->value == "01234");
}

BOOST_AUTO_TEST_CASE(holder_is_asked_to_release_and_hands_over_at_once) {
  SegmentGuard g("ask");
  Store s = make(g);
  Signal holding, asked;
  ChildProcess holder([&] {
    Store mine = Store::attach(g.name());
    std::atomic<bool> done{false};
    LockToken t = mine.acquire("s", 60s);
    if (mine.release_requested("s", t)) return 1;
    mine.on_release_request([&](const std::string& session, LockToken token) {
      bool polled = mine.release_requested(session, token);
      mine.commit(session, token, CommitBatch{}.put("flushed", "yes"));
      mine.release(session, token);
      if (polled) asked.notify();
      done = true;
    });
    holding.notify();
    while (!done) std::this_thread::sleep_for(1ms);
    return 0;
  });
  BOOST_REQUIRE(holding.wait(60s));
  LockToken t = s.acquire("s", 60s);  // granted by the holder's release
  BOOST_TEST(asked.wait(30s));
  BOOST_TEST(s.read("s", t)->find("flushed")->value == "yes");
  BOOST_TEST(holder.wait() == 0);
  s.release("s", t);
}

// The lock probes (shm/lock_probe.hpp) each process sets see a hand-over
// from both sides, for the session concerned: the requester asks and is
// granted; the holder's watcher gets the request and hands the lock over.
std::atomic<unsigned> g_probe_points{0};

constexpr unsigned probe_bit(shm::LockProbe point) { return 1u << static_cast<unsigned>(point); }

void record_probe(shm::LockProbe point, std::string_view session) noexcept {
  if (session == "s") g_probe_points.fetch_or(probe_bit(point));
}

BOOST_AUTO_TEST_CASE(lock_probes_see_a_hand_over_from_both_sides) {
  SegmentGuard g("probes");
  Store s = make(g);
  Signal holding;
  ChildProcess holder([&] {
    shm::set_lock_probe(&record_probe);
    Store mine = Store::attach(g.name());
    std::atomic<bool> released{false};
    mine.acquire("s", 60s);
    mine.on_release_request([&](const std::string& session, LockToken token) {
      mine.release(session, token);
      released = true;
      released.notify_all();
    });
    holding.notify();
    released.wait(false);
    const unsigned want = probe_bit(shm::LockProbe::kReleaseRequestDelivered) | probe_bit(shm::LockProbe::kHandingOver);
    return (g_probe_points.load() & want) == want ? 0 : 1;
  });
  BOOST_REQUIRE(holding.wait(60s));
  shm::set_lock_probe(&record_probe);
  LockToken t = s.acquire("s", 60s);  // granted by the holder's release
  shm::set_lock_probe(nullptr);
  BOOST_TEST(holder.wait() == 0, "the holder's probe missed the request's delivery or the hand-over");
  BOOST_TEST((g_probe_points.load() & probe_bit(shm::LockProbe::kReleaseRequested)) != 0u);
  BOOST_TEST((g_probe_points.load() & probe_bit(shm::LockProbe::kGranted)) != 0u);
  s.release("s", t);
}

// Lease 0: nothing but dead-holder detection can take the lock from the
// holder, so a waiter granted at all proves the death was seen. How long the
// hand-over took is printed as a figure (shmbench's lock workloads measure
// it); a machine under load must not fail the test by being slow.
BOOST_AUTO_TEST_CASE(a_killed_holder_is_replaced_by_the_next_waiter) {
  SegmentGuard g("dead");
  Store s = make(g, 0);
  Signal holding;
  ChildProcess holder = holder_child(g, holding);
  BOOST_REQUIRE(holding.wait(60s));
  LockToken dead_token{s.locks().at(0).token};
  std::atomic<double> granted_at{0};
  std::atomic<std::uint64_t> granted_token{0};
  std::thread waiter([&] {
    try {
      Store mine = Store::attach(g.name());
      granted_token = mine.acquire("s", 120s).value;  // fail instead of hang
      granted_at = monotonic_ms();
    } catch (const Error&) {
      // granted_token stays 0: the checks below fail.
    }
  });
  BOOST_REQUIRE(wait_queue_length(s, 1));
  double killed_at = monotonic_ms();
  holder.kill(SIGKILL);  // not reaped yet: a zombie must count as dead
  waiter.join();
  BOOST_REQUIRE_MESSAGE(granted_token.load() != 0, "the waiter was never granted the dead holder's lock");
  BOOST_TEST_MESSAGE("dead holder replaced after " << granted_at - killed_at << " ms");
  BOOST_TEST(holder.wait() == 128 + SIGKILL);
  BOOST_TEST((code_of([&] { s.commit("s", dead_token, CommitBatch{}.put("x", "y")); }) == Errc::StaleToken));
  BOOST_TEST(granted_token.load() > dead_token.value);
  BOOST_TEST(s.stats().lock_revocations == 1u);
}

BOOST_AUTO_TEST_CASE(a_holder_that_ignores_requests_loses_the_lock_after_the_lease) {
  SegmentGuard g("lease");
  Store s = make(g, 200);
  Signal holding;
  ChildProcess holder = holder_child(g, holding);
  BOOST_REQUIRE(holding.wait(60s));
  LockToken old{s.locks().at(0).token};
  LockToken t = s.acquire("s", 60s);
  BOOST_TEST(t.value > old.value);
  BOOST_TEST(s.stats().lock_revocations == 1u);
  // Without a lease the same holder keeps the lock.
  SegmentGuard g2("nolease");
  Store s2 = make(g2, 0);
  Signal holding2;
  ChildProcess holder2 = holder_child(g2, holding2);
  BOOST_REQUIRE(holding2.wait(60s));
  BOOST_TEST((code_of([&] { s2.acquire("s", 500ms); }) == Errc::LockTimeout));
}

BOOST_AUTO_TEST_CASE(a_waiter_killed_in_the_queue_is_skipped) {
  SegmentGuard g("deadwaiter");
  Store s = make(g);
  LockToken t = s.acquire("s", 1s);
  ChildProcess doomed([&] {
    Store mine = Store::attach(g.name());
    mine.acquire("s", 30s);
    return 0;
  });
  BOOST_REQUIRE(wait_queue_length(s, 1));
  Signal got;
  ChildProcess next([&] {
    Store mine = Store::attach(g.name());
    LockToken mt = mine.acquire("s", 120s);
    mine.commit("s", mt, CommitBatch{}.put("winner", "next"));
    got.notify();
    mine.release("s", mt);
    return 0;
  });
  BOOST_REQUIRE(wait_queue_length(s, 2));
  doomed.kill(SIGKILL);
  doomed.wait();
  s.release("s", t);
  BOOST_TEST(got.wait(60s));
  BOOST_TEST(next.wait() == 0);
  BOOST_TEST(s.read("s")->find("winner")->value == "next");

  // Only a dead waiter queued: release leaves the lock free.
  t = s.acquire("s", 1s);
  ChildProcess doomed2([&] {
    Store mine = Store::attach(g.name());
    mine.acquire("s", 30s);
    return 0;
  });
  BOOST_REQUIRE(wait_queue_length(s, 1));
  doomed2.kill(SIGKILL);
  doomed2.wait();
  s.release("s", t);
  BOOST_TEST(s.locks().empty());
  ChildProcess taker([&] {
    Store mine = Store::attach(g.name());
    return mine.try_acquire("s") ? 0 : 1;
  });
  BOOST_TEST(taker.wait() == 0);
}

BOOST_AUTO_TEST_CASE(a_full_queue_is_a_clear_error) {
  SegmentGuard g("full");
  Store s = make(g, kDefaultLockLeaseMs, 2);
  LockToken t = s.acquire("s", 1s);
  std::vector<ChildProcess> waiters;
  for (int i = 0; i < 2; ++i) {
    waiters.emplace_back([&] {
      Store mine = Store::attach(g.name());
      mine.release("s", mine.acquire("s", 120s));
      return 0;
    });
    BOOST_REQUIRE(wait_queue_length(s, i + 1));
  }
  ChildProcess third([&] {
    Store mine = Store::attach(g.name());
    try {
      mine.acquire("s", 120s);
    } catch (const Error& e) {
      return e.code() == Errc::LockTimeout && std::string(e.what()).find("full") != std::string::npos ? 0 : 2;
    }
    return 1;
  });
  BOOST_TEST(third.wait_for(60s) == 0);  // refused ("full"), not timed out: that takes 120 s
  s.release("s", t);
  for (auto& w : waiters) BOOST_TEST(w.wait() == 0);
}

BOOST_AUTO_TEST_CASE(removing_the_session_tells_its_waiters) {
  SegmentGuard g("removed");
  Store s = make(g);
  LockToken t = s.acquire("s", 1s);
  ChildProcess waiter([&] {
    Store mine = Store::attach(g.name());
    return code_of([&] { mine.acquire("s", 120s); }) == Errc::NotFound ? 0 : 1;
  });
  BOOST_REQUIRE(wait_queue_length(s, 1));
  BOOST_TEST(s.remove_session("s"));
  BOOST_TEST(waiter.wait_for(60s) == 0);
  BOOST_TEST((code_of([&] { s.commit("s", t, CommitBatch{}); }) == Errc::NotFound));
}

BOOST_AUTO_TEST_CASE(a_destroyed_store_handle_releases_its_locks) {
  SegmentGuard g("dtor");
  Store s = make(g);
  {
    Store other = Store::attach(g.name());
    other.create_session("t");
    other.acquire("s", 1s);
    other.acquire("t", 1s);
    BOOST_TEST(s.locks().size() == 2u);
  }
  BOOST_TEST(s.locks().empty());
}

BOOST_AUTO_TEST_CASE(mutual_exclusion_under_load) {
  SegmentGuard g("mutex");
  Store s = make(g);
  constexpr int kProcs = 4, kCycles = 2000;
  std::vector<ChildProcess> workers;
  for (int p = 0; p < kProcs; ++p) {
    workers.emplace_back([&] {
      Store mine = Store::attach(g.name());
      SessionSnapshot snap;
      for (int i = 0; i < kCycles; ++i) {
        LockToken t = mine.acquire("s", 30s);
        mine.read_into("s", t, {}, snap);
        const Attribute* c = snap.find("counter");
        long n = c ? std::stol(c->value) : 0;
        mine.commit("s", t, CommitBatch{}.put("counter", std::to_string(n + 1)));
        mine.release("s", t);
      }
      return 0;
    });
  }
  for (auto& w : workers) BOOST_TEST(w.wait() == 0);
  BOOST_TEST(s.read("s")->find("counter")->value == std::to_string(kProcs * kCycles));
  BOOST_TEST(s.stats().lock_revocations == 0u);
}

// A release with a token this process no longer holds (the lock was forced
// away, as 'shmctl unlock --force' does, and acquired again) is refused and
// leaves the lock held now alone: release requests still reach it, and
// destroying the Store still frees it (with lease 0, nothing else would).
BOOST_AUTO_TEST_CASE(a_stale_release_keeps_the_lock_held_now) {
  SegmentGuard g("stalerelease");
  Store s = make(g, /*lease_ms=*/0);
  {
    Store holder = Store::attach(g.name());
    std::atomic<int> asked{0};
    holder.on_release_request([&](const std::string& id, LockToken token) {
      ++asked;
      holder.release(id, token);
    });
    LockToken first = holder.acquire("s", 1s);
    BOOST_TEST(s.force_unlock("s"));
    LockToken second = holder.acquire("s", 1s);
    BOOST_TEST(second.value > first.value);
    BOOST_TEST((code_of([&] { holder.release("s", first); }) == Errc::StaleToken));
    ChildProcess waiter([&] {
      Store mine = Store::attach(g.name());
      mine.release("s", mine.acquire("s", 120s));
      return 0;
    });
    BOOST_TEST(waiter.wait_for(60s) == 0, "the holder never heard the release request");
    BOOST_TEST(asked.load() == 1);
    holder.on_release_request({});
    // Once more, and then the handle goes with the lock held.
    LockToken third = holder.acquire("s", 1s);
    BOOST_TEST(s.force_unlock("s"));
    holder.acquire("s", 1s);
    BOOST_TEST((code_of([&] { holder.release("s", third); }) == Errc::StaleToken));
  }
  BOOST_TEST(s.locks().empty(), "the destroyed handle left its lock held");
}

// A process slot is freed when its Store goes: check counts only the slots
// of processes that died holding one, and recover frees those once.
BOOST_AUTO_TEST_CASE(only_a_dead_process_slot_is_reported_and_freed) {
  SegmentGuard g("slots");
  Store s = make(g);
  ChildProcess clean([&] {
    Store mine = Store::attach(g.name());
    mine.release("s", mine.acquire("s", 1s));  // claims a process slot; ~Store frees it
    return 0;
  });
  BOOST_REQUIRE(clean.wait() == 0);
  BOOST_TEST(check_store(s).dead_process_slots == 0u);
  RecoveryReport none = recover_store(s, false);
  BOOST_TEST(none.action == "none");
  BOOST_TEST(none.slots_freed == 0u);

  Signal holding;
  ChildProcess killed([&] {
    Store mine = Store::attach(g.name());
    mine.create_session("k");
    mine.acquire("k", 1s);
    holding.notify();
    for (;;) ::pause();
    return 0;
  });
  BOOST_REQUIRE(holding.wait(60s));
  killed.kill(SIGKILL);
  BOOST_REQUIRE(killed.wait() == 128 + SIGKILL);
  BOOST_TEST(check_store(s).dead_process_slots == 1u);
  RecoveryReport repaired = recover_store(s, false);
  BOOST_TEST(repaired.action == "repaired");
  BOOST_TEST(repaired.slots_freed == 1u);
  BOOST_TEST(repaired.locks_revoked == 1u);
  BOOST_TEST(check_store(s).dead_process_slots == 0u);
  BOOST_TEST(recover_store(s, false).action == "none");
}

// A release-request callback that throws (here not even a std::exception)
// neither ends the process nor the lock: the holder still holds it with the
// request standing, and releases it when it chooses.
BOOST_AUTO_TEST_CASE(a_callback_that_throws_leaves_the_process_and_its_lock_sane) {
  SegmentGuard g("throwingcb");
  Store s = make(g);
  Signal holding;
  ChildProcess holder([&] {
    Store mine = Store::attach(g.name());
    std::atomic<int> calls{0};
    mine.on_release_request([&](const std::string&, LockToken) {
      ++calls;
      throw 42;
    });
    LockToken t = mine.acquire("s", 1s);
    holding.notify();
    for (int i = 0; i < 20000 && calls.load() == 0; ++i) std::this_thread::sleep_for(1ms);
    if (calls.load() != 1) return 1;
    if (!mine.release_requested("s", t)) return 2;
    mine.commit("s", t, CommitBatch{}.put("by", "holder"));
    mine.release("s", t);
    mine.on_release_request({});
    return 0;
  });
  BOOST_REQUIRE(holding.wait(60s));
  LockToken t = s.acquire("s", 30s);  // granted when the holder releases
  BOOST_TEST(holder.wait() == 0, "the holder process died of its callback's exception");
  BOOST_TEST(s.read("s", t)->find("by")->value == "holder");
  BOOST_TEST(s.stats().lock_revocations == 0u);
}

#ifdef SHMSESSION_TEST_HOOKS
namespace {

using shm::detail::HookPoint;

std::atomic<bool> g_watcher_inside{false};  // the watcher is parked holding its locks_mutex
std::atomic<bool> g_fork_started{false};    // a fork's prepare handler ran (or the test gave up)

// Parks the watcher inside its locks_mutex until a fork begins: the worst
// moment for a fork, made certain. 20 s bounds it if no fork handler runs.
void hold_watcher_inside_until_fork(HookPoint point) {
  if (point == HookPoint::kForkPrepare) g_fork_started = true;
  if (point != HookPoint::kWatcherHoldingLocks || g_fork_started) return;
  g_watcher_inside = true;
  for (int i = 0; i < 20000 && !g_fork_started; ++i) std::this_thread::sleep_for(1ms);
}

std::atomic<bool> g_watcher_may_look{false};

// Holds the watcher's first look until the test says go.
void hold_first_watcher_look(HookPoint point) {
  if (point != HookPoint::kWatcherLooks) return;
  for (int i = 0; i < 20000 && !g_watcher_may_look; ++i) std::this_thread::sleep_for(1ms);
}

}  // namespace

// fork() while the release-request watcher holds its process-private
// mutex: the child inherits no held mutex, takes locks of its own, and its
// Store (with no watcher in the child) stops cleanly.
BOOST_AUTO_TEST_CASE(a_child_forked_while_the_watcher_holds_its_mutex_can_acquire) {
  SegmentGuard g("forkwatch");
  Store s = make(g);
  s.create_session("t");
  g_watcher_inside = false;
  g_fork_started = false;
  shm::detail::set_test_hook(hold_watcher_inside_until_fork);
  s.on_release_request([](const std::string&, LockToken) {});
  for (int i = 0; i < 10000 && !g_watcher_inside; ++i) std::this_thread::sleep_for(1ms);
  BOOST_REQUIRE_MESSAGE(g_watcher_inside.load(), "the watcher never reached its mutex");
  ChildProcess child([&] {
    LockToken t = s.acquire("t", 1s);
    s.commit("t", t, CommitBatch{}.put("by", "child"));
    s.release("t", t);
    s.on_release_request({});  // the parent's watcher thread is not in this process
    return 0;
  });
  const int code = child.wait_for(60s);
  g_fork_started = true;  // lets a watcher still parked go
  shm::detail::set_test_hook(nullptr);
  BOOST_TEST(code != -1, "the child hung on a mutex the watcher held at the fork");
  BOOST_TEST(code == 0);
  s.on_release_request({});
  BOOST_TEST(s.peek("t")->find("by")->value == "child");
  BOOST_TEST(s.locks().empty());
}

// The watcher's first look finds the store moved to a generation it cannot
// map (rebuilt, then the name removed): it keeps watching the generation it
// has, and stops when told.
BOOST_AUTO_TEST_CASE(a_watcher_whose_first_look_fails_keeps_watching) {
  SegmentGuard g("watchfail");
  Store s = make(g);
  ChildProcess child([&] {
    g_watcher_may_look = false;
    shm::detail::set_test_hook(hold_first_watcher_look);
    Store mine = Store::attach(g.name());
    mine.on_release_request([](const std::string&, LockToken) {});
    {
      Store other = Store::attach(g.name());
      if (recover_store(other, true).action != "rebuilt") return 1;
    }
    if (::shm_unlink(("/" + g.name()).c_str()) != 0) return 2;  // nothing left to move to
    g_watcher_may_look = true;
    mine.on_release_request({});
    return 0;
  });
  BOOST_TEST(child.wait_for(20s) == 0, "the process with the watcher died or hung");
}
#endif
