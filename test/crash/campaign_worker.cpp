#include "test/crash/campaign_worker.hpp"

#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <new>
#include <optional>
#include <random>
#include <stdexcept>
#include <thread>

#include "shm/detail/test_hooks.hpp"
#include "shm/store.hpp"
#include "sync/client.hpp"
#include "test/crash/ack_log.hpp"
#include "test/crash/campaign_supervisor.hpp"  // kLongestWaitAllowed
#include "test/crash/campaign_values.hpp"

namespace shmsession::test::crash {
namespace {

using Clock = std::chrono::steady_clock;
using shm::detail::HookPoint;

// Longer than kLongestWaitAllowed: a waiter stuck behind a dead or moved
// holder shows up as a wait over that bound (with a stall report) rather
// than as a LockTimeout quietly retried; a lock held by a live worker (for
// one commit) is always granted long before.
constexpr std::chrono::milliseconds kLockTimeout{20000};
static_assert(kLockTimeout > kLongestWaitAllowed);
// Pacing: a burst of operations, then a pause, so that four workers contend
// during their bursts while the ack logs stay a few MB per minute.
constexpr int kBurstOps = 16;
constexpr std::chrono::microseconds kPause{2000};
// Own sessions an incarnation creates in its ordinary loop (a worker armed
// at kTableGrow creates more, until a table grows).
constexpr std::size_t kMaxOwnSessions = 16;
// Own sessions a commit picks from: the newest ones.
constexpr std::size_t kHotOwnSessions = 8;
// Operations this slow are described on stderr.
constexpr std::chrono::milliseconds kSlowOp{300};

WorkerControl* g_control = nullptr;
Signal* g_parked = nullptr;

// The test hook of every worker: parks the thread that reaches the armed
// point once the passes are used up. Only the first parker pokes the
// supervisor; any other thread arriving there parks too, silently.
void park_if_armed(HookPoint point) {
  WorkerControl* c = g_control;
  if (c == nullptr || c->armed_point.load(std::memory_order_acquire) != static_cast<int>(point)) return;
  if (c->passes_left.fetch_sub(1, std::memory_order_acq_rel) > 0) return;
  int none = kNotArmed;
  if (c->parked_point.compare_exchange_strong(none, static_cast<int>(point))) g_parked->notify();
  for (;;) ::pause();  // until the SIGKILL
}

// What /proc says of a lock holder: "state S", "state Z"..., or "gone".
std::string process_state(pid_t pid) {
  if (pid <= 0) return "none";
  std::FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
  if (f == nullptr) return "gone";
  char line[512] = {};
  std::size_t n = std::fread(line, 1, sizeof line - 1, f);
  std::fclose(f);
  const char* paren = std::strrchr(line, ')');
  if (n == 0 || paren == nullptr || paren[1] == '\0') return "?";
  return std::string("state ") + paren[2];
}

bool retryable(const Error& e) { return e.code() == Errc::StaleToken || e.code() == Errc::LockTimeout; }

class Worker {
 public:
  Worker(const WorkerPlan& plan, Store& store)
      : plan_(plan),
        control_(*plan.control),
        store_(store),
        acks_(plan.ack_log),
        client_(store, client_options()),
        rng_(plan.seed),
        writer_("w" + std::to_string(plan.index) + "." + std::to_string(plan.incarnation)) {}

  void run() {
    create_own();
    for (std::uint64_t n = 1; control_.stop.load(std::memory_order_relaxed) == 0; ++n) {
      if (control_.armed_point.load(std::memory_order_relaxed) == static_cast<int>(HookPoint::kTableGrow)) {
        create_own();  // until a table grows and the hook parks us
        continue;
      }
      std::uint64_t r = rng_() % 100;
      if (r < 2 && own_.size() < kMaxOwnSessions) {
        create_own();
      } else if (r < 55) {
        commit_own();
      } else if (r < 82) {
        commit_locked();
      } else {
        commit_client();
      }
      if (n % kBurstOps == 0) std::this_thread::sleep_for(kPause);
    }
  }

