// Several real processes committing to one store at once: every commit
// lands, none is lost, and readers never see a mix of two versions.
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "shm/store.hpp"
#include "test/support/test_support.hpp"

using namespace shmsession;
using shmsession::test::ChildProcess;
using shmsession::test::SegmentGuard;

namespace {

constexpr int kProcesses = 4;
constexpr int kCommits = 10000;
constexpr int kShared = 4;

Store make(const SegmentGuard& g) { return make_store(g, {.size_bytes = 64 << 20, .shards = 64}); }

// Runs `body(p)` in kProcesses children at once; requires all to exit 0.
void run_writers(const std::function<int(int)>& body) {
  std::vector<ChildProcess> children;
  for (int p = 0; p < kProcesses; ++p) children.emplace_back([&, p] { return body(p); });
  for (auto& c : children) BOOST_TEST(c.wait() == 0);
}

std::string shared_id(int k) { return "shared-" + std::to_string(k); }

}  // namespace

BOOST_AUTO_TEST_CASE(own_sessions_get_every_commit) {
  SegmentGuard g("own");
  Store s = make(g);
  run_writers([&](int p) {
    Store mine = Store::attach(g.name());
    std::string id = "own-" + std::to_string(p);
    mine.create_session(id);
    for (int i = 0; i < kCommits; ++i)
      if (mine.commit(id, CommitBatch{}.put("n", std::to_string(i)).put("p", std::to_string(p))) !=
          static_cast<std::uint64_t>(i) + 1)
        return 1;
    return 0;
  });
  for (int p = 0; p < kProcesses; ++p) {
    auto snap = s.read("own-" + std::to_string(p));
    BOOST_REQUIRE(snap);
    BOOST_TEST(snap->version == std::uint64_t{kCommits});
    BOOST_TEST(snap->find("n")->value == std::to_string(kCommits - 1));
    BOOST_TEST(snap->find("p")->value == std::to_string(p));
  }
  BOOST_TEST(s.stats().commits == std::uint64_t{kProcesses * kCommits});
}

BOOST_AUTO_TEST_CASE(shared_sessions_lose_no_update_and_never_tear) {
  SegmentGuard g("shared");
  Store s = make(g);
  for (int k = 0; k < kShared; ++k) s.create_session(shared_id(k));

  // A reader checks atomicity while the writers run: x and y are always
  // written together, so a snapshot with x != y would be a torn read.
  ChildProcess reader([&] {
    Store mine = Store::attach(g.name());
    std::vector<std::uint64_t> last(kShared, 0);
    SessionSnapshot snap;
    for (int round = 0; round < 200000; ++round) {
      int k = round % kShared;
      if (!mine.read_into(shared_id(k), {}, snap)) return 2;
      const Attribute* x = snap.find("x");
      const Attribute* y = snap.find("y");
      if ((x == nullptr) != (y == nullptr) || (x && x->value != y->value)) return 3;
      if (snap.version < last[k]) return 4;
      last[k] = snap.version;
    }
    return 0;
  });

  // Each commit increments "counter" with optimistic concurrency and writes
  // x = y = a token unique to the commit.
  run_writers([&](int p) {
    Store mine = Store::attach(g.name());
    SessionSnapshot snap;
    for (int i = 0; i < kCommits; ++i) {
      std::string id = shared_id(i % kShared);
      std::string token = std::to_string(p) + ":" + std::to_string(i);
      for (;;) {
        if (!mine.read_into(id, {}, snap)) return 1;
        const Attribute* c = snap.find("counter");
        long next = (c ? std::stol(c->value) : 0) + 1;
        CommitBatch batch;
        batch.put("counter", std::to_string(next)).put("x", token).put("y", token);
        batch.put("by-" + std::to_string(p), std::to_string(i));
        if (mine.commit_if_version(id, snap.version, batch)) break;
      }
    }
    return 0;
  });
  BOOST_TEST(reader.wait() == 0);

  long total = 0;
  for (int k = 0; k < kShared; ++k) {
    auto snap = s.read(shared_id(k));
    BOOST_REQUIRE(snap);
    long counter = std::stol(snap->find("counter")->value);
    BOOST_TEST(snap->version == static_cast<std::uint64_t>(counter));
    total += counter;
    for (int p = 0; p < kProcesses; ++p) {
      // Process p's last commit to session k was its largest i with i % kShared == k.
      int last_i = kCommits - kShared + k;
      BOOST_TEST(snap->find("by-" + std::to_string(p))->value == std::to_string(last_i));
    }
  }
  BOOST_TEST(total == long{kProcesses} * kCommits);
}

BOOST_AUTO_TEST_CASE(concurrent_creates_and_removes_keep_counts_exact) {
  SegmentGuard g("churn");
  Store s = make(g);
  run_writers([&](int p) {
    Store mine = Store::attach(g.name());
    for (int i = 0; i < 5000; ++i) {
      std::string id = "c" + std::to_string(p) + "-" + std::to_string(i);
      if (!mine.create_session(id)) return 1;
      mine.commit(id, CommitBatch{}.put("v", id));
      if (i % 2 == 1 && !mine.remove_session(id)) return 2;
    }
    return 0;
  });
  StoreStats st = s.stats();
  BOOST_TEST(st.sessions == std::uint64_t{kProcesses * 2500});
  BOOST_TEST(st.attributes == std::uint64_t{kProcesses * 2500});
  std::uint64_t listed = 0;
  s.for_each_session([&](const SessionInfo& info) {
    BOOST_TEST(s.read(info.id)->find("v")->value == info.id);
    ++listed;
    return true;
  });
  BOOST_TEST(listed == st.sessions);
}

// A test killed by a signal runs no destructor: its ChildProcess children
// must die with it instead of living on (holding segments, ports, locks).
// A child forks a grandchild that would wait forever, tells its pid, and
// is SIGKILLed; this process, a subreaper meanwhile, inherits the
// grandchild and reaps it. (Before PR_SET_PDEATHSIG in ChildProcess it
// lived on, and this waited its 60 s out.)
BOOST_AUTO_TEST_CASE(a_child_process_dies_with_its_parent) {
  BOOST_REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
  int fds[2];
  BOOST_REQUIRE(::pipe(fds) == 0);
  ChildProcess parent([&] {
    ::close(fds[0]);
    ChildProcess grandchild([] {
      for (;;) ::pause();
      return 0;
    });
    const pid_t pid = grandchild.pid();
    if (::write(fds[1], &pid, sizeof pid) != sizeof pid) return 1;
    ::raise(SIGKILL);  // as a CTest timeout kills a test: no destructor runs
    return 2;
  });
  ::close(fds[1]);
  pid_t grandchild = 0;
  const bool told = ::read(fds[0], &grandchild, sizeof grandchild) == sizeof grandchild;
  ::close(fds[0]);
  BOOST_REQUIRE(told);
  BOOST_TEST(parent.wait() == 128 + SIGKILL);
  int status = 0;
  pid_t reaped = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while ((reaped = ::waitpid(grandchild, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (reaped == 0) {  // still alive: this test cleans up after it
    ::kill(grandchild, SIGKILL);
    ::waitpid(grandchild, &status, 0);
  }
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);
  BOOST_TEST(reaped == grandchild, "the grandchild outlived its killed parent");
  // Killed with its parent, or (its parent killed before it asked for
  // that) gone at once with 99.
  BOOST_TEST(
      ((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) || (WIFEXITED(status) && WEXITSTATUS(status) == 99)));
}
