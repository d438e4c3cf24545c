// The change log: every creation, commit, removal and expiry, in order, and
// an honest "fell behind" when the ring overflows.
#include <boost/test/unit_test.hpp>

#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/interprocess/managed_shared_memory.hpp>

#include "shm/change_feed.hpp"
#include "shm/detail/change_ring.hpp"
#include "shm/detail/segment_file.hpp"
#include "shm/detail/segment_format.hpp"
#include "shm/detail/test_hooks.hpp"
#include "shm/store.hpp"
#include "test/support/test_support.hpp"

using namespace shmsession;
using shmsession::test::ChildProcess;
using shmsession::test::CpuAffinityKept;
using shmsession::test::make_store;
using shmsession::test::run_on_cpu;
using shmsession::test::SegmentGuard;

namespace {
Store make(const SegmentGuard& g, std::uint32_t capacity) {
  return make_store(g, {.size_bytes = 16 << 20, .shards = 4, .change_log_capacity = capacity});
}
}  // namespace

BOOST_AUTO_TEST_CASE(entries_follow_the_changes_in_order) {
  SegmentGuard g("log");
  Store s = make(g, 64);
  std::uint64_t start = s.stats().next_change_seq;
  s.create_session("a");
  s.commit("a", CommitBatch{}.put("k", "1"));
  s.commit("a", CommitBatch{});  // no change: no entry
  s.commit("a", CommitBatch{}.put("k", "2"));
  s.remove_session("a");
  ChangeBatch b = ChangeFeed(s).read(start, 100);
  BOOST_TEST(!b.fell_behind);
  BOOST_REQUIRE(b.entries.size() == 4u);
  BOOST_TEST((b.entries[0].kind == ChangeKind::Created));
  BOOST_TEST(b.entries[0].version == 0u);
  BOOST_TEST((b.entries[1].kind == ChangeKind::Committed));
  BOOST_TEST(b.entries[1].version == 1u);
  BOOST_TEST(b.entries[2].version == 2u);
  BOOST_TEST((b.entries[3].kind == ChangeKind::Removed));
  for (std::size_t i = 0; i < b.entries.size(); ++i) {
    BOOST_TEST(b.entries[i].seq == start + i);
    BOOST_TEST(b.entries[i].session_id == "a");
  }
  BOOST_TEST(b.next_seq == start + 4);
  // Reading from the end gives nothing, and a bounded read stops at max.
  BOOST_TEST(ChangeFeed(s).read(b.next_seq, 100).entries.empty());
  ChangeBatch two = ChangeFeed(s).read(start, 2);
  BOOST_TEST(two.entries.size() == 2u);
  BOOST_TEST(two.next_seq == start + 2);
}

// A view holds the Store's attachment, not the Store object: moving the
// Store (a Store is returned and kept by value) leaves the view working.
BOOST_AUTO_TEST_CASE(a_feed_follows_its_store_when_the_store_moves) {
  SegmentGuard g("log_moved");
  Store first = make(g, 64);
  const ChangeFeed feed(first);
  const std::uint64_t start = feed.next_seq();
  Store moved = std::move(first);
  moved.create_session("a");
  BOOST_TEST(feed.next_seq() == start + 1);
  BOOST_TEST(feed.retired_count() == 0u);
  moved.remove_session("a");
  BOOST_TEST(feed.retired_count() == 1u);
  ChangeBatch b = feed.read(start, 10);
  BOOST_REQUIRE(b.entries.size() == 2u);
  BOOST_TEST((b.entries[1].kind == ChangeKind::Removed));
}

