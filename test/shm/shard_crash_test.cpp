// A process SIGKILLed inside a shard critical section: the next process
// detects the dead owner, repairs the shard and carries on; the session is
// at the old or the new version, never torn, and the change log does not
// stall. Test hooks park the child at the exact point before it is killed.
#include <boost/test/unit_test.hpp>

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "shm/change_feed.hpp"
#include "shm/detail/robust_mutex.hpp"
#include "shm/detail/session_table.hpp"
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
using shmsession::test::CpuAffinityKept;
using shmsession::test::kill_child_at;
using shmsession::test::run_on_cpu;
using shmsession::test::SegmentGuard;
using shmsession::test::Signal;
using shmsession::test::wait_until_in_futex;

namespace {

Store make(const SegmentGuard& g, std::uint32_t max_lock_queue = kDefaultMaxLockQueue) {
  // One shard: every session shares the one shard the child dies in.
  return make_store(
      g, {.size_bytes = 16 << 20, .shards = 1, .change_log_capacity = 256, .max_lock_queue = max_lock_queue});
}

// A child that waits (up to 120 s: longer than the parent waits for it) for
// the lock of `id`, commits under it (`by` = its name) and releases: exit
// code 0 once all that is done.
std::unique_ptr<ChildProcess> lock_waiter(const std::string& store, const std::string& id, const std::string& name) {
  return std::make_unique<ChildProcess>([store, id, name] {
    Store mine = Store::attach(store);
    LockToken token = mine.acquire(id, 120s);
    mine.commit(id, token, CommitBatch{}.put(name, "had it"));
    mine.release(id, token);
    return 0;
  });
}

// A child that holds the lock of `id` until the parent says go, then
// releases it and parks halfway through the hand-over (at `where`), to be
// killed there.
std::unique_ptr<ChildProcess> dying_releaser(const std::string& store, const std::string& id, Signal& holding,
                                             Signal& go, Signal& parked, HookPoint where = HookPoint::kLockHandOver) {
  return std::make_unique<ChildProcess>([&, store, id, where] {
    test::g_parked = &parked;
    test::g_target = where;
    shm::detail::set_test_hook(test::park_here);
    Store mine = Store::attach(store);
    LockToken token = mine.acquire(id, 1s);
    holding.notify();
    if (!go.wait(60s)) return 2;
    mine.release(id, token);
    return 1;  // never reached: the hook parks
  });
}

// The queue length of the store's only locked session once it reaches
// `length` (the waiters are separate processes), or as it is after 60 s (a
// bound to fail instead of hang).
std::size_t wait_until_queued(const Store& s, std::size_t length) {
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (s.locks().at(0).queue.size() < length && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  return s.locks().at(0).queue.size();
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
  ChangeBatch b = ChangeFeed(s).read(start, 100);
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
  ChangeBatch b = ChangeFeed(s).read(start, 100);
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

// A releaser killed halfway through handing its lock over (the lock free,
// the first waiter off the queue but not granted): the waiters' periodic
// look finishes the hand-over, in queue order.
BOOST_AUTO_TEST_CASE(a_hand_over_killed_halfway_still_reaches_every_waiter) {
  SegmentGuard g("handover");
  Store s = make(g);
  s.create_session("locked");
  Signal holding, go, parked;
  auto releaser = dying_releaser(g.name(), "locked", holding, go, parked);
  BOOST_REQUIRE(holding.wait(60s));
  std::vector<std::unique_ptr<ChildProcess>> waiters;
  for (const char* name : {"first", "second"}) {
    waiters.push_back(lock_waiter(g.name(), "locked", name));
    BOOST_REQUIRE_MESSAGE(wait_until_in_futex(waiters.back()->pid(), 60s), name << " never waited");
    // Queued, not just asleep: the lock shows it.
    BOOST_REQUIRE_EQUAL(wait_until_queued(s, waiters.size()), waiters.size());
  }
  go.notify();
  BOOST_REQUIRE_MESSAGE(parked.wait(60s), "the releaser never reached the hand-over");
  releaser->kill(SIGKILL);
  BOOST_TEST(releaser->wait() == 128 + SIGKILL);
  for (auto& w : waiters) {
    const int code = w->wait_for(60s);
    BOOST_TEST(code != -1, "a waiter was never granted the lock");
    BOOST_TEST(code == 0);
  }
  auto snap = s.peek("locked");
  BOOST_REQUIRE(snap);
  BOOST_TEST(snap->version == 2u);
  BOOST_TEST(s.locks().empty());
  BOOST_TEST(check_store(s).clean());
}

// A releaser killed inside the hand-over's dequeue (the queue's head moved
// past the first waiter; the queue's length and the waiter's `queued` flag
// not yet updated): the shard repair recounts the queue and puts the first
// waiter back in line, so both waiters are granted and the queue's length
// is right afterwards (a store that admits two waiters admits two again).
BOOST_AUTO_TEST_CASE(a_hand_over_killed_inside_its_dequeue_leaves_a_sound_queue) {
  SegmentGuard g("dequeue");
  Store s = make(g, 2);
  s.create_session("locked");
  Signal holding, go, parked;
  auto releaser = dying_releaser(g.name(), "locked", holding, go, parked, HookPoint::kLockQueueUnlink);
  BOOST_REQUIRE(holding.wait(60s));
  std::vector<std::unique_ptr<ChildProcess>> waiters;
  for (const char* name : {"first", "second"}) {
    waiters.push_back(lock_waiter(g.name(), "locked", name));
    BOOST_REQUIRE_MESSAGE(wait_until_in_futex(waiters.back()->pid(), 60s), name << " never waited");
    BOOST_REQUIRE_EQUAL(wait_until_queued(s, waiters.size()), waiters.size());
  }
  go.notify();
  BOOST_REQUIRE_MESSAGE(parked.wait(60s), "the releaser never reached the dequeue");
  releaser->kill(SIGKILL);
  BOOST_TEST(releaser->wait() == 128 + SIGKILL);
  for (auto& w : waiters) {
    const int code = w->wait_for(60s);
    BOOST_TEST(code != -1, "a waiter hung");
    BOOST_TEST(code == 0, "a waiter was never granted the lock (exit " << code << ")");
  }
  BOOST_TEST(s.peek("locked")->version == 2u);
  BOOST_TEST(s.locks().empty());
  // The queue counts two waiters again, not two plus what the dead
  // dequeue left behind.
  LockToken held = s.acquire("locked", 1s);
  waiters.clear();
  for (const char* name : {"third", "fourth"}) {
    waiters.push_back(lock_waiter(g.name(), "locked", name));
    BOOST_REQUIRE_EQUAL(wait_until_queued(s, waiters.size()), waiters.size());
  }
  s.release("locked", held);
  for (auto& w : waiters) BOOST_TEST(w->wait_for(60s) == 0);
  BOOST_TEST(check_store(s).clean());
}

// The same kill, and another process takes the free lock before the waiter
// taken off the queue looks again: that waiter queues again at the head and
// asks the new holder to release, which it does when asked.
BOOST_AUTO_TEST_CASE(a_waiter_dropped_by_a_dead_hand_over_asks_the_next_holder) {
  SegmentGuard g("dropped");
  Store s = make(g);
  s.create_session("locked");
  Signal holding, go, parked;
  auto releaser = dying_releaser(g.name(), "locked", holding, go, parked);
  BOOST_REQUIRE(holding.wait(60s));
  auto waiter = lock_waiter(g.name(), "locked", "waiter");
  BOOST_REQUIRE(wait_until_in_futex(waiter->pid(), 60s));
  BOOST_REQUIRE_EQUAL(wait_until_queued(s, 1), 1u);
  go.notify();
  BOOST_REQUIRE(parked.wait(60s));
  // The waiter may not look before this process took the lock.
  waiter->kill(SIGSTOP);
  releaser->kill(SIGKILL);
  BOOST_TEST(releaser->wait() == 128 + SIGKILL);
  std::atomic<int> asked{0};
  s.on_release_request([&](const std::string& id, LockToken token) {
    ++asked;
    s.release(id, token);
  });
  std::optional<LockToken> mine = s.try_acquire("locked");
  BOOST_REQUIRE_MESSAGE(mine.has_value(), "the lock was not free after the hand-over died");
  BOOST_TEST(s.locks().at(0).queue.empty());  // the waiter is off the queue
  waiter->kill(SIGCONT);
  const int code = waiter->wait_for(60s);
  BOOST_TEST(code != -1, "the dropped waiter was never granted the lock");
  BOOST_TEST(code == 0);
  BOOST_TEST(asked.load() == 1);
  s.on_release_request({});
  BOOST_TEST(s.peek("locked")->find("waiter"));
}

// A waiter granted a lock that was asked back at the same moment (others
// queued), its release-request watcher looking before the process recorded
// the lock as held: the watcher looks again once it is, and the holder
// hears the request.
BOOST_AUTO_TEST_CASE(a_lock_asked_back_as_it_is_granted_is_still_handed_on) {
  SegmentGuard g("askedback");
  Store s = make(g);
  s.create_session("locked");
  LockToken held = s.acquire("locked", 1s);
  // The first waiter keeps what it gets until asked, and dawdles between
  // the grant and recording the lock as held.
  auto sticky = std::make_unique<ChildProcess>([&] {
    shm::detail::set_test_hook([](HookPoint point) {
      if (point == HookPoint::kWaiterGranted) std::this_thread::sleep_for(300ms);
    });
    Store mine = Store::attach(g.name());
    std::atomic<bool> asked{false};
    mine.on_release_request([&](const std::string& id, LockToken token) {
      mine.release(id, token);
      asked = true;
    });
    mine.acquire("locked", 120s);
    for (int i = 0; i < 60000 && !asked; ++i) std::this_thread::sleep_for(1ms);  // 60 s at least
    return asked ? 0 : 1;
  });
  BOOST_REQUIRE(wait_until_in_futex(sticky->pid(), 60s));
  BOOST_REQUIRE_EQUAL(wait_until_queued(s, 1), 1u);
  auto second = lock_waiter(g.name(), "locked", "second");
  BOOST_REQUIRE(wait_until_in_futex(second->pid(), 60s));
  BOOST_REQUIRE_EQUAL(wait_until_queued(s, 2), 2u);
  s.release("locked", held);  // grants the sticky waiter and asks it back at once
  const int sticky_code = sticky->wait_for(120s);
  BOOST_TEST(sticky_code != -1);
  BOOST_TEST(sticky_code == 0, "the sticky holder never heard the release request");
  const int second_code = second->wait_for(60s);
  BOOST_TEST(second_code != -1);
  BOOST_TEST(second_code == 0);
}

namespace {

// This process on CPU 0 only, at real-time priority, for one scope: a
// child pinned to CPU 0 that an unlock wakes cannot run before this
// process blocks. Needs CAP_SYS_NICE (the CI runs as root).
class FirstOnCpuZero {
 public:
  FirstOnCpuZero() {
    BOOST_REQUIRE(::sched_getaffinity(0, sizeof saved_, &saved_) == 0);
    cpu_set_t zero;
    CPU_ZERO(&zero);
    CPU_SET(0, &zero);
    BOOST_REQUIRE(::sched_setaffinity(0, sizeof zero, &zero) == 0);
  }
  void realtime() {
    sched_param p{};
    p.sched_priority = 1;
    BOOST_REQUIRE_MESSAGE(::sched_setscheduler(0, SCHED_FIFO, &p) == 0,
                          "SCHED_FIFO refused: this test needs CAP_SYS_NICE (run it as root)");
    fifo_ = true;
  }
  void normal() noexcept {
    if (!fifo_) return;
    sched_param p{};
    ::sched_setscheduler(0, SCHED_OTHER, &p);
    fifo_ = false;
  }
  ~FirstOnCpuZero() {
    normal();
    ::sched_setaffinity(0, sizeof saved_, &saved_);
  }

 private:
  cpu_set_t saved_{};
  bool fifo_ = false;
};

// One robust mutex in a shared anonymous page, as in a segment.
struct SharedMutex {
  SharedMutex() {
    void* p = ::mmap(nullptr, sizeof(shm::detail::RobustMutexStorage), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    BOOST_REQUIRE(p != MAP_FAILED);
    m = static_cast<shm::detail::RobustMutexStorage*>(p);
    shm::detail::robust_mutex_init(*m);
  }
  ~SharedMutex() { ::munmap(m, sizeof *m); }
  shm::detail::RobustMutexStorage* m;
};

}  // namespace

// The robust futex protocol's lost wake-up, forced: W1 and W2 wait for a
// shard lock; the holder unlocks (waking the first waiter, W1), takes the
// lock again before W1 can run (a newcomer's fast path: no waiters bit),
// and W1 is killed before it takes the lock. Nobody is left to wake W2,
// asleep on a lock that is free once the holder lets go: with a plain
// pthread_mutex_lock it sleeps until someone else contends, which on a
// retired generation is never (the kill campaign saw a worker asleep 17 s
// on a free shard lock). The lock's periodic re-check must get W2 the
// lock. The holder runs at real-time priority on the CPU W1 is pinned to,
// so W1 cannot run between the wake and the kill.
BOOST_AUTO_TEST_CASE(a_woken_waiter_killed_before_it_takes_the_lock_strands_nobody) {
  SharedMutex shared;
  shm::detail::RobustMutexStorage& m = *shared.m;
  FirstOnCpuZero cpu;  // the children inherit CPU 0
  BOOST_REQUIRE(pthread_mutex_lock(&m.native) == 0);
  auto waiter = [&m] {
    return std::make_unique<ChildProcess>([&m] {
      shm::detail::RobustLockGuard taken(m);
      return 0;
    });
  };
  std::unique_ptr<ChildProcess> w1 = waiter();
  BOOST_REQUIRE(wait_until_in_futex(w1->pid(), 10s));
  std::unique_ptr<ChildProcess> w2 = waiter();
  BOOST_REQUIRE(wait_until_in_futex(w2->pid(), 10s));

  cpu.realtime();
  pthread_mutex_unlock(&m.native);  // wakes the first waiter, which cannot run yet
  pthread_mutex_lock(&m.native);    // a newcomer takes it first: no waiters bit
  w1->kill(SIGKILL);                // whichever was woken never takes it
  cpu.normal();
  BOOST_TEST(w1->wait() == 128 + SIGKILL);
  pthread_mutex_unlock(&m.native);
  // W2 asleep on a free lock: only its own re-check can get it the lock.
  const int code = w2->wait_for(30s);
  BOOST_TEST(code == 0,
             "the second waiter was left asleep on a free lock (lock word " << m.native.__data.__lock << ")");
}

#ifdef SHMSESSION_TEST_HOOKS
namespace {

// 1 once the locker reached its spin, 2 once the holder let go. Both sides
// wait by spinning: a sleep would be the voluntary context switch the test
// counts.
std::atomic<int> g_spin_stage{0};

void hold_spinner_until_let_go(HookPoint point) {
  if (point != HookPoint::kRobustLockSpins) return;
  g_spin_stage = 1;
  for (long i = 0; g_spin_stage.load() != 2; ++i)
    if (i > 30'000'000'000L) return;  // fail instead of hang: the holder never let go
}

// Voluntary context switches of the calling thread so far.
long voluntary_switches() {
  rusage usage{};
  ::getrusage(RUSAGE_THREAD, &usage);
  return usage.ru_nvcsw;
}

}  // namespace

// A locker that finds a shard lock held spins a few microseconds before it
// sleeps: a holder letting go within the spin hands it over without a
// futex sleep and wake-up (which, with more runnable processes than CPUs,
// cost the waiter up to a scheduler tick); a holder that keeps it past the
// spin finds the locker asleep, and the unlock still wakes it.
BOOST_AUTO_TEST_CASE(a_locker_spins_before_it_sleeps_and_sleeps_after) {
  SharedMutex shared;
  shm::detail::RobustMutexStorage& m = *shared.m;
  shm::detail::set_test_hook(hold_spinner_until_let_go);
  struct Outcome {
    std::atomic<pid_t> tid{0};
    std::atomic<bool> took{false};
    long slept = -1;
  };
  auto locker = [&m](Outcome& out) {
    out.tid = static_cast<pid_t>(::gettid());
    const long before = voluntary_switches();
    {
      shm::detail::RobustLockGuard taken(m);
      out.slept = voluntary_switches() - before;
    }
    out.took = true;
  };

  // Let go within the spin (once the locker reached it, or, with no spin,
  // once it sleeps in the kernel: then the count below fails the test).
  BOOST_REQUIRE(pthread_mutex_lock(&m.native) == 0);
  Outcome within;
  g_spin_stage = 0;
  std::thread first(locker, std::ref(within));
  bool spinning = false;
  for (;;) {
    if ((spinning = g_spin_stage.load() == 1)) break;
    const pid_t tid = within.tid.load();
    if (tid != 0 && shmsession::test::wait_until_thread_in_futex(tid, 1ms)) break;
  }
  pthread_mutex_unlock(&m.native);
  g_spin_stage = 2;
  first.join();
  BOOST_TEST(spinning, "the locker slept without spinning first");
  BOOST_TEST(within.took.load());
  BOOST_TEST(within.slept == 0, "the locker slept " << within.slept << " time(s) for a lock let go within its spin");

  // Kept past the spin: the locker sleeps, and the unlock wakes it.
  shm::detail::set_test_hook(nullptr);
  BOOST_REQUIRE(pthread_mutex_lock(&m.native) == 0);
  Outcome past;
  std::thread second(locker, std::ref(past));
  while (past.tid.load() == 0) std::this_thread::yield();
  BOOST_REQUIRE(shmsession::test::wait_until_thread_in_futex(past.tid.load(), 10s));
  pthread_mutex_unlock(&m.native);
  second.join();
  BOOST_TEST(past.took.load());
  BOOST_TEST(past.slept >= 1);
}
#endif

// ---- change lanes and their sequencer -----------------------------------

namespace {

// A session id whose shard (of `shards`) is not `avoid`'s.
std::string id_in_another_shard(const std::string& avoid, std::uint32_t shards) {
  using shmsession::shm::detail::hash_session_id;
  const auto shard_of = [&](const std::string& id) { return (hash_session_id(id) >> 32) & (shards - 1); };
  for (int i = 0;; ++i)
    if (std::string id = "other-" + std::to_string(i); shard_of(id) != shard_of(avoid)) return id;
}

}  // namespace

// A writer inside its critical section holds back the entries of its own
// lane only: the other CPU's changes are sequenced past it (the branch
// where the sequencer stops at an entry being written). Once the writer is
// killed there, a reader repairs its entry through its shard lock.
BOOST_AUTO_TEST_CASE(a_writer_inside_its_critical_section_holds_back_only_its_lane) {
  CpuAffinityKept restore;
  if (!run_on_cpu(1)) {
    BOOST_TEST_MESSAGE("one CPU: one lane");
    return;
  }
  SegmentGuard g("stuck-lane");
  Store s = make_store(g, {.size_bytes = 16 << 20, .shards = 4, .change_log_capacity = 256, .change_lanes = 2});
  const std::string other = id_in_another_shard("victim", 4);
  s.create_session("victim");
  s.create_session(other);
  const std::uint64_t start = ChangeFeed(s).next_seq();
  Signal parked;
  ChildProcess writer([&] {
    if (!run_on_cpu(0)) return 2;
    shmsession::test::g_parked = &parked;
    shmsession::test::g_target = HookPoint::kCommitBeforePublish;
    shm::detail::set_test_hook(shmsession::test::park_here);
    Store mine = Store::attach(g.name());
    mine.commit("victim", CommitBatch{}.put("a", "never published"));
    return 1;  // never reached: the hook parks
  });
  BOOST_REQUIRE_MESSAGE(parked.wait(60s), "the writer never reached its critical section");
  for (int i = 0; i < 3; ++i) s.commit(other, CommitBatch{}.put("k", std::to_string(i)));
  BOOST_TEST(ChangeFeed(s).next_seq() == start + 3, "the other lane's changes were held back");
  writer.kill(SIGKILL);
  BOOST_TEST(writer.wait() == 128 + SIGKILL);
  check_without_hanging([&] {
    Store mine = Store::attach(g.name());
    ChangeBatch b = ChangeFeed(mine).read(start, 100);
    if (b.fell_behind || b.entries.size() != 4u) return 1;
    for (std::size_t i = 0; i < 3; ++i)
      if (b.entries[i].session_id != other || b.entries[i].version != i + 1) return 2;
    if (b.entries[3].session_id != "victim") return 3;  // the dead commit, finished by the repair
    return 0;
  });
}

// A follower killed inside the sequencer (its lock held, an entry logged
// and its lane's cursor not yet moved) costs no change: the next follower
// takes the lock over and logs from where the cursor stands, so an entry
// may be read twice but none is missed or out of order.
BOOST_AUTO_TEST_CASE(a_sequencer_killed_mid_pass_loses_no_change) {
  SegmentGuard g("dead-sequencer");
  Store s = make_store(g, {.size_bytes = 16 << 20, .shards = 4, .change_log_capacity = 256, .change_lanes = 1});
  const std::uint64_t start = ChangeFeed(s).next_seq();
  s.create_session("a");
  s.create_session("b");
  for (int i = 0; i < 3; ++i) {
    s.commit("a", CommitBatch{}.put("k", std::to_string(i)));
    s.commit("b", CommitBatch{}.put("k", std::to_string(i)));
  }
  kill_child_at(g.name(), HookPoint::kSequencerLogged, [start](Store& m) { ChangeFeed(m).read(start, 100); });
  check_without_hanging([&] {
    Store mine = Store::attach(g.name());
    ChangeBatch b = ChangeFeed(mine).read(start, 100);
    if (b.fell_behind) return 1;
    std::map<std::string, std::vector<std::uint64_t>> versions;
    for (const ChangeEntry& e : b.entries) versions[e.session_id].push_back(e.version);
    for (const char* id : {"a", "b"}) {
      std::vector<std::uint64_t>& v = versions[id];
      if (!std::is_sorted(v.begin(), v.end())) return 2;
      v.erase(std::unique(v.begin(), v.end()), v.end());
      if (v != std::vector<std::uint64_t>{0, 1, 2, 3}) return 3;
    }
    if (b.entries.size() != 8u && b.entries.size() != 9u) return 4;  // the first entry perhaps twice
    return 0;
  });
}
