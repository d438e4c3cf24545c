// The supervisor of the kill campaign (issue 6): runs the writer workers
// (test/crash/campaign_worker.hpp), kills one per round, restarts it, and
// checks after every kill the promises a user relies on.
//
// A round: pick a worker and a kill mode (plan_rounds), SIGKILL the worker
// (KillMode says where), then require that
//   - every commit acknowledged in any ack log (the killed worker's
//     included) is readable: the session exists at the acknowledged version
//     or later, holds the acknowledged value at that version, and is not
//     torn (test/crash/campaign_values.hpp);
//   - after the victim is restarted, every worker acknowledges new commits
//     within CampaignSettings::progress_wait, and none has exited;
//   - the same verification once more (a rebuild may have run meanwhile);
//   - `shmctl check --json NAME` says "clean": true;
//   - no worker's store call took kLongestWaitAllowed or more (a bound to
//     fail instead of hang, far above any healthy wait even on a loaded
//     machine; the longest wait is printed as a figure).
// After the last round every worker is asked to stop and must exit 0; the
// quiet store is verified and checked once more.
//
// Thread safety: one thread (the test's). The workers and the stall
// reporter are forked from it; its destructor SIGKILLs and reaps them.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "shm/detail/test_hooks.hpp"
#include "shm/store.hpp"
#include "test/crash/ack_log.hpp"
#include "test/crash/campaign_worker.hpp"
#include "test/support/test_support.hpp"

namespace shmsession::test::crash {

inline constexpr int kWorkers = 4;
// Below the store's default lock lease (30 s): a waiter stuck behind a
// holder that is neither dead nor releasing fails here before the lease
// would hide it by revoking the lock.
inline constexpr auto kLongestWaitAllowed = std::chrono::seconds(15);

enum class KillMode {
  Random,               // after 0-30 ms, wherever the worker is
  BeforePublish,        // parked at kCommitBeforePublish (a commit's shard critical section)
  AfterPublish,         // parked at kCommitAfterPublish
  TableGrow,            // parked at kTableGrow (the worker creates sessions until a table grows)
  InsideAllocator,      // parked holding Boost's allocator mutex: poisons it, survivors rebuild
  InsideIndex,          // killed at random, restarted parked holding the named-object index mutex
  RebuildBeforeRename,  // an allocator kill, then the survivor that rebuilds, at kRebuildBeforeRename
  RebuildAfterRename,   // the same at kRebuildAfterRename
  HandOver,             // parked at kLockHandOver (releasing a process lock others wait for)
  LockStateTaken,       // parked at kLockStateTaken (a lock state's slot off the free list, unreferenced)
  LockStateGivenBack,   // parked at kLockStateGivenBack (a slot unreferenced, not yet free)
};
inline constexpr int kKillModes = 11;

// "random", "before-publish", "after-publish", "table-grow", "allocator",
// "index", "rebuild-before-rename", "rebuild-after-rename", "hand-over",
// "lock-state-taken", "lock-state-given-back".
const char* kill_mode_name(KillMode mode) noexcept;
std::optional<KillMode> kill_mode_named(std::string_view name) noexcept;
// Kills one round of the mode makes (index and rebuild rounds make two).
int kills_per_round(KillMode mode) noexcept;

struct CampaignSettings {
  int kills = 200;  // at least
  std::uint64_t seed = 0;
  std::array<bool, kKillModes> enabled{};
  // Bounds to fail instead of hang; the slowest return to progress is a figure.
  std::chrono::milliseconds progress_wait{60000};  // for every worker's new acks after a kill
  std::chrono::milliseconds park_wait{60000};      // for an armed worker to reach its hook
};

// The rounds' kill modes: max(3, kills/25) rounds of each enabled hook
// mode, then random rounds until `kills` kills, shuffled; table-grow rounds
// (at most 12) come first, while the session tables are small, since each
// grow doubles the sessions the next one needs.
std::vector<KillMode> plan_rounds(const CampaignSettings& settings, std::mt19937_64& rng);

// Reads every session `ledger` expects and returns the first broken
// promise: a session gone, older than acknowledged, holding another value
// at the acknowledged version, torn or damaged; empty if none. Adds to
// `reads` the sessions read and keeps in `longest_read` the slowest.
std::string verify_ledger(const Store& store, const AckLedger& ledger, std::uint64_t& reads,
                          std::chrono::nanoseconds& longest_read);

// What a campaign did, so far if it failed.
struct CampaignFigures {
  std::uint64_t seed = 0;
  int rounds_planned = 0;
  int rounds_run = 0;
  int kills = 0;
  std::array<int, kKillModes> kills_by_mode{};
  std::array<std::uint64_t, kKillModes> rebuilds_after{};  // generations added during rounds of each mode
  std::uint64_t shard_repairs = 0;                         // StoreStats::lock_recoveries, summed over generations
  std::uint64_t locks_revoked = 0;                         // StoreStats::lock_revocations, summed over generations
  std::uint64_t generation = 0;                            // rebuilds = generation - 1
  std::uint64_t ack_records = 0;                           // acknowledged creations and commits read from the logs
  std::uint64_t acked_sessions = 0;
  std::uint64_t truncated_acks = 0;  // last lines a SIGKILL cut (ignored)
  std::uint64_t verifications = 0;   // passes over every acknowledged session
  std::uint64_t session_reads = 0;
  std::uint64_t checks = 0;      // shmctl check runs, each clean
  std::uint64_t worker_ops = 0;  // timed store calls of every worker
  std::uint64_t retries = 0;     // StaleToken / LockTimeout, retried
  std::chrono::nanoseconds longest_wait{0};
  int longest_wait_worker = 0;
  int longest_wait_kind = 0;                     // an OpKind
  std::chrono::nanoseconds slowest_progress{0};  // from a restart to every worker's new acks
  std::chrono::nanoseconds longest_supervisor_read{0};
  std::chrono::nanoseconds elapsed{0};
  std::uint64_t sessions_at_end = 0;
  std::uint64_t used_bytes_at_end = 0;
};

// The figures as the test prints them, a few lines.
std::string format_figures(const CampaignFigures& figures);

// A broken promise: what, where (seed, round, mode, victim, stage, pids).
class CampaignFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Supervisor {
 public:
  // Creates the store (64 MiB, 4 shards, change log 1024, no expiry) with
  // its shared and client sessions. `log_dir` receives the ack logs.
  Supervisor(std::string store_name, const CampaignSettings& settings, std::string log_dir);
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Runs every round. Throws: CampaignFailure at the first broken promise.
  void run();
  CampaignFigures figures();