// Every change of another process reaches the follower once, and each
// session's in the order it was made: what the log promises. The writer
// moves between CPUs every few sessions, as the scheduler moves a process
// under load, so its changes fill several lanes; the log may then list a
// later session's changes before an earlier one's (they were in another
// lane), so the test does not ask for the writer's order across sessions.
// (Before, it did, and failed when the writer migrated once in CI's
// ASan pass: "p1 != p0".)
BOOST_AUTO_TEST_CASE(a_follower_in_another_process_sees_the_changes) {
  SegmentGuard g("logproc");
  Store s = make(g, 4096);
  std::uint64_t start = s.stats().next_change_seq;
  ChildProcess writer([&] {
    Store mine = Store::attach(g.name());
    const bool two_cpus = run_on_cpu(1);
    for (int i = 0; i < 100; ++i) {
      if (two_cpus && !run_on_cpu(i / 3 % 2)) return 2;
      std::string id = "p" + std::to_string(i);
      mine.create_session(id);
      mine.commit(id, CommitBatch{}.put("i", std::to_string(i)));
    }
    return 0;
  });
  BOOST_REQUIRE(writer.wait() == 0);
  ChangeBatch b = ChangeFeed(s).read(start, 1000);
  BOOST_TEST(!b.fell_behind);
  BOOST_REQUIRE(b.entries.size() == 200u);
  std::map<std::string, std::vector<ChangeKind>> by_session;
  for (const ChangeEntry& e : b.entries) by_session[e.session_id].push_back(e.kind);
  BOOST_TEST(by_session.size() == 100u);
  const std::vector<ChangeKind> made{ChangeKind::Created, ChangeKind::Committed};
  for (int i = 0; i < 100; ++i) {
    const std::string id = "p" + std::to_string(i);
    BOOST_TEST((by_session[id] == made), id << ": not created then committed, once each");
  }
}

BOOST_AUTO_TEST_CASE(overflow_tells_the_follower_it_fell_behind) {
  SegmentGuard g("overflow");
  Store s = make(g, 16);
  std::uint64_t start = s.stats().next_change_seq;
  s.create_session("x");
  for (int i = 0; i < 40; ++i) s.commit("x", CommitBatch{}.put("n", std::to_string(i)));
  ChangeBatch b = ChangeFeed(s).read(start, 100);
  BOOST_TEST(b.fell_behind);
  BOOST_TEST(b.entries.empty());
  BOOST_TEST(b.next_seq == s.stats().next_change_seq);
  // The newest `capacity` entries are still there.
  ChangeBatch recent = ChangeFeed(s).read(b.next_seq - 16, 100);
  BOOST_TEST(!recent.fell_behind);
  BOOST_REQUIRE(recent.entries.size() == 16u);
  BOOST_TEST(recent.entries.back().version == 40u);
}

// A follower asleep in ChangeFeed::wait is woken by a commit in another
// process, long before its timeout; with nothing logged it times out.
BOOST_AUTO_TEST_CASE(a_commit_wakes_a_follower_asleep_on_the_log) {
  SegmentGuard g("log_wait");
  Store s = make(g, 64);
  s.create_session("a");
  const std::uint64_t head = ChangeFeed(s).next_seq();
  BOOST_TEST(!ChangeFeed(s).wait(head, std::chrono::milliseconds(50)));  // nothing new: a timeout
  BOOST_TEST(ChangeFeed(s).wait(head - 1, std::chrono::seconds(30)));    // already there: at once

  ChildProcess follower([&] {
    Store mine = Store::attach(g.name());
    return ChangeFeed(mine).wait(head, std::chrono::seconds(300)) ? 0 : 1;
  });
  // Asleep in the log's futex before the commit: the wake is what is tested.
  BOOST_REQUIRE(test::wait_until_in_futex(follower.pid(), std::chrono::seconds(60)));
  s.commit("a", CommitBatch{}.put("k", "1"));
  // Woken by the commit: a missed wake would keep it asleep for its whole
  // 300 s timeout, far past this generous bound.
  const int code = follower.wait_for(std::chrono::seconds(60));
  BOOST_TEST(code != -1, "the follower was not woken by the commit");
  BOOST_TEST(code == 0);
}

namespace {

// The futex word followers sleep on (StoreRoot::change_signal), and what a
// hook inside the commit's shard critical section, after its change is
// logged, read of it.
const std::atomic<std::uint32_t>* g_change_signal = nullptr;
std::int64_t g_signal_in_the_lock = -1;
void read_the_signal(shm::detail::HookPoint point) {
  if (point != shm::detail::HookPoint::kCommitLogged || g_change_signal == nullptr) return;
  g_signal_in_the_lock = g_change_signal->load();
}

}  // namespace

