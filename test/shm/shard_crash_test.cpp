// A process SIGKILLed inside a shard critical section: the next process
// detects the dead owner, repairs the shard and carries on; the session is
// at the old or the new version, never torn, and the change log does not
// stall. Test hooks park the child at the exact point before it is killed.
#define BOOST_TEST_MODULE shard_crash
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <thread>
#include <unistd.h>

#include "shm/detail/test_hooks.hpp"
#include "shm/store.hpp"
#include "test/support/test_support.hpp"
#include "test/shm/crash_hooks.hpp"

using namespace shmsession;
using namespace std::chrono_literals;
using shmsession::shm::detail::HookPoint;
using shmsession::test::ChildProcess;
using shmsession::test::kill_child_at;
using shmsession::test::SegmentGuard;
using shmsession::test::Signal;
using shmsession::test::check_without_hanging;

namespace {

Store make(const SegmentGuard& g) {
  CreateOptions o;
  o.size_bytes = 16 << 20;
  o.shards = 1;  // every session shares the one shard the child dies in
  o.change_log_capacity = 256;
  return Store::create(g.name(), o);
}

}  // namespace

BOOST_AUTO_TEST_CASE(killed_before_publish_leaves_the_old_version) {
  SegmentGuard g("before");
  Store s = make(g);
  s.create_session("victim");
  s.commit("victim", CommitBatch{}.put("a", "old").put("b", "old"));
  std::uint64_t start = s.stats().next_change_seq;
  kill_child_at(g.name(), HookPoint::kCommitBeforePublish,
                [](Store& m) { m.commit("victim", CommitBatch{}.put("a", "new").put("b", "new")); });
  check_without_hanging([&] {
    Store mine = Store::attach(g.name());
    auto snap = mine.read("victim");
    if (!snap || snap->version != 1 || snap->find("a")->value != "old" || snap->find("b")->value != "old") return 1;
    if (mine.commit("victim", CommitBatch{}.put("a", "later")) != 2) return 2;
    return 0;
  });
  StoreStats st = s.stats();
  BOOST_TEST(st.lock_recoveries == 1u);
  BOOST_TEST(st.sessions == 1u);
  BOOST_TEST(st.attributes == 2u);
  // The slot the dead child took is finished, so followers are not stuck.
  ChangeBatch b = s.read_changes(start, 100);
  BOOST_TEST(!b.fell_behind);
  BOOST_REQUIRE(b.entries.size() == 2u);
  BOOST_TEST(b.entries[0].version == 1u);  // the dead commit, reported at the version that stands
  BOOST_TEST(b.entries[1].version == 2u);
  BOOST_TEST(b.next_seq == s.stats().next_change_seq);
}

BOOST_AUTO_TEST_CASE(killed_after_publish_leaves_the_new_version) {
  SegmentGuard g("after");
  Store s = make(g);
  s.create_session("victim");
  s.commit("victim", CommitBatch{}.put("a", "old"));
  std::uint64_t start = s.stats().next_change_seq;
  kill_child_at(g.name(), HookPoint::kCommitAfterPublish,
                [](Store& m) { m.commit("victim", CommitBatch{}.put("a", "new").put("c", "new")); });
  check_without_hanging([&] {
    Store mine = Store::attach(g.name());
    auto snap = mine.read("victim");
    if (!snap || snap->version != 2 || snap->find("a")->value != "new" || snap->find("c")->value != "new") return 1;
    return 0;
  });
  BOOST_TEST(s.stats().lock_recoveries == 1u);
  BOOST_TEST(s.stats().attributes == 2u);
  ChangeBatch b = s.read_changes(start, 100);
  BOOST_REQUIRE(b.entries.size() == 1u);
  BOOST_TEST(b.entries[0].version == 2u);
  BOOST_TEST(b.entries[0].session_id == "victim");
}

BOOST_AUTO_TEST_CASE(killed_while_growing_a_table_keeps_every_session) {
  SegmentGuard g("grow");
  Store s = make(g);
  kill_child_at(g.name(), HookPoint::kTableGrow, [](Store& m) {
    for (int i = 0; i < 1000; ++i) m.create_session("g" + std::to_string(i));
  });
  check_without_hanging([&] {
    Store mine = Store::attach(g.name());
    // The child parked in the first grow, after creating its 17th session.
    for (int i = 0; i < 17; ++i)
      if (!mine.read("g" + std::to_string(i))) return 1;
    if (mine.read("g17")) return 2;
    for (int i = 17; i < 500; ++i)
      if (!mine.create_session("g" + std::to_string(i))) return 3;
    for (int i = 0; i < 500; ++i)
      if (!mine.read("g" + std::to_string(i))) return 4;
    return 0;
  });
  BOOST_TEST(s.stats().sessions == 500u);
  BOOST_TEST(s.stats().lock_recoveries == 1u);
}

BOOST_AUTO_TEST_CASE(a_reader_killed_holding_the_lock_blocks_nobody) {
  SegmentGuard g("reader");
  Store s = make(g);
  s.create_session("big");
  s.commit("big", CommitBatch{}.put("blob", std::string(4 << 20, 'z')));
  // Kill readers at random moments of their copy; some die holding the lock.
  for (int round = 0; round < 20; ++round) {
    ChildProcess reader([&] {
      Store mine = Store::attach(g.name());
      for (;;) mine.read("big");
      return 0;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(5 + round));
    reader.kill(SIGKILL);
    reader.wait();
  }
  check_without_hanging([&] {
    Store mine = Store::attach(g.name());
    auto snap = mine.read("big");
    return snap && snap->find("blob")->value.size() == (4u << 20) ? 0 : 1;
  });
  BOOST_TEST_MESSAGE("lock recoveries: " << s.stats().lock_recoveries);
}