 private:
  void start_worker(int w, std::optional<shm::detail::HookPoint> armed, int passes);
  void arm(int w, shm::detail::HookPoint point, int passes);
  void require_running(int w);
  void kill_worker(int w, KillMode how);
  int wait_parked(const std::vector<int>& candidates, shm::detail::HookPoint point);
  void kill_at_random_moment(int w);
  void kill_at_hook(int w, shm::detail::HookPoint point, int passes, KillMode mode);
  int kill_a_rebuilder(int w, KillMode mode);
  void run_round(KillMode mode);
  void stop_workers();

  void verify_acknowledged();
  void require_progress();
  void require_waits_bounded();
  void require_check_clean();
  CommandResult run_check();
  void count_recoveries(const StoreStats& now);

  std::string context() const;
  template <class... Parts>
  [[noreturn]] void fail(const Parts&... parts) const {
    std::ostringstream text;
    text << context() << ": ";
    (text << ... << parts);
    throw CampaignFailure(text.str());
  }

  const std::string name_;
  const CampaignSettings settings_;
  const std::string log_dir_;
  std::mt19937_64 rng_;
  SharedControls controls_;
  Signal parked_;  // every worker's hook pokes this one
  std::optional<Store> store_;
  AckLedger ledger_;
  std::unique_ptr<ChildProcess> stall_reporter_;
  std::vector<std::unique_ptr<ChildProcess>> workers_;
  std::vector<int> incarnation_;
  std::vector<std::string> log_;

  // Where the campaign is, for messages.
  int round_ = 0;
  int victim_ = 0;
  KillMode mode_ = KillMode::Random;
  const char* stage_ = "setup";

  CampaignFigures figures_;
  std::chrono::steady_clock::time_point started_;
  StoreStats last_stats_;
};

}  // namespace shmsession::test::crash
