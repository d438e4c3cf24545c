#include "test/crash/campaign_supervisor.hpp"

#include <signal.h>

#include <algorithm>
#include <iomanip>
#include <iostream>
#include <thread>

#include <boost/json.hpp>

#include "test/crash/campaign_diagnostics.hpp"
#include "test/crash/campaign_values.hpp"

namespace shmsession::test::crash {
namespace {

using Clock = std::chrono::steady_clock;
using shm::detail::HookPoint;
using namespace std::chrono_literals;

constexpr int kLockedSessions = 4;
constexpr int kClientSessions = 2;
// New acknowledged commits each worker must show after a kill.
constexpr std::uint64_t kProgressAcks = 3;
constexpr int kMaxTableGrowRounds = 12;

struct ModeInfo {
  const char* name;
  int kills_per_round;
};

constexpr std::array<ModeInfo, kKillModes> kModes{{
    {"random", 1},
    {"before-publish", 1},
    {"after-publish", 1},
    {"table-grow", 1},
    {"allocator", 1},
    {"index", 2},
    {"rebuild-before-rename", 2},
    {"rebuild-after-rename", 2},
    {"hand-over", 1},
    {"lock-state-taken", 1},
    {"lock-state-given-back", 1},
}};

std::string locked_id(int k) { return "shared-" + std::to_string(k); }
std::string client_id(int k) { return "client-" + std::to_string(k); }
bool is_client_session(const std::string& id) { return id.rfind("client-", 0) == 0; }

double ms(std::chrono::nanoseconds d) { return std::chrono::duration<double, std::milli>(d).count(); }

bool check_is_clean(const CommandResult& r) {
  try {
    boost::json::value doc = boost::json::parse(r.out);
    const boost::json::value* clean = doc.as_object().if_contains("clean");
    return r.exit_code == 0 && clean != nullptr && clean->is_bool() && clean->as_bool();
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

const char* kill_mode_name(KillMode mode) noexcept { return kModes[static_cast<int>(mode)].name; }

std::optional<KillMode> kill_mode_named(std::string_view name) noexcept {
  for (int m = 0; m < kKillModes; ++m)
    if (name == kModes[m].name) return static_cast<KillMode>(m);
  return std::nullopt;
}

int kills_per_round(KillMode mode) noexcept { return kModes[static_cast<int>(mode)].kills_per_round; }

std::vector<KillMode> plan_rounds(const CampaignSettings& s, std::mt19937_64& rng) {
  const int per_hook_mode = std::max(3, s.kills / 25);
  std::vector<KillMode> plan;
  int planned = 0;
  auto add = [&](KillMode m) {
    plan.push_back(m);
    planned += kills_per_round(m);
  };
  for (int m = 1; m < kKillModes; ++m) {
    if (!s.enabled[m]) continue;
    int rounds =
        static_cast<KillMode>(m) == KillMode::TableGrow ? std::min(per_hook_mode, kMaxTableGrowRounds) : per_hook_mode;
    for (int i = 0; i < rounds; ++i) add(static_cast<KillMode>(m));
  }
  // The rest: random kills, or (random disabled) the enabled hook modes in
  // turn, table-grow excepted unless it is alone.
  std::vector<KillMode> fill;
  for (int m = 0; m < kKillModes; ++m)
    if (s.enabled[m] && (s.enabled[0] ? m == 0 : static_cast<KillMode>(m) != KillMode::TableGrow))
      fill.push_back(static_cast<KillMode>(m));
  if (fill.empty()) fill.push_back(KillMode::TableGrow);
  for (std::size_t i = 0; planned < s.kills; ++i) add(fill[i % fill.size()]);
  std::shuffle(plan.begin(), plan.end(), rng);
  // Table grows first, while the tables are small: a worker parked at a
  // grow creates sessions until one comes, and with every round the next
  // grow needs about twice as many.
  std::stable_partition(plan.begin(), plan.end(), [](KillMode m) { return m == KillMode::TableGrow; });
  return plan;
}

std::string format_figures(const CampaignFigures& f) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(1);
  out << "kill campaign: seed " << f.seed << ", " << kWorkers << " workers, " << f.rounds_run << " of "
      << f.rounds_planned << " rounds in " << std::chrono::duration<double>(f.elapsed).count() << " s\n";
  out << "  kills: " << f.kills << " (";
  for (int m = 0; m < kKillModes; ++m) out << (m ? ", " : "") << kModes[m].name << " " << f.kills_by_mode[m];
  out << ")\n";
  out << "  recoveries: shard lock repairs " << f.shard_repairs << ", process locks revoked " << f.locks_revoked
      << ", rebuilds into a new generation " << (f.generation ? f.generation - 1 : 0) << " (during rounds of";
  for (int m = 0; m < kKillModes; ++m)
    if (f.rebuilds_after[m]) out << " " << kModes[m].name << " " << f.rebuilds_after[m];
  out << ")\n";
  out << "  acknowledged: " << f.ack_records << " commits and creations in " << f.acked_sessions
      << " sessions, all verified after every kill (" << f.verifications << " passes, " << f.session_reads
      << " session reads); " << f.truncated_acks << " ack lines cut by a kill (ignored)\n";
  out << "  longest wait of a survivor: " << ms(f.longest_wait) << " ms (worker " << f.longest_wait_worker << ", "
      << op_kind_name(f.longest_wait_kind) << "), over " << f.worker_ops << " timed store calls; " << f.retries
      << " retried after StaleToken/LockTimeout\n";
  out << "  slowest return to progress after a kill: " << ms(f.slowest_progress)
      << " ms; longest supervisor read: " << ms(f.longest_supervisor_read) << " ms; shmctl check: " << f.checks
      << " clean runs\n";
  out << "  store at the end: " << f.sessions_at_end << " sessions, " << f.used_bytes_at_end / 1024
      << " KiB used, generation " << f.generation << "\n";
  return out.str();
}

std::string verify_ledger(const Store& store, const AckLedger& ledger, std::uint64_t& reads,
                          std::chrono::nanoseconds& longest_read) {
  if (!ledger.errors().empty()) return ledger.errors().front();
  for (const auto& [id, expected] : ledger.expectations()) {
    auto start = Clock::now();
    std::optional<SessionSnapshot> snap = store.peek(id);
    longest_read = std::max<std::chrono::nanoseconds>(longest_read, Clock::now() - start);
    ++reads;
    std::ostringstream problem;
    if (!snap) {
      problem << "session '" << id << "' is gone; " << expected.log << " acknowledged version " << expected.version;
      return problem.str();
    }
    SessionVerdict v = judge_session(*snap, is_client_session(id));
    if (!v.problem.empty()) {
      problem << "session '" << id << "' at version " << snap->version << ": " << v.problem;
    } else if (v.version < expected.version) {
      problem << "lost commit: session '" << id << "' is at version " << v.version << " but " << expected.log
              << " acknowledged version " << expected.version;
    } else if (v.version == expected.version && v.checksum != expected.checksum) {
      problem << "session '" << id << "' at version " << v.version << " holds another value than the one "
              << expected.log << " acknowledged";
    }
    if (!problem.str().empty()) return problem.str();
  }
  return {};
}

// ---- setup and teardown ----

Supervisor::Supervisor(std::string store_name, const CampaignSettings& settings, std::string log_dir)
    : name_(std::move(store_name)),
      settings_(settings),
      log_dir_(std::move(log_dir)),
      rng_(settings.seed),
      controls_(kWorkers) {
  CreateOptions o;
  o.size_bytes = 64 << 20;
  o.shards = 4;  // a handful: workers meet on every shard
  o.change_log_capacity = 1024;
  o.default_idle_timeout_s = 0;  // nothing expires during a long run
  store_.emplace(Store::create(name_, o));
  for (int k = 0; k < kLockedSessions; ++k) store_->create_session(locked_id(k));
  for (int k = 0; k < kClientSessions; ++k) store_->create_session(client_id(k));
  workers_.resize(kWorkers);
  incarnation_.assign(kWorkers, 0);
  log_.resize(kWorkers);
  last_stats_ = store_->stats();
  figures_.seed = settings.seed;
}

Supervisor::~Supervisor() {
  // Let a stall report in progress finish before the workers are killed.
  for (int i = 0; i < 600 && controls_.reporting().load() != 0; ++i) std::this_thread::sleep_for(100ms);
}

void Supervisor::run() {
  started_ = Clock::now();
  stall_reporter_ =
      std::make_unique<ChildProcess>([this] { return run_stall_reporter(controls_, kWorkers, kLongestWaitAllowed); });
  for (int w = 0; w < kWorkers; ++w) start_worker(w, std::nullopt, 0);
  stage_ = "first progress";
  require_progress();
  std::vector<KillMode> plan = plan_rounds(settings_, rng_);
  figures_.rounds_planned = static_cast<int>(plan.size());
  for (KillMode mode : plan) {
    ++round_;
    run_round(mode);
    figures_.rounds_run = round_;
  }
  stop_workers();
  figures_.elapsed = Clock::now() - started_;
}

CampaignFigures Supervisor::figures() {
  CampaignFigures f = figures_;
  if (f.elapsed.count() == 0 && started_ != Clock::time_point{}) f.elapsed = Clock::now() - started_;
  for (int w = 0; w < kWorkers; ++w) {
    WorkerControl& c = controls_[w];
    f.worker_ops += c.ops.load();
    f.retries += c.retries.load();
    auto longest = std::chrono::nanoseconds(c.longest_op_ns.load());
    if (longest > f.longest_wait) {
      f.longest_wait = longest;
      f.longest_wait_worker = w;
      f.longest_wait_kind = c.longest_op_kind.load();
    }
  }
  f.ack_records = ledger_.records();
  f.acked_sessions = ledger_.expectations().size();
  f.truncated_acks = ledger_.truncated();
  StoreStats now = last_stats_;
  try {
    now = store_->stats();
  } catch (const std::exception&) {
    // A store that cannot answer now: the last round's figures stand.
  }
  f.generation = now.generation;
  f.sessions_at_end = now.sessions;
  f.used_bytes_at_end = now.used_bytes;
  return f;
}

// ---- workers ----

void Supervisor::start_worker(int w, std::optional<HookPoint> armed, int passes) {
  WorkerControl& c = controls_[w];
  c.stop = 0;
  c.parked_point = kNotArmed;
  c.passes_left = passes;
  c.armed_point = armed ? static_cast<int>(*armed) : kNotArmed;
  c.current_op = kNotArmed;
  c.error[0] = '\0';
  WorkerPlan plan;
  plan.store = name_;
  plan.index = w;
  plan.incarnation = ++incarnation_[w];
  plan.ack_log = log_dir_ + "/w" + std::to_string(w) + "." + std::to_string(plan.incarnation) + ".log";
  plan.seed = settings_.seed ^ (std::uint64_t(w + 1) << 56) ^ (std::uint64_t(plan.incarnation) << 20);
  for (int k = 0; k < kLockedSessions; ++k) plan.locked_sessions.push_back(locked_id(k));
  for (int k = 0; k < kClientSessions; ++k) plan.client_sessions.push_back(client_id(k));
  plan.control = &c;
  plan.parked = &parked_;
  log_[w] = plan.ack_log;
  workers_[w].reset();
  workers_[w] = std::make_unique<ChildProcess>([plan] { return run_worker(plan); });
}

// Arms a running worker: the worker only reads these fields.
void Supervisor::arm(int w, HookPoint point, int passes) {
  WorkerControl& c = controls_[w];
  c.parked_point = kNotArmed;
  c.passes_left = passes;
  c.armed_point.store(static_cast<int>(point), std::memory_order_release);
}

void Supervisor::require_running(int w) {
  int code = workers_[w]->wait_for(0ms);
  if (code != -1)
    fail("worker ", w, " exited with status ", code, " (a survivor must not crash): ", controls_[w].error);
}

void Supervisor::kill_worker(int w, KillMode how) {
  workers_[w]->kill(SIGKILL);
  int code = workers_[w]->wait();
  if (code != 128 + SIGKILL)
    fail("worker ", w, " exited with status ", code, " before it was killed: ", controls_[w].error);
  ledger_.follow(log_[w], true);
  ++figures_.kills;
  ++figures_.kills_by_mode[static_cast<int>(how)];
}

// Waits until one of `candidates` parks at `point`; returns it.
int Supervisor::wait_parked(const std::vector<int>& candidates, HookPoint point) {
  auto deadline = Clock::now() + settings_.park_wait;
  for (;;) {
    for (int w : candidates)
      if (controls_[w].parked_point.load() == static_cast<int>(point)) return w;
    for (int w : candidates) require_running(w);
    if (Clock::now() >= deadline) {
      std::ostringstream who;
      for (int w : candidates) who << " " << w << " (" << describe_current_op(controls_[w]) << ")";
      fail("no worker of", who.str(), " reached hook point ", static_cast<int>(point), " within ",
           settings_.park_wait.count(), " ms");
    }
    parked_.wait(20ms);
  }
}

void Supervisor::kill_at_random_moment(int w) {
  std::this_thread::sleep_for(std::chrono::milliseconds(rng_() % 31));
  kill_worker(w, KillMode::Random);
}

void Supervisor::kill_at_hook(int w, HookPoint point, int passes, KillMode mode) {
  arm(w, point, passes);
  wait_parked({w}, point);
  kill_worker(w, mode);
}

// Kills w inside the allocator with every other worker armed at the
// rebuild point; the survivor that starts the rebuild parks there and is
// killed too. Returns that survivor.
int Supervisor::kill_a_rebuilder(int w, KillMode mode) {
  HookPoint point =
      mode == KillMode::RebuildBeforeRename ? HookPoint::kRebuildBeforeRename : HookPoint::kRebuildAfterRename;
  std::vector<int> others;
  for (int s = 0; s < kWorkers; ++s)
    if (s != w) {
      others.push_back(s);
      arm(s, point, 0);
    }
  kill_at_hook(w, HookPoint::kInsideAllocator, static_cast<int>(rng_() % 9), KillMode::InsideAllocator);
  stage_ = "kill the rebuilder";
  int rebuilder = wait_parked(others, point);
  // The others wait for the shard locks the parked rebuilder holds, so none
  // is past the hook's check: disarmed now, none parks later.
  for (int s : others) controls_[s].armed_point = kNotArmed;
  kill_worker(rebuilder, mode);
  return rebuilder;
}

// ---- rounds ----

void Supervisor::run_round(KillMode mode) {
  mode_ = mode;
  victim_ = static_cast<int>(rng_() % kWorkers);
  const int w = victim_;
  const std::uint64_t generation_before = store_->stats().generation;
  std::vector<int> restart{w};
  stage_ = "kill";
  switch (mode) {
    case KillMode::Random:
      kill_at_random_moment(w);
      break;
    case KillMode::BeforePublish:
      kill_at_hook(w, HookPoint::kCommitBeforePublish, static_cast<int>(rng_() % 4), mode);
      break;
    case KillMode::AfterPublish:
      kill_at_hook(w, HookPoint::kCommitAfterPublish, static_cast<int>(rng_() % 4), mode);
      break;
    case KillMode::TableGrow:
      kill_at_hook(w, HookPoint::kTableGrow, 0, mode);
      break;
    case KillMode::InsideAllocator:
      kill_at_hook(w, HookPoint::kInsideAllocator, static_cast<int>(rng_() % 9), mode);
      break;
    case KillMode::InsideIndex:
      // Only attach enters the index: kill the victim, restart it parked there.
      kill_at_random_moment(w);
      stage_ = "verify before the index kill";
      verify_acknowledged();
      stage_ = "kill inside the index";
      start_worker(w, HookPoint::kInsideIndex, 0);
      wait_parked({w}, HookPoint::kInsideIndex);
      kill_worker(w, mode);
      break;
    case KillMode::RebuildBeforeRename:
    case KillMode::RebuildAfterRename:
      restart.push_back(kill_a_rebuilder(w, mode));
      break;
    case KillMode::HandOver:
      kill_at_hook(w, HookPoint::kLockHandOver, static_cast<int>(rng_() % 3), mode);
      break;
    case KillMode::LockStateTaken:
      kill_at_hook(w, HookPoint::kLockStateTaken, static_cast<int>(rng_() % 3), mode);
      break;
    case KillMode::LockStateGivenBack:
      kill_at_hook(w, HookPoint::kLockStateGivenBack, static_cast<int>(rng_() % 3), mode);
      break;
  }
  stage_ = "verify right after the kill";
  verify_acknowledged();
  for (int r : restart) start_worker(r, std::nullopt, 0);
  stage_ = "every worker's progress";
  require_progress();
  stage_ = "verify after progress";
  verify_acknowledged();
  stage_ = "shmctl check";
  require_check_clean();
  stage_ = "waits";
  require_waits_bounded();
  StoreStats now = store_->stats();
  figures_.rebuilds_after[static_cast<int>(mode)] += now.generation - generation_before;
  count_recoveries(now);
}

// Asks every worker to stop, requires each to exit 0, then verifies and
// checks the quiet store once more.
void Supervisor::stop_workers() {
  stage_ = "stop";
  for (int w = 0; w < kWorkers; ++w) controls_[w].stop = 1;
  for (int w = 0; w < kWorkers; ++w) {
    int code = workers_[w]->wait_for(settings_.progress_wait);
    if (code != 0) fail("worker ", w, " did not stop cleanly (status ", code, "): ", controls_[w].error);
    ledger_.follow(log_[w], true);
  }
  stage_ = "final verify";
  verify_acknowledged();
  stage_ = "final shmctl check";
  require_check_clean();
  require_waits_bounded();
  count_recoveries(store_->stats());
}

// ---- checks ----

void Supervisor::verify_acknowledged() {
  for (int w = 0; w < kWorkers; ++w) ledger_.follow(log_[w], false);
  std::string problem = verify_ledger(*store_, ledger_, figures_.session_reads, figures_.longest_supervisor_read);
  if (!problem.empty()) fail(problem);
  ++figures_.verifications;
}

void Supervisor::require_progress() {
  std::array<std::uint64_t, kWorkers> base{};
  for (int w = 0; w < kWorkers; ++w) base[w] = controls_[w].acks.load();
  auto start = Clock::now();
  for (;;) {
    bool all = true;
    for (int w = 0; w < kWorkers; ++w) {
      require_running(w);
      all = all && controls_[w].acks.load() >= base[w] + kProgressAcks;
    }
    if (all) break;
    if (Clock::now() - start >= settings_.progress_wait) {
      std::ostringstream who;
      for (int w = 0; w < kWorkers; ++w) {
        bool stuck = controls_[w].acks.load() < base[w] + kProgressAcks;
        who << " w" << w << "+" << controls_[w].acks.load() - base[w] << " (" << describe_current_op(controls_[w])
            << ")";
        if (stuck) std::cout << debugger_view(workers_[w]->pid(), "worker " + std::to_string(w));
      }
      std::cout << threads_view() << std::flush;
      fail("workers blocked: new acks within ", settings_.progress_wait.count(), " ms:", who.str());
    }
    std::this_thread::sleep_for(1ms);
  }
  figures_.slowest_progress = std::max<std::chrono::nanoseconds>(figures_.slowest_progress, Clock::now() - start);
}

// The end of a round is where a long wait is pinned to a kill mode.
void Supervisor::require_waits_bounded() {
  for (int w = 0; w < kWorkers; ++w) {
    auto longest = std::chrono::nanoseconds(controls_[w].longest_op_ns.load());
    if (longest >= kLongestWaitAllowed)
      fail("worker ", w, " waited ", ms(longest), " ms (", op_kind_name(controls_[w].longest_op_kind.load()),
           "; its stderr line says on what)");
  }
}

void Supervisor::require_check_clean() {
  CommandResult first = run_check();
  if (check_is_clean(first)) {
    ++figures_.checks;
    return;
  }
  std::this_thread::sleep_for(200ms);
  CommandResult again = run_check();
  fail("shmctl check is not clean (exit ", first.exit_code, "): ", first.out, first.err, "; 200 ms later (exit ",
       again.exit_code, "): ", again.out, again.err);
}

CommandResult Supervisor::run_check() { return run_command({SHMCTL_PATH, "check", "--json", name_}, {}, 60s); }

// A rebuild may start the counters of the new generation afresh:
// accumulate what each sample adds either way.
void Supervisor::count_recoveries(const StoreStats& now) {
  auto added = [](std::uint64_t then, std::uint64_t later) { return later >= then ? later - then : later; };
  figures_.shard_repairs += added(last_stats_.lock_recoveries, now.lock_recoveries);
  figures_.locks_revoked += added(last_stats_.lock_revocations, now.lock_revocations);
  last_stats_ = now;
}

std::string Supervisor::context() const {
  std::ostringstream s;
  s << "seed " << settings_.seed << ", round " << round_ << "/" << figures_.rounds_planned << " ("
    << kill_mode_name(mode_) << ", worker " << victim_ << "), " << stage_ << ", after " << figures_.kills
    << " kills; worker pids";
  for (const auto& w : workers_) s << " " << (w ? w->pid() : 0);
  return s.str();
}

}  // namespace shmsession::test::crash