  // Records how long a store call (or one attempt of a locked sequence) took;
  // a slow one is described on stderr, with the session's lock as the
  // store shows it, so that a failed bound can be explained.
  void timed(OpKind kind, Clock::time_point start, const std::string& session = {}, const char* outcome = "ok") {
    record(kind, Clock::now() - start, session, outcome);
  }
  // Marks the store call now in progress (for the supervisor's messages).
  void begin(OpKind kind, const std::string& session) {
    std::snprintf(control_.current_session, sizeof control_.current_session, "%s", session.c_str());
    control_.current_since_ns.store(monotonic_ns(), std::memory_order_relaxed);
    control_.current_op.store(static_cast<int>(kind), std::memory_order_release);
  }
  void record(OpKind kind, Clock::duration took, const std::string& session = {}, const char* outcome = "ok") {
    auto ns = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(took).count());
    control_.current_op.store(kNotArmed, std::memory_order_release);
    if (took >= kSlowOp) describe_slow_op(kind, took, session, outcome);
    control_.ops.fetch_add(1, std::memory_order_relaxed);
    if (ns > control_.longest_op_ns.load(std::memory_order_relaxed)) {
      control_.longest_op_ns.store(ns, std::memory_order_relaxed);
      control_.longest_op_kind.store(static_cast<int>(kind), std::memory_order_relaxed);
    }
  }

 private:
  struct OwnSession {
    std::string id;
    std::size_t length = 0;
  };

  void describe_slow_op(OpKind kind, Clock::duration took, const std::string& session, const char* outcome) {
    std::string lock;
    try {
      for (const LockInfo& l : store_.locks())
        if (l.session == session) {
          lock = "; lock now: holder " + std::to_string(l.holder_pid) + " (" + process_state(l.holder_pid) +
                 ") token " + std::to_string(l.token) + (l.release_requested ? " (release requested)" : "") + ", " +
                 std::to_string(l.queue.size()) + " waiting";
        }
    } catch (const std::exception& e) {
      lock = std::string("; locks() failed: ") + e.what();
    }
    std::fprintf(stderr, "kill campaign worker %s (pid %d): %s of '%s' took %.1f ms: %s%s\n", writer_.c_str(),
                 ::getpid(), op_kind_name(static_cast<int>(kind)), session.c_str(),
                 std::chrono::duration<double, std::milli>(took).count(), outcome, lock.c_str());
  }

  static sync::ClientOptions client_options() {
    sync::ClientOptions o;
    o.lock_timeout = kLockTimeout;
    o.create_missing_sessions = false;
    return o;
  }

  void acknowledged(char kind, const std::string& session, std::uint64_t version, std::uint64_t checksum) {
    acks_.append(kind, session, version, checksum);
    control_.acks.fetch_add(1, std::memory_order_relaxed);
  }

  // Most values keep their size from one commit to the next; one in four
  // changes it, now and then to a few KiB.
  std::size_t next_length(std::size_t current) {
    if (current != 0 && rng_() % 4 != 0) return current;
    std::uint64_t r = rng_() % 100;
    if (r < 90) return 8 + rng_() % 400;
    if (r < 99) return 400 + rng_() % 1600;
    return 4000 + rng_() % 4000;
  }

  // The two texts of the next commit, stamped with one counter.
  std::pair<std::string, std::string> next_texts(std::size_t length) {
    ++counter_;
    return {make_value(writer_, counter_, length), make_value(writer_, counter_, length / 2 + counter_ % 7)};
  }

  void create_own() {
    OwnSession s{writer_ + ".s" + std::to_string(created_++), 0};
    begin(OpKind::Create, s.id);
    auto start = Clock::now();
    bool created = store_.create_session(s.id);
    timed(OpKind::Create, start, s.id);
    if (!created) throw std::runtime_error("session '" + s.id + "' existed before this worker created it");
    acknowledged('C', s.id, 0, 0);
    own_.push_back(std::move(s));
  }

  void commit_own() {
    std::size_t hot = std::min(own_.size(), kHotOwnSessions);
    OwnSession& s = own_[own_.size() - 1 - rng_() % hot];
    s.length = next_length(s.length);
    auto [a, b] = next_texts(s.length);
    CommitBatch batch;
    batch.put(kFirstAttribute, a).put(kSecondAttribute, b);
    begin(OpKind::OwnCommit, s.id);
    auto start = Clock::now();
    std::uint64_t version = store_.commit(s.id, batch);
    timed(OpKind::OwnCommit, start, s.id);
    acknowledged('O', s.id, version, commit_checksum(a, b));
  }

  void commit_locked() {
    const std::string& id = plan_.locked_sessions[rng_() % plan_.locked_sessions.size()];
    auto [a, b] = next_texts(next_length(0));
    CommitBatch batch;
    batch.put(kFirstAttribute, a).put(kSecondAttribute, b);
    begin(OpKind::LockedCommit, id);
    auto start = Clock::now();
    try {
      LockToken token = store_.acquire(id, kLockTimeout);
      std::uint64_t version = store_.commit(id, token, batch);
      auto store_time = Clock::now() - start;
      control_.current_op.store(kNotArmed, std::memory_order_release);
      acknowledged('L', id, version, commit_checksum(a, b));
      begin(OpKind::LockedCommit, id);
      auto release_start = Clock::now();
      try {
        store_.release(id, token);
      } catch (const Error& e) {
        if (e.code() != Errc::StaleToken) throw;  // revoked meanwhile: nothing to hand over
      }
      record(OpKind::LockedCommit, store_time + (Clock::now() - release_start), id);
    } catch (const Error& e) {
      if (!retryable(e)) throw;
      timed(OpKind::LockedCommit, start, id, e.what());
      control_.retries.fetch_add(1, std::memory_order_relaxed);
    }
  }