// A commit wakes the followers asleep on the log once its shard lock is
// given back, not while it holds it: a replication agent woken inside the
// lock blocks on it at once to read the change, and needs a second
// wake-up when the lock is given back. With a follower asleep, the futex
// word it sleeps on has not moved at the point after the change is
// logged, inside the lock; it has once the commit returns, and the
// follower wakes.
BOOST_AUTO_TEST_CASE(a_commit_wakes_followers_once_its_shard_lock_is_given_back) {
  using namespace shmsession::shm::detail;
  if (!kTestHooksCompiled) return;
  SegmentGuard g("log_wake_after_lock");
  Store s = make(g, 64);
  s.create_session("a");
  boost::interprocess::managed_shared_memory seg(boost::interprocess::open_only, g.name().c_str());
  const auto* header = seg.find<SegmentHeader>(kHeaderObjectName).first;
  BOOST_REQUIRE(header != nullptr);
  const auto* root = static_cast<const StoreRoot*>(seg.get_address_from_handle(header->root_handle));
  const std::uint64_t head = ChangeFeed(s).next_seq();
  std::atomic<pid_t> tid{0};
  std::atomic<bool> woken{false};
  std::thread follower([&] {
    tid = ::gettid();
    woken = ChangeFeed(s).wait(head, std::chrono::seconds(300));
  });
  while (tid.load() == 0) std::this_thread::yield();
  BOOST_REQUIRE(test::wait_until_thread_in_futex(tid.load(), std::chrono::seconds(60)));
  const std::uint32_t before = root->change_signal.load();
  g_change_signal = &root->change_signal;
  set_test_hook(read_the_signal);
  s.commit("a", CommitBatch{}.put("k", "1"));
  set_test_hook(nullptr);
  g_change_signal = nullptr;
  follower.join();  // a wake missed altogether would keep it for its 300 s
  BOOST_TEST(woken.load());
  BOOST_TEST(g_signal_in_the_lock == static_cast<std::int64_t>(before),
             "the followers were woken inside the commit's shard lock");
  BOOST_TEST(root->change_signal.load() != before);
}

// The ring's seqlock between a writer and a reader racing on the same
// slots: every entry read whole is the one written (id and version agree
// with its sequence). Its real point is the ThreadSanitizer pass, which
// sees the two threads: a slot's fields read as plain memory while a
// writer fills them would be reported as a data race (the cross-process
// readers have the same race, which no sanitizer can see).
BOOST_AUTO_TEST_CASE(a_reader_racing_a_writer_reads_whole_entries) {
  using namespace shmsession::shm::detail;
  constexpr std::uint32_t kCapacity = 4;
  constexpr std::uint64_t kEntries = 20000;
  auto ring = std::make_unique<ChangeSlot[]>(kCapacity);
  for (std::uint32_t i = 0; i < kCapacity; ++i) ring[i].stamp.store(0);
  std::atomic<std::uint64_t> written{0};
  std::thread writer([&] {
    for (std::uint64_t seq = 1; seq <= kEntries; ++seq) {
      write_change_slot(ring.get(), kCapacity, seq, ChangeKind::Committed, seq * 7, "session-" + std::to_string(seq));
      written.store(seq, std::memory_order_release);
    }
  });
  std::uint64_t whole = 0, torn = 0;
  ChangeEntry entry;
  for (std::uint64_t seq = 1; seq <= kEntries;) {
    switch (read_change_slot(ring.get(), kCapacity, seq, entry)) {
      case SlotRead::kOk:
        ++whole;
        if (entry.version != seq * 7 || entry.session_id != "session-" + std::to_string(seq)) ++torn;
        ++seq;
        break;
      case SlotRead::kOverwritten:
        ++seq;
        break;  // the writer lapped the reader: skip ahead
      case SlotRead::kNotYetWritten:
        std::this_thread::yield();
        break;
    }
  }
  writer.join();
  BOOST_TEST(torn == 0u);
  BOOST_TEST(whole > 0u);
}

