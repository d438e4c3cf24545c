// Recovery from damage a killed process leaves beyond one shard: a poisoned
// allocator or named-object index (rebuilt into a new generation that
// every attached process moves to), and a rebuilder killed before or after
// it put the new generation in place. check_store and recover_store.
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "shm/change_feed.hpp"
#include "shm/detail/test_hooks.hpp"
#include "shm/recovery.hpp"
#include "shm/store.hpp"
#include "test/shm/crash_hooks.hpp"
#include "test/support/test_support.hpp"

using namespace shmsession;
using namespace std::chrono_literals;
using shmsession::shm::detail::HookPoint;
using shmsession::test::check_without_hanging;
using shmsession::test::ChildProcess;
using shmsession::test::kill_child_at;
using shmsession::test::SegmentGuard;
using shmsession::test::Signal;
using shmsession::test::wait_until_in_futex;

namespace {

constexpr int kSessions = 40;

Store make(const SegmentGuard& g) {
  Store s = make_store(g, {.size_bytes = 8 << 20, .shards = 4, .change_log_capacity = 256});
  for (int i = 0; i < kSessions; ++i) {
    std::string id = "s" + std::to_string(i);
    s.create_session(id);
    s.commit(id, CommitBatch{}.put("a", "value-" + std::to_string(i)).put("b", std::string(100 + i, 'x')));
  }
  return s;
}

// Every session made by make() at version 1 with its values.
bool all_sessions_intact(Store& s) {
  for (int i = 0; i < kSessions; ++i) {
    auto snap = s.peek("s" + std::to_string(i));
    if (!snap || snap->version != 1 || snap->find("a")->value != "value-" + std::to_string(i) ||
        snap->find("b")->value != std::string(100 + i, 'x'))
      return false;
  }
  return true;
}

bool rebuild_segment_left(const std::string& name) {
  int fd = ::shm_open((name + "~rebuild").c_str(), O_RDONLY, 0);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_healthy_store_checks_clean) {
  SegmentGuard g("healthy");
  Store s = make(g);
  CheckReport r = check_store(s);
  BOOST_TEST(r.clean());
  BOOST_TEST(r.generation == 1u);
  BOOST_TEST(r.sessions == std::uint64_t{kSessions});
  BOOST_TEST(r.attributes == std::uint64_t{2 * kSessions});
  BOOST_TEST(r.allocator_ok);
  BOOST_TEST(r.index_ok);
  BOOST_TEST(r.unreferenced_bytes == 0u);
  RecoveryReport rec = recover_store(s);
  BOOST_TEST(rec.action == "none");
  BOOST_TEST(s.stats().generation == 1u);
}

BOOST_AUTO_TEST_CASE(a_process_killed_inside_the_allocator_triggers_a_rebuild) {
  SegmentGuard g("alloc");
  Store s = make(g);
  Store other = Store::attach(g.name());  // attached before: must move on by itself
  kill_child_at(g.name(), HookPoint::kInsideAllocator, [](Store& m) { m.create_session("never"); });
  CheckReport before = check_store(s);
  BOOST_TEST(!before.allocator_ok);
  BOOST_TEST(!before.clean());
  // The next allocation finds the allocator poisoned and rebuilds.
  BOOST_TEST(s.create_session("after"));
  BOOST_TEST(s.stats().generation == 2u);
  BOOST_TEST(all_sessions_intact(s));
  // The other attachment notices on its next access (a shard lock).
  BOOST_TEST(other.commit("s0", CommitBatch{}.put("a", "moved")) == 2u);
  BOOST_TEST(s.peek("s0")->find("a")->value == "moved");
  BOOST_TEST(other.version("after").has_value());
  CheckReport after = check_store(s);
  BOOST_TEST(after.clean());
  BOOST_TEST(after.generation == 2u);
  BOOST_TEST(after.sessions == std::uint64_t{kSessions + 1});
  BOOST_TEST(!rebuild_segment_left(g.name()));
  // A process attaching now gets the new generation by name.
  check_without_hanging([&] {
    Store fresh = Store::attach(g.name());
    return fresh.stats().generation == 2 && fresh.peek("s0")->find("a")->value == "moved" ? 0 : 1;
  });
}

// Processes already asleep waiting for segment memory when the process
// inside the allocator is killed: each is woken, the first rebuilds, and
// both finish their work in the new generation.
BOOST_AUTO_TEST_CASE(processes_waiting_for_the_allocator_when_its_holder_dies_carry_on) {
  SegmentGuard g("allocwait");
  Store s = make(g);
  Signal parked;
  ChildProcess holder([&] {
    test::g_parked = &parked;
    test::g_target = HookPoint::kInsideAllocator;
    shm::detail::set_test_hook(test::park_here);
    Store mine = Store::attach(g.name());
    mine.create_session("never");
    return 1;  // never reached: the hook parks
  });
  BOOST_REQUIRE_MESSAGE(parked.wait(60s), "the child never reached the allocator");
  std::vector<std::unique_ptr<ChildProcess>> waiters;
  for (int i = 0; i < 2; ++i) {
    waiters.push_back(std::make_unique<ChildProcess>([&, i] {
      Store mine = Store::attach(g.name());
      const std::string id = "waiter" + std::to_string(i);
      if (!mine.create_session(id)) return 1;
      return mine.commit(id, CommitBatch{}.put("a", id)) == 1 ? 0 : 2;
    }));
    BOOST_REQUIRE_MESSAGE(wait_until_in_futex(waiters.back()->pid(), 60s), "waiter " << i << " never went to sleep");
  }
  holder.kill(SIGKILL);
  BOOST_TEST(holder.wait() == 128 + SIGKILL);
  for (auto& w : waiters) {
    const int code = w->wait_for(60s);
    BOOST_TEST(code != -1, "a process asleep waiting for the allocator was never woken");
    BOOST_TEST(code == 0);
  }
  BOOST_TEST(check_store(s).clean());
  BOOST_TEST(s.stats().generation == 2u);  // one rebuild, however many noticed
  BOOST_TEST(all_sessions_intact(s));
  for (int i = 0; i < 2; ++i) {
    const std::string id = "waiter" + std::to_string(i);
    auto snap = s.peek(id);
    BOOST_TEST((snap && snap->find("a") && snap->find("a")->value == id));
  }
  BOOST_TEST(!s.peek("never"));
}

BOOST_AUTO_TEST_CASE(the_change_log_and_identity_survive_a_rebuild) {
  SegmentGuard g("log");
  Store s = make(g);
  const StoreInfo info = s.info();
  const std::uint64_t next = ChangeFeed(s).next_seq();
  const std::uint64_t commits = s.stats().commits;  // each shard counts its own: the rebuild adds them up
  BOOST_TEST(commits == std::uint64_t{kSessions});
  RecoveryReport rec = recover_store(s, true);
  BOOST_TEST(rec.action == "rebuilt");
  BOOST_TEST(rec.reason == "requested");
  BOOST_TEST(s.stats().commits == commits);
  BOOST_TEST(rec.from_generation == 1u);
  BOOST_TEST(rec.to_generation == 2u);
  BOOST_TEST(rec.sessions_copied == std::uint64_t{kSessions});
  BOOST_TEST(rec.sessions_dropped == 0u);
  BOOST_TEST(s.info().store_id == info.store_id);
  BOOST_TEST(ChangeFeed(s).next_seq() == next);
  ChangeBatch log = ChangeFeed(s).read(1, 1000);
  BOOST_TEST(!log.fell_behind);
  BOOST_TEST(log.entries.size() == next - 1);
  s.commit("s1", CommitBatch{}.put("a", "x"));
  BOOST_TEST(ChangeFeed(s).read(next, 10).entries.size() == 1u);
  BOOST_TEST(s.stats().commits == commits + 1);
}

BOOST_AUTO_TEST_CASE(a_rebuild_revokes_locks_and_fences_their_holders) {
  SegmentGuard g("locks");
  Store s = make(g);
  LockToken token = s.acquire("s3", 1s);
  recover_store(s, true);
  BOOST_CHECK_THROW(s.commit("s3", token, CommitBatch{}.put("a", "stale")), Error);
  LockToken again = s.acquire("s3", 1s);
  BOOST_TEST(again.value > token.value);
  BOOST_TEST(s.commit("s3", again, CommitBatch{}.put("a", "fresh")) == 2u);
}

// Attach takes no lock: a process killed in the middle of it leaves
// nothing that another attach waits for, and nothing to rebuild.
BOOST_AUTO_TEST_CASE(a_process_killed_inside_attach_keeps_nobody_from_attaching) {
  SegmentGuard g("index");
  Store s = make(g);
  kill_child_at(g.name(), HookPoint::kInsideIndex, [](Store&) {});
  BOOST_TEST(check_store(s).index_ok);
  BOOST_TEST(check_store(s).clean());
  check_without_hanging([&] {
    Store fresh = Store::attach(g.name());
    return fresh.stats().generation == 1 && all_sessions_intact(fresh) && check_store(fresh).clean() ? 0 : 1;
  });
}

// Attachers killed one after the other, some inside attach, some in the
// middle of a rebuild they started: with Boost's index lock in attach, the
// first kill left it owner-dead, the next attacher's try-lock of the now
// unrecoverable lock left it held by that attacher for good (glibc's
// trylock), and every attach after it failed ("stayed locked").
BOOST_AUTO_TEST_CASE(attachers_killed_inside_attach_and_inside_rebuilds_keep_nobody_from_attaching) {
  SegmentGuard g("attachers");
  Store s = make(g);
  kill_child_at(g.name(), HookPoint::kInsideIndex, [](Store&) {});
  for (int i = 0; i < 2; ++i)
    kill_child_at(g.name(), HookPoint::kRebuildBeforeRename, [](Store& m) { recover_store(m, true); });
  kill_child_at(g.name(), HookPoint::kInsideIndex, [](Store&) {});
  check_without_hanging([&] {
    Store fresh = Store::attach(g.name());
    return all_sessions_intact(fresh) && check_store(fresh).clean() ? 0 : 1;
  });
  BOOST_TEST(all_sessions_intact(s));
}

// Attachers killed at whatever moment of attach (and of the reads after
// it) they happen to be in: every attach after each kill succeeds at once.
// The slowest of those attaches is reported; attach has no wait in it.
BOOST_AUTO_TEST_CASE(attachers_killed_at_random_moments_keep_nobody_from_attaching) {
  SegmentGuard g("attach_kills");
  Store s = make(g);
  std::chrono::nanoseconds slowest{0};
  for (int round = 0; round < 40; ++round) {
    Signal looping;
    ChildProcess attacher([&] {
      looping.notify();
      for (;;) {
        Store mine = Store::attach(g.name());
        mine.version("s0");
      }
      return 0;
    });
    BOOST_REQUIRE(looping.wait(60s));
    // A few hundred microseconds into its loop of attaches, varying.
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(50 * (round % 20));
    while (std::chrono::steady_clock::now() < until) {
    }
    attacher.kill(SIGKILL);
    BOOST_TEST(attacher.wait() == 128 + SIGKILL);
    const auto start = std::chrono::steady_clock::now();
    Store fresh = Store::attach(g.name());
    slowest = std::max(slowest, std::chrono::steady_clock::now() - start);
    BOOST_TEST(fresh.version("s0").has_value());
  }
  BOOST_TEST(check_store(s).clean());
  BOOST_TEST(all_sessions_intact(s));
  BOOST_TEST_MESSAGE("slowest attach after a killed attacher: "
                     << std::chrono::duration_cast<std::chrono::microseconds>(slowest).count() << " us");
}

BOOST_AUTO_TEST_CASE(a_rebuilder_killed_before_the_rename_leaves_the_store_in_place) {
  SegmentGuard g("before_rename");
  Store s = make(g);
  kill_child_at(g.name(), HookPoint::kRebuildBeforeRename, [](Store& m) { recover_store(m, true); });
  // Every shard lock is owner-dead; the first access repairs and stays.
  BOOST_TEST(s.commit("s2", CommitBatch{}.put("a", "still-here")) == 2u);
  BOOST_TEST(s.stats().generation == 1u);
  BOOST_TEST(check_store(s).clean());
  RecoveryReport rec = recover_store(s, true);  // the next rebuild clears what the dead one left
  BOOST_TEST(rec.action == "rebuilt");
  BOOST_TEST(!rebuild_segment_left(g.name()));
  BOOST_TEST(s.peek("s2")->find("a")->value == "still-here");
}

BOOST_AUTO_TEST_CASE(a_rebuilder_killed_after_the_rename_moves_everyone_on) {
  SegmentGuard g("after_rename");
  Store s = make(g);
  kill_child_at(g.name(), HookPoint::kRebuildAfterRename, [](Store& m) { recover_store(m, true); });
  // The first locker repairs, finds the name holding generation 2 and moves.
  BOOST_TEST(s.commit("s2", CommitBatch{}.put("a", "on-the-new-one")) == 2u);
  BOOST_TEST(s.stats().generation == 2u);
  check_without_hanging([&] {
    Store fresh = Store::attach(g.name());
    return fresh.stats().generation == 2 && fresh.peek("s2")->find("a")->value == "on-the-new-one" &&
                   fresh.peek("s0")->version == 1
               ? 0
               : 1;
  });
}
