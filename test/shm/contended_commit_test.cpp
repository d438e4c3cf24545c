// Commits that contend for the same few sessions from several processes,
// with values of widely varying sizes: the segment's allocator and every
// stored value must come out sound. Guards the commit's optimistic path
// (plan under the shard lock, allocate outside it, publish under it) and its
// other branch, where the session moved meanwhile and the block allocated
// for it is kept as the shard's spare.
#include <boost/test/unit_test.hpp>

#include <sched.h>

#include <thread>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "shm/change_feed.hpp"
#include "shm/detail/test_hooks.hpp"
#include "shm/recovery.hpp"
#include "shm/store.hpp"
#include "test/support/test_support.hpp"

using namespace shmsession;
using namespace std::chrono_literals;
using shmsession::test::ChildProcess;
using shmsession::test::SegmentGuard;
using shmsession::test::Signal;

namespace {

// A value that verifies against its own content: its seed and length, then
// bytes that follow from the seed. Anything written over it (or a value cut
// short or run together with another) fails `verifies`.
std::string make_value(std::uint64_t seed, std::size_t size) {
  std::string v(std::max<std::size_t>(size, 16), '\0');
  std::memcpy(v.data(), &seed, 8);
  const std::uint64_t n = v.size();
  std::memcpy(v.data() + 8, &n, 8);
  std::uint64_t x = seed | 1;
  for (std::size_t i = 16; i < v.size(); ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    v[i] = static_cast<char>(x);
  }
  return v;
}

bool verifies(const std::string& v) {
  if (v.size() < 16) return false;
  std::uint64_t seed, n;
  std::memcpy(&seed, v.data(), 8);
  std::memcpy(&n, v.data() + 8, 8);
  return n == v.size() && make_value(seed, n) == v;
}

// Every value of every session verifies; returns how many were checked, or
// -1 at the first that does not.
long verify_store(Store& s) {
  long values = 0;
  bool ok = true;
  std::vector<std::string> ids;
  s.for_each_session([&](const SessionInfo& info) {
    ids.push_back(info.id);
    return true;
  });
  for (const std::string& id : ids) {
    auto snap = s.peek(id);
    if (!snap) continue;  // removed meanwhile
    for (const Attribute& a : snap->attributes) {
      if (!verifies(a.value)) ok = false;
      ++values;
    }
  }
  return ok ? values : -1;
}

void require_sound(Store& s) {
  CheckReport report = check_store(s);
  for (const std::string& p : report.problems) BOOST_TEST_MESSAGE("check: " << p);
  BOOST_TEST(report.clean());
  BOOST_TEST(report.allocator_ok);  // Boost's check_sanity over the free tree
  BOOST_TEST(report.damaged_spares == 0u);
  BOOST_TEST(verify_store(s) >= 0, "a stored value no longer matches its own content");
}

std::string session_id(int k) { return "hot-" + std::to_string(k); }

// Sizes from 64 B to 20 KB, most small, some large: each commit's blob
// differs in size from the one before, so blocks are split and merged.
std::size_t draw_size(std::mt19937_64& rng) {
  switch (rng() % 4) {
    case 0:
      return 64 + rng() % 192;
    case 1:
      return 256 + rng() % 2048;
    case 2:
      return 2048 + rng() % 8192;
    default:
      return 8192 + rng() % (20 * 1024 - 8192);
  }
}

constexpr int kWriters = 4;
constexpr int kSessions = 6;

int count_ops() {
  const char* env = std::getenv("SHMSESSION_CONTENDED_OPS");
  return env != nullptr ? std::atoi(env) : 10000;
}

// One writer: puts (and sometimes removes) attributes of the hot sessions,
// now and then removes a whole session and creates it again; every value
// it reads back verifies. Exit 0 when every commit landed or was refused
// for a reason the store gave (NotFound: another writer removed it).
int writer(const std::string& store, int w, int ops) {
  Store s = Store::attach(store);
  std::mt19937_64 rng(0x5eed0000u + static_cast<unsigned>(w));
  for (int i = 0; i < ops; ++i) {
    const std::string id = session_id(static_cast<int>(rng() % kSessions));
    const unsigned dice = rng() % 100;
    try {
      if (dice < 5) {
        s.remove_session(id);
        s.create_session(id);
        continue;
      }
      if (dice < 12) {
        auto snap = s.read(id);
        if (snap)
          for (const Attribute& a : snap->attributes)
            if (!verifies(a.value)) return 2;
        continue;
      }
      CommitBatch batch;
      const int attrs = 1 + static_cast<int>(rng() % 3);
      for (int a = 0; a < attrs; ++a) {
        const std::string name = "a" + std::to_string(rng() % 5);
        if (rng() % 8 == 0)
          batch.remove(name);
        else
          batch.put(name, make_value(rng(), draw_size(rng)));
      }
      s.commit(id, batch);
    } catch (const Error& e) {
      if (e.code() == Errc::NotFound) {
        s.create_session(id);
        continue;
      }
      if (e.code() == Errc::InvalidArgument) continue;  // the same name twice in one batch
      std::fprintf(stderr, "writer %d: %s\n", w, e.what());
      return 3;
    }
  }
  return 0;
}

// Follows the change log and reads each changed session, until told to stop.
int follower(const std::string& store, Signal& stop) {
  Store s = Store::attach(store);
  std::uint64_t seq = ChangeFeed(s).next_seq();
  long read = 0;
  for (;;) {
    const bool last = stop.wait(0ms);
    ChangeBatch batch = ChangeFeed(s).read(seq, 256);
    seq = batch.next_seq;
    for (const ChangeEntry& e : batch.entries) {
      auto snap = s.peek(e.session_id);
      if (!snap) continue;
      for (const Attribute& a : snap->attributes)
        if (!verifies(a.value)) return 2;
      ++read;
    }
    if (last) return read > 0 ? 0 : 4;
    if (batch.entries.empty()) ChangeFeed(s).wait(seq, 10ms);
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(self_verifying_values_notice_damage) {
  std::string v = make_value(42, 1000);
  BOOST_TEST(verifies(v));
  v[500] ^= 1;
  BOOST_TEST(!verifies(v));
  BOOST_TEST(!verifies(make_value(42, 1000).substr(0, 999)));
}

// Several processes, the same few sessions, values of 64 B to 20 KB, removes
// and re-creations, a follower on the change log: the allocator stays sound
// and every value verifies against its own content.
BOOST_AUTO_TEST_CASE(contended_commits_of_varying_sizes_leave_the_segment_sound) {
  SegmentGuard g("contended");
  Store s = make_store(g, {.size_bytes = 64 << 20, .shards = 4});
  for (int k = 0; k < kSessions; ++k) s.create_session(session_id(k));
  const int ops = count_ops();
  Signal stop;
  ChildProcess follow([&] { return follower(g.name(), stop); });
  std::vector<ChildProcess> writers;
  for (int w = 0; w < kWriters; ++w) writers.emplace_back([&, w] { return writer(g.name(), w, ops); });
  for (auto& c : writers) {
    const int code = c.wait_for(240s);
    BOOST_TEST(code == 0, "writer exit " << code << " (2: a read value failed to verify; 128+n: killed by signal n)");
  }
  stop.notify();
  BOOST_TEST(follow.wait_for(60s) == 0);
  require_sound(s);
  BOOST_TEST_MESSAGE("commits " << s.stats().commits << ", values verified " << verify_store(s));
}

namespace {

Signal* g_allocated = nullptr;
Signal* g_resume = nullptr;

void pause_after_allocating(shm::detail::HookPoint point) {
  if (point != shm::detail::HookPoint::kCommitAllocated || g_allocated == nullptr) return;
  g_allocated->notify();
  g_resume->wait(60s);
  g_allocated = nullptr;  // only the first round pauses
}

}  // namespace

// The other branch of the optimistic commit, forced: the session is removed
// and created again while a commit allocates outside the lock, so the block
// it allocated becomes the shard's spare without being built. The block
// comes from memory a larger blob used before, whose header is still there;
// the spare must claim only what was allocated, and a later larger commit
// must not be written into it.
BOOST_AUTO_TEST_CASE(a_block_allocated_for_a_session_that_moved_becomes_a_sound_spare) {
  // One CPU for both processes: a shard keeps a spare per CPU, and the
  // later commits must meet the spare the committer left.
  shmsession::test::PinnedToCpu pinned;
  SegmentGuard g("spare");
  Store s = make_store(g, {.size_bytes = 8 << 20, .shards = 1});
  s.create_session("s");
  s.commit("s", CommitBatch{}.put("a", make_value(1, 100)));
  // A 16 KB blob freed: its header (capacity ~16 KB) stays in free memory.
  s.create_session("big");
  s.commit("big", CommitBatch{}.put("v", make_value(2, 16 * 1024)));
  s.remove_session("big");

  Signal allocated, resume;
  ChildProcess committer([&] {
    g_allocated = &allocated;
    g_resume = &resume;
    shm::detail::set_test_hook(pause_after_allocating);
    Store mine = Store::attach(g.name());
    mine.commit("s", CommitBatch{}.put("a", make_value(3, 200)));
    return verifies(mine.peek("s")->find("a")->value) ? 0 : 1;
  });
  BOOST_REQUIRE_MESSAGE(allocated.wait(30s), "the commit never allocated outside the lock");
  // The session moves: a new incarnation, its old blob freed (not kept as
  // the spare, so the committer's block can take the empty spare slot).
  s.remove_session("s");
  s.create_session("s");
  resume.notify();
  BOOST_TEST(committer.wait_for(30s) == 0);
  require_sound(s);
  // A commit between half and all of the stale 16 KB: the spare must not
  // be taken for it unless it really holds that much.
  s.commit("s", CommitBatch{}.put("a", make_value(4, 10 * 1024)).put("b", make_value(5, 300)));
  s.commit("s", CommitBatch{}.put("c", make_value(6, 64)));
  require_sound(s);
  auto snap = s.peek("s");
  BOOST_REQUIRE(snap);
  BOOST_TEST(snap->find("a")->value == make_value(4, 10 * 1024));
}

namespace {

// Runs `work` with the calling thread on CPU `cpu` only.
template <class Work>
void on_cpu(int cpu, Work&& work) {
  shmsession::test::PinnedToCpu pinned(cpu);
  work();
}

}  // namespace

// A shard keeps a spare blob per CPU: a commit writes into the blob a
// commit on its own CPU retired (whose lines that CPU read last), and
// commits on another CPU neither take it nor replace it. With one spare a
// shard, the commit on the second CPU took the first CPU's blob, and the
// first CPU's next commit then wrote into a blob the second had read.
BOOST_AUTO_TEST_CASE(each_cpu_commits_into_the_spare_it_left) {
  if (std::thread::hardware_concurrency() < 2) return;  // nothing to tell apart
  SegmentGuard g("percpu");
  Store s = make_store(g, {.size_bytes = 8 << 20, .shards = 1});
  s.create_session("a");
  s.create_session("b");
  constexpr std::size_t kValue = 4000;
  auto commit = [&](const char* id, int seed) { s.commit(id, CommitBatch{}.put("v", make_value(seed, kValue))); };
  on_cpu(0, [&] {
    commit("a", 1);
    commit("a", 2);  // retires a's first blob: CPU 0's spare
  });
  const std::uint64_t with_one_spare = s.stats().used_bytes;
  on_cpu(1, [&] {
    commit("b", 11);
    commit("b", 12);  // CPU 1 has no spare yet: allocates, and keeps b's first blob
  });
  const std::uint64_t b_blobs = s.stats().used_bytes - with_one_spare;
  // b's two blocks and nothing taken from CPU 0: three blobs' worth more
  // than CPU 0's spare alone would leave (b's current blob, its spare, and
  // CPU 0's spare still kept).
  on_cpu(0, [&] { commit("a", 3); });   // takes CPU 0's spare, keeps a's previous blob there
  on_cpu(1, [&] { commit("b", 13); });  // the same on CPU 1
  BOOST_TEST(s.stats().used_bytes == with_one_spare + b_blobs,
             "the commits reused their own CPU's spares (no allocation, nothing freed)");
  BOOST_TEST(b_blobs >= 2 * kValue, "CPU 1's commits took CPU 0's spare instead of keeping their own");
  require_sound(s);
}