// Consecutive entries, which processes committing at the same time write
// at once, share no cache line (side by side, 152-byte slots did), an
// entry of a short id is written in one line, and every slot of the ring
// is used exactly once per lap. Read off a store's own ring.
BOOST_AUTO_TEST_CASE(consecutive_entries_share_no_cache_line) {
  using namespace shmsession::shm::detail;
  constexpr std::uintptr_t kLine = 64;
  for (std::uint32_t capacity : {16u, 17u, 30u, 2310u, 65536u}) {
    SegmentGuard g("lines" + std::to_string(capacity));
    make_store(g, {.size_bytes = 32 << 20, .shards = 4, .change_log_capacity = capacity});
    boost::interprocess::managed_shared_memory seg(boost::interprocess::open_only, g.name().c_str());
    const auto* header = seg.find<SegmentHeader>(kHeaderObjectName).first;
    BOOST_REQUIRE(header != nullptr);
    const auto* root = static_cast<const StoreRoot*>(seg.get_address_from_handle(header->root_handle));
    const ChangeSlot* ring = root->ring.get();
    std::vector<bool> used(capacity, false);
    std::uint64_t reused = 0, sharing = 0, first_line_only = 0;
    for (std::uint64_t seq = 1; seq <= capacity; ++seq) {
      const std::uint32_t slot = change_slot_index(seq, capacity);
      if (used[slot]) ++reused;
      used[slot] = true;
      const auto here = reinterpret_cast<std::uintptr_t>(&ring[slot]);
      const auto next = reinterpret_cast<std::uintptr_t>(&ring[change_slot_index(seq + 1, capacity)]);
      const std::uintptr_t lo = std::min(here, next), hi = std::max(here, next);
      // The last line of the lower slot against the first of the upper one.
      if ((lo + sizeof(ChangeSlot) - 1) / kLine >= hi / kLine) ++sharing;
      // A 46-byte id: the stamp, version, kind, size and id in one line.
      if (here / kLine == (here + offsetof(ChangeSlot, id) + 45) / kLine) ++first_line_only;
    }
    BOOST_TEST(reused == 0u, "capacity " << capacity << ": a slot used twice in one lap");
    BOOST_TEST(sharing == 0u, "capacity " << capacity << ": " << sharing << " consecutive entries share a line");
    BOOST_TEST(first_line_only == capacity, "capacity " << capacity << ": entries spanning two lines");
  }
}

// ---- change lanes ---------------------------------------------------------

namespace {

// The root of a store, read through a mapping of its own segment.
struct RootView {
  boost::interprocess::managed_shared_memory segment;
  const shm::detail::StoreRoot* root = nullptr;
  explicit RootView(const SegmentGuard& g) : segment(boost::interprocess::open_only, g.name().c_str()) {
    const auto* header = segment.find<shm::detail::SegmentHeader>(shm::detail::kHeaderObjectName).first;
    BOOST_REQUIRE(header != nullptr);
    root = static_cast<const shm::detail::StoreRoot*>(segment.get_address_from_handle(header->root_handle));
  }
};

}  // namespace

// A change writes the lane of the CPU it runs on and no store-wide word:
// two processes committing at once on two CPUs share no change-log line.
// The log's sequence moves when a follower sequences the lanes. (Before
// the lanes, every change took its sequence from one store-wide counter,
// a cache line each commit of every process wrote.)
BOOST_AUTO_TEST_CASE(changes_write_the_lane_of_their_cpu_and_no_store_wide_word) {
  CpuAffinityKept restore;
  if (!run_on_cpu(1)) {
    BOOST_TEST_MESSAGE("one CPU: nothing to compare");
    return;
  }
  SegmentGuard g("lanes");
  Store s = make_store(g, {.size_bytes = 16 << 20, .shards = 4, .change_log_capacity = 64, .change_lanes = 2});
  const std::uint64_t start = ChangeFeed(s).next_seq();
  RootView view(g);
  BOOST_REQUIRE(view.root->lane_count == 2u);
  BOOST_REQUIRE(run_on_cpu(0));
  s.create_session("a");
  for (int i = 0; i < 4; ++i) s.commit("a", CommitBatch{}.put("k", "zero-" + std::to_string(i)));
  BOOST_REQUIRE(run_on_cpu(1));
  s.create_session("b");
  for (int i = 0; i < 2; ++i) s.commit("b", CommitBatch{}.put("k", "one-" + std::to_string(i)));
  BOOST_TEST(view.root->lanes[0].head.load() == 5u);
  BOOST_TEST(view.root->lanes[1].head.load() == 3u);
  BOOST_TEST(view.root->next_change_seq.load() == start, "a change wrote the store-wide sequence");
  ChangeBatch b = ChangeFeed(s).read(start, 100);
  BOOST_TEST(!b.fell_behind);
  BOOST_TEST(b.entries.size() == 8u);
  BOOST_TEST(b.next_seq == start + 8);
  BOOST_TEST(view.root->next_change_seq.load() == start + 8);
  BOOST_TEST(view.root->lanes[0].cursor.load() == 5u);
  BOOST_TEST(view.root->lanes[1].cursor.load() == 3u);
}