  void commit_client() {
    const std::string& id = plan_.client_sessions[rng_() % plan_.client_sessions.size()];
    auto [a, b] = next_texts(next_length(0));
    begin(OpKind::ClientCommit, id);
    auto start = Clock::now();
    try {
      sync::SessionHandle handle = client_.open(id);
      handle.put(kFirstAttribute, ClientValue{a});
      handle.put(kSecondAttribute, ClientValue{b});
      sync::CommitOutcome outcome = handle.commit();
      auto store_time = Clock::now() - start;
      if (outcome.written.size() != 2)
        throw std::runtime_error("client commit to '" + id + "' wrote " + std::to_string(outcome.written.size()) +
                                 " attributes, not both");
      control_.current_op.store(kNotArmed, std::memory_order_release);
      acknowledged('K', id, outcome.version, commit_checksum(a, b));
      begin(OpKind::ClientCommit, id);
      auto end_start = Clock::now();
      { sync::SessionHandle done = std::move(handle); }  // ends the request: may hand the lock over
      record(OpKind::ClientCommit, store_time + (Clock::now() - end_start), id);
    } catch (const Error& e) {
      if (!retryable(e)) throw;
      timed(OpKind::ClientCommit, start, id, e.what());
      control_.retries.fetch_add(1, std::memory_order_relaxed);
    }
  }

  const WorkerPlan& plan_;
  WorkerControl& control_;
  Store& store_;
  AckWriter acks_;
  sync::Client client_;
  std::mt19937_64 rng_;
  const std::string writer_;
  std::vector<OwnSession> own_;
  std::uint64_t created_ = 0;
  std::uint64_t counter_ = 0;
};

void record_failure(WorkerControl& control, int index, const char* what) {
  std::snprintf(control.error, sizeof control.error, "%s", what);
  std::fprintf(stderr, "kill campaign worker %d (pid %d): %s\n", index, ::getpid(), what);
  std::fflush(stderr);
}

}  // namespace

const char* op_kind_name(int kind) noexcept {
  switch (static_cast<OpKind>(kind)) {
    case OpKind::Attach:
      return "attach";
    case OpKind::Create:
      return "create a session";
    case OpKind::OwnCommit:
      return "commit to an own session";
    case OpKind::LockedCommit:
      return "acquire + commit + release of a shared session";
    case OpKind::ClientCommit:
      return "sync::Client open + commit";
  }
  return "?";
}

std::uint64_t monotonic_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

SharedControls::SharedControls(int workers) : count_(workers) {
  void* p = ::mmap(nullptr, mapped_bytes(), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::runtime_error(std::string("mmap: ") + shmsession::errno_text(errno));
  reporting_ = new (p) std::atomic<int>(0);
  controls_ = reinterpret_cast<WorkerControl*>(static_cast<char*>(p) + kHeaderBytes);
  for (int i = 0; i < workers; ++i) new (&controls_[i]) WorkerControl{};
}

SharedControls::~SharedControls() { ::munmap(reporting_, mapped_bytes()); }

int run_worker(const WorkerPlan& plan) {
  g_control = plan.control;
  g_parked = plan.parked;
  shm::detail::set_test_hook(park_if_armed);  // before attach: kInsideIndex is there
  plan.control->pid = ::getpid();
  try {
    std::snprintf(plan.control->current_session, sizeof plan.control->current_session, "%s", plan.store.c_str());
    plan.control->current_since_ns = monotonic_ns();
    plan.control->current_op = static_cast<int>(OpKind::Attach);
    auto start = Clock::now();
    Store store = Store::attach(plan.store);
    auto attach_time = Clock::now() - start;
    Worker worker(plan, store);
    worker.record(OpKind::Attach, attach_time, plan.store);
    worker.run();
    return 0;
  } catch (const std::exception& e) {
    record_failure(*plan.control, plan.index, e.what());
  } catch (...) {
    record_failure(*plan.control, plan.index, "unknown exception");
  }
  return kWorkerFailed;
}

}  // namespace shmsession::test::crash