// One session changed on two CPUs has its entries in two lanes; the log
// still lists them in the order they were made (the sequencer merges the
// lanes by each shard's change numbers). Sequencing lane by lane listed
// the later commits of one CPU before the earlier ones of the other.
BOOST_AUTO_TEST_CASE(one_sessions_entries_keep_their_order_across_lanes) {
  CpuAffinityKept restore;
  if (!run_on_cpu(1)) {
    BOOST_TEST_MESSAGE("one CPU: one lane");
    return;
  }
  SegmentGuard g("lane-order");
  Store s = make_store(g, {.size_bytes = 16 << 20, .shards = 4, .change_log_capacity = 256, .change_lanes = 2});
  const std::uint64_t start = ChangeFeed(s).next_seq();
  const std::vector<std::string> ids{"a", "b", "c"};
  for (const std::string& id : ids) s.create_session(id);
  for (int i = 0; i < 30; ++i) {
    BOOST_REQUIRE(run_on_cpu(i % 5 < 2 ? 0 : 1));  // each session's commits on both CPUs, unevenly
    const std::string& id = ids[static_cast<std::size_t>(i) % ids.size()];
    s.commit(id, CommitBatch{}.put("k", std::to_string(i)));
  }
  BOOST_REQUIRE(run_on_cpu(0));
  s.remove_session("b");
  s.create_session("b");  // another incarnation: its Created after the Removed
  ChangeBatch log = ChangeFeed(s).read(start, 1000);
  BOOST_TEST(!log.fell_behind);
  BOOST_REQUIRE(log.entries.size() == 3u + 30u + 2u);
  std::map<std::string, std::vector<const ChangeEntry*>> by_session;
  for (const ChangeEntry& e : log.entries) by_session[e.session_id].push_back(&e);
  for (const std::string& id : ids) {
    const std::vector<const ChangeEntry*>& list = by_session[id];
    BOOST_TEST((list.front()->kind == ChangeKind::Created), id);
    for (std::size_t i = 1; i < 11; ++i) BOOST_TEST(list[i]->version == i, id << " entry " << i);
  }
  const std::vector<const ChangeEntry*>& b = by_session["b"];
  BOOST_REQUIRE(b.size() == 13u);
  BOOST_TEST((b[11]->kind == ChangeKind::Removed));
  BOOST_TEST((b[12]->kind == ChangeKind::Created));
}

// A lane that fills before anyone sequences it loses its oldest entries:
// a follower that was reading is told it fell behind, and one that starts
// afterwards follows the next changes. (Writers sequence between their
// critical sections; one sweep of a single shard's 40 sessions fills the
// lane of 32 inside one.)
BOOST_AUTO_TEST_CASE(a_lane_that_overflows_tells_followers_they_fell_behind) {
  CpuAffinityKept restore;
  BOOST_REQUIRE(run_on_cpu(0));  // every change in lane 0
  SegmentGuard g("lane-full");
  Store s = make_store(g, {.size_bytes = 16 << 20, .shards = 1, .change_log_capacity = 64, .change_lanes = 2});
  for (int i = 0; i < 40; ++i) s.create_session("s" + std::to_string(i));
  const std::uint64_t reading = ChangeFeed(s).next_seq();
  BOOST_REQUIRE(s.remove_all_sessions() == 40u);
  ChangeBatch behind = ChangeFeed(s).read(reading, 100);
  BOOST_TEST(behind.fell_behind);
  BOOST_TEST(behind.entries.empty());
  BOOST_TEST(ChangeFeed(s).next_seq() - reading < 64u, "the log wrapped: this is not the lane's loss");
  const std::uint64_t fresh = ChangeFeed(s).next_seq();
  s.create_session("a");
  s.commit("a", CommitBatch{}.put("k", "after"));
  ChangeBatch after = ChangeFeed(s).read(fresh, 100);
  BOOST_TEST(!after.fell_behind);
  BOOST_REQUIRE(after.entries.size() == 2u);
  BOOST_TEST(after.entries[1].version == 1u);
}

// The log, not a lane, bounds what a follower that is away may miss: with
// nobody sequencing (an agent restarting, a link cut), every change lands
// in the lane of one CPU, which holds a share of the log only (here 512
// of 1024). Writers move their lanes into the log when a lane fills half
// way, so a follower that comes back after 1000 changes reads them all.
// Before that, the lane overflowed and the follower fell behind (a full
// resync where the log should have covered the gap).
BOOST_AUTO_TEST_CASE(the_log_holds_its_capacity_while_no_follower_reads) {
  CpuAffinityKept restore;
  BOOST_REQUIRE(run_on_cpu(0));  // every change in lane 0
  SegmentGuard g("lane-share");
  Store s = make_store(g, {.size_bytes = 16 << 20, .shards = 4, .change_log_capacity = 1024, .change_lanes = 2});
  RootView view(g);
  BOOST_REQUIRE(view.root->lane_capacity == 512u);
  s.create_session("a");
  const std::uint64_t start = ChangeFeed(s).next_seq();
  for (int i = 1; i <= 1000; ++i) s.commit("a", CommitBatch{}.put("k", std::to_string(i)));
  BOOST_TEST(view.root->lanes[0].head.load() - view.root->lanes[0].cursor.load() < 512u,
             "the writer left its lane to overflow");
  ChangeBatch log = ChangeFeed(s).read(start, 2000);
  BOOST_TEST(!log.fell_behind);
  BOOST_REQUIRE(log.entries.size() == 1000u);
  for (std::size_t i = 0; i < log.entries.size(); ++i) BOOST_TEST(log.entries[i].version == i + 1);
  // A sweep removes a shard's sessions in one critical section: the
  // writer moves the lane on between shards, so 600 removals fit too.
  for (int i = 0; i < 600; ++i) s.create_session("s" + std::to_string(i));
  const std::uint64_t before_sweep = ChangeFeed(s).next_seq();
  BOOST_TEST(s.remove_all_sessions() == 601u);
  ChangeBatch swept = ChangeFeed(s).read(before_sweep, 2000);
  BOOST_TEST(!swept.fell_behind);
  BOOST_TEST(swept.entries.size() == 601u);
}

namespace {

// A hook that, the first time the sequencer has loaded lane 0's head and
// not lane 1's, commits to session "a" once on CPU 0 (lane 0, past the
// head the sequencer loaded) and once on CPU 1 (lane 1, before the head
// it is about to load).
Store* g_interloper_store = nullptr;
bool g_interloper_done = false;
void commit_between_the_head_loads(shm::detail::HookPoint point) {
  if (point != shm::detail::HookPoint::kSequencerHeadLoaded || g_interloper_done || g_interloper_store == nullptr)
    return;
  g_interloper_done = true;
  if (!run_on_cpu(0)) return;
  g_interloper_store->commit("a", CommitBatch{}.put("k", "on cpu 0"));
  if (!run_on_cpu(1)) return;
  g_interloper_store->commit("a", CommitBatch{}.put("k", "on cpu 1"));
}

}  // namespace

// The sequencer loads the lanes' heads one after another. Between two
// loads, a session may change on the CPU of the lane already loaded, then
// on the CPU of the next one: the second change is in the sequencer's
// view, the first (its predecessor) is not. The sequencer loads the heads
// again before it calls such an entry an orphan, so the follower reads
// both changes in order. It logged a lost-changes entry instead, and the
// follower (a replication agent) fell behind: a full resync for nothing.
BOOST_AUTO_TEST_CASE(a_change_made_between_two_head_loads_is_not_called_lost) {
  if (!shm::detail::kTestHooksCompiled) return;
  CpuAffinityKept restore;
  if (!run_on_cpu(1)) {
    BOOST_TEST_MESSAGE("one CPU: one lane");
    return;
  }
  SegmentGuard g("head-loads");
  Store s = make_store(g, {.size_bytes = 16 << 20, .shards = 4, .change_log_capacity = 1024, .change_lanes = 2});
  s.create_session("a");
  const std::uint64_t start = ChangeFeed(s).next_seq();
  BOOST_REQUIRE(run_on_cpu(0));
  s.commit("a", CommitBatch{}.put("k", "first"));  // lane 0 holds an entry: the sequencer has work
  g_interloper_store = &s;
  g_interloper_done = false;
  shm::detail::set_test_hook(commit_between_the_head_loads);
  ChangeBatch log = ChangeFeed(s).read(start, 100);
  shm::detail::set_test_hook(nullptr);
  g_interloper_store = nullptr;
  BOOST_REQUIRE(g_interloper_done);
  BOOST_TEST(!log.fell_behind);
  log = ChangeFeed(s).read(start, 100);  // whatever the first read left in the lanes
  BOOST_TEST(!log.fell_behind);
  BOOST_REQUIRE(log.entries.size() == 3u);
  for (std::size_t i = 0; i < 3; ++i) BOOST_TEST(log.entries[i].version == i + 1);
}

namespace {

// Pages of this process's address space in memory (/proc/self/statm's
// second field): shared-memory pages count once this process maps them.
std::uint64_t resident_pages() {
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  BOOST_REQUIRE(statm);
  return resident;
}

// Bytes of memory the segment's file holds (tmpfs allocates a page when it
// is first written, or when posix_fallocate reserves it).
std::uint64_t file_bytes(const SegmentGuard& g) {
  struct stat st {};
  BOOST_REQUIRE(::stat(shm::detail::segment_path(g.name()).c_str(), &st) == 0);
  return static_cast<std::uint64_t>(st.st_blocks) * 512;
}

}  // namespace

// A change log of 2^19 entries is 96 MiB of slots, and its lanes up to 24
// MiB more. Creating the store wrote every slot, so its creator mapped all
// of them and a store created without reserving its memory took them from
// memory at once: "pages cost memory only when touched" did not hold for
// the log, and a process that created a store with a deep log (the
// replication benchmark's 2^22 entries: 790 MiB) carried it resident. Now
// the slots read as zeros without being written; the log's pages come as
// changes fill them, and a reserved store still holds all of its memory.
BOOST_AUTO_TEST_CASE(a_new_store_maps_no_page_of_its_change_log_until_changes_fill_it) {
  constexpr std::uint32_t kCapacity = 1u << 19;
  constexpr std::uint64_t kLogBytes = std::uint64_t{kCapacity} * sizeof(shm::detail::ChangeSlot);
  constexpr std::uint64_t kSize = std::uint64_t{256} << 20;
  const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  {
    SegmentGuard g("deep-log");
    const std::uint64_t before = resident_pages();
    Store s = make_store(g, {.size_bytes = kSize, .shards = 4, .change_log_capacity = kCapacity});
    const std::uint64_t after = resident_pages();
    const std::uint64_t mapped = (after - std::min(before, after)) * page;
    BOOST_TEST(mapped < kLogBytes / 16, "creating the store mapped " << mapped << " bytes");
    BOOST_TEST(file_bytes(g) >= kSize, "the reserved store lost part of its reservation");
    s.create_session("a");
    const std::uint64_t start = ChangeFeed(s).next_seq();
    for (int i = 1; i <= 3000; ++i) s.commit("a", CommitBatch{}.put("k", std::to_string(i)));
    ChangeBatch log = ChangeFeed(s).read(start, 5000);
    BOOST_TEST(!log.fell_behind);
    BOOST_REQUIRE(log.entries.size() == 3000u);
    for (std::size_t i = 0; i < log.entries.size(); ++i) {
      BOOST_TEST(log.entries[i].version == i + 1);
      BOOST_TEST(log.entries[i].session_id == "a");
    }
  }
  SegmentGuard g("deep-sparse-log");
  Store s = make_store(g, {.size_bytes = kSize, .reserve = false, .shards = 4, .change_log_capacity = kCapacity});
  const std::uint64_t held = file_bytes(g);
  BOOST_TEST(held < kLogBytes / 16, "a store created without reserving took " << held << " bytes");
  s.create_session("b");
  const std::uint64_t start = ChangeFeed(s).next_seq();
  for (int i = 1; i <= 3000; ++i) s.commit("b", CommitBatch{}.put("k", std::to_string(i)));
  BOOST_TEST(file_bytes(g) < held + kLogBytes / 16);
  ChangeBatch log = ChangeFeed(s).read(start, 5000);
  BOOST_TEST(!log.fell_behind);
  BOOST_TEST(log.entries.size() == 3000u);
}
