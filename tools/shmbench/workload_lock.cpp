#include "tools/shmbench/workload_lock.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <numeric>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "shm/store.hpp"
#include "tools/shmbench/fork_shared.hpp"
#include "tools/shmbench/lock_report.hpp"
#include "tools/shmbench/lock_rounds.hpp"
#include "tools/shmbench/process_group.hpp"
#include "tools/shmbench/redis_session_lock.hpp"
#include "tools/shmbench/scratch_store.hpp"
#include "tools/shmbench/session_fill.hpp"
#include "tools/shmbench/session_shape.hpp"

namespace shmsession::bench {

// The helpers in a namespace of their own: the other workloads, compiled in
// the same unity batch, have helpers of the same names.
namespace lock_workload {
namespace {

constexpr std::string_view kName = "lock";
constexpr std::uint64_t kSegmentBytes = std::uint64_t{64} << 20;
// The holder's read and the contended commit, on both sides.
constexpr std::string_view kReadAttribute = "user";     // 64 B
constexpr std::string_view kCommitAttribute = "flags";  // 16 B
constexpr std::size_t kCommitBytes = kShapeAttributes[2].bytes;
static_assert(kShapeAttributes[2].name == kCommitAttribute);
constexpr std::array<std::string_view, 1> kReadNames = {kReadAttribute};
constexpr int kHandoffProcesses = 2;
constexpr int kContendedProcesses = 4;
static_assert(kContendedProcesses <= kMaxLockWorkers);
constexpr auto kAcquireTimeout = std::chrono::milliseconds{10'000};
constexpr auto kPhaseTimeout = std::chrono::seconds{120};
// Attempts phpredis makes before it gives up on the lock (lock_acquire).
constexpr std::uint64_t kPhpredisAttempts = kPhpredisLockRetries + 1;

struct LockConfig {
  std::chrono::milliseconds uncontended_time{0};
  std::chrono::milliseconds warmup_time{0};  // untimed, before the uncontended loop
  std::uint64_t our_handoff_rounds = 0;      // per worker; each round receives one handoff
  std::uint64_t redis_handoff_rounds = 0;    // each costs ~lock_wait_time
  std::chrono::milliseconds contended_time{0};
  std::uint64_t seed = 0;
};

LockConfig lock_config(const RunOptions& options) {
  LockConfig config;
  config.uncontended_time = std::chrono::milliseconds{options.quick ? 250 : 2000};
  config.warmup_time = std::chrono::milliseconds{200};
  config.our_handoff_rounds = options.quick ? 1000 : 10'000;
  config.redis_handoff_rounds = options.quick ? 10 : 100;
  config.contended_time = std::chrono::milliseconds{options.quick ? 250 : 3000};
  config.seed = options.seed;
  return config;
}

void nap() { std::this_thread::sleep_for(std::chrono::microseconds{50}); }

// --- the two sides (see lock_rounds.hpp) ---------------------------------

class OurLockSide {
 public:
  explicit OurLockSide(const std::string& store_name) : store_(Store::attach(store_name)), id_(session_id(0)) {
    commit_.put(std::string(kCommitAttribute), filler_value(kCommitBytes, 'f'));
  }

  std::uint64_t acquire() {
    token_ = store_.acquire(id_, kAcquireTimeout);
    return 1;  // a waiter queues: one attempt, however long it waits
  }
  void release() { store_.release(id_, token_); }
  void wait_for_waiter() {
    while (!store_.release_requested(id_, token_)) std::this_thread::yield();
  }
  void work() {
    if (!store_.read_into(id_, token_, kReadNames, snapshot_) || snapshot_.attributes.size() != 1)
      throw std::runtime_error("read of " + id_ + " with its token did not return " + std::string(kReadAttribute));
  }
  void read_and_commit(std::uint64_t stamp) {
    work();
    stamp_value(commit_.puts.front().value, stamp);
    store_.commit(id_, token_, commit_);
  }

 private:
  Store store_;
  std::string id_;
  LockToken token_{};
  SessionSnapshot snapshot_;
  CommitBatch commit_;
};

class RedisLockSide {
 public:
  // `board`: the handoff's, or nullptr in the other loops.
  RedisLockSide(int port, HandoffBoard* board, int self, std::uint64_t seed)
      : redis_(RedisConnection::connect(port)),
        key_(session_id(0)),
        lock_(redis_, key_),
        value_(filler_value(kCommitBytes, 'f')),
        board_(board),
        self_(self),
        random_(seed ^ static_cast<std::uint64_t>(self)) {}
  // lock_ refers to redis_: never copied or moved (built in place).
  RedisLockSide(const RedisLockSide&) = delete;
  RedisLockSide& operator=(const RedisLockSide&) = delete;

  std::uint64_t acquire() {
    if (board_ == nullptr) return lock_.acquire();
    // Ping-pong: a client that just released would win its own lock back at
    // once (nothing queues), so it tries only after the other one had it.
    while (board_->holder.load(std::memory_order_acquire) == self_) nap();
    return lock_.acquire(&board_->waiting[static_cast<std::size_t>(self_)]);
  }
  void release() { lock_.release(); }
  // Returns once the other client was refused, at a random point of its
  // retry interval, as when a request arrives at a random time.
  void wait_for_waiter() {
    while (board_->waiting[static_cast<std::size_t>(1 - self_)].load(std::memory_order_acquire) == 0) nap();
    std::this_thread::sleep_for(std::chrono::microseconds(random_.below(kPhpredisLockWaitTime.count())));
  }
  void work() {
    const RedisReplyPtr reply = redis_.command({"HGET", key_, kReadAttribute});
    if (reply->type != REDIS_REPLY_STRING) throw std::runtime_error("redis: HGET of " + key_ + " found nothing");
  }
  void read_and_commit(std::uint64_t stamp) {
    work();
    stamp_value(value_, stamp);
    if (redis_.command({"HSET", key_, kCommitAttribute, value_})->type != REDIS_REPLY_INTEGER)
      throw std::runtime_error("redis: HSET did not answer an integer");
  }

 private:
  RedisConnection redis_;
  std::string key_;
  RedisSessionLock lock_;  // uses redis_: declared after it
  std::string value_;
  HandoffBoard* board_;
  int self_;
  SplitMix64 random_;
};

// --- the three loops, for either side -------------------------------------

struct ContendedOutcome {
  ThroughputRow row;
  std::uint64_t fewest_cycles = 0;  // of one process
  std::uint64_t most_cycles = 0;
  std::uint64_t over_limit = 0;  // acquisitions past phpredis's attempt limit
  double longest_cycle_ms = 0;
};

struct SystemFigures {
  std::vector<ThroughputRow> rows;  // uncontended, handoff, contended
  ContendedOutcome contended;
};

template <class MakeSide>
ThroughputRow run_uncontended(const LockConfig& config, std::string_view system, MakeSide& make_side) {
  const LoopResult loop = run_in_processes(
      1,
      [&](WorkerContext& ctx) {
        auto side = make_side(ctx, nullptr);
        measure_uncontended(ctx, side, config.warmup_time, config.uncontended_time);
      },
      kPhaseTimeout);
  return throughput_row(std::string(kUncontendedOperation), system, loop);
}

template <class MakeSide>
ThroughputRow run_handoff(std::uint64_t rounds, std::string_view system, MakeSide& make_side) {
  ForkShared<HandoffBoard> board;
  const LoopResult loop = run_in_processes(
      kHandoffProcesses,
      [&](WorkerContext& ctx) {
        auto side = make_side(ctx, &*board);
        measure_handoffs(ctx, side, *board, rounds / 10, rounds);
      },
      kPhaseTimeout);
  LatencyHistogram handoffs = board->handoff[0];
  handoffs.merge(board->handoff[1]);
  ThroughputRow row{std::string(kHandoffOperation), std::string(system), kHandoffProcesses};
  row.measured = true;
  row.ops = handoffs.count();
  row.wall_s = loop.wall_s;
  row.ops_per_s = loop.ops_per_s();  // handoffs/s of the whole ping-pong, warm-up included
  row.p50_us = handoffs.percentile_ns(0.50) / 1000.0;
  row.p99_us = handoffs.percentile_ns(0.99) / 1000.0;
  return row;
}

template <class MakeSide>
ContendedOutcome run_contended(const LockConfig& config, std::string_view system, MakeSide& make_side) {
  ForkShared<ContendedBoard> board;
  const LoopResult loop = run_in_processes(
      kContendedProcesses,
      [&](WorkerContext& ctx) {
        auto side = make_side(ctx, nullptr);
        measure_contended(ctx, side, *board, config.contended_time, kPhpredisAttempts);
      },
      kPhaseTimeout);
  ContendedOutcome outcome{throughput_row(std::string(kContendedOperation), system, loop)};
  const auto cycles = std::span(board->cycles).first(kContendedProcesses);
  const auto over = std::span(board->over_limit).first(kContendedProcesses);
  outcome.fewest_cycles = *std::min_element(cycles.begin(), cycles.end());
  outcome.most_cycles = *std::max_element(cycles.begin(), cycles.end());
  outcome.over_limit = std::accumulate(over.begin(), over.end(), std::uint64_t{0});
  outcome.longest_cycle_ms = static_cast<double>(loop.latency.max_ns()) / 1e6;
  return outcome;
}

template <class MakeSide>
SystemFigures measure_system(const LockConfig& config, const RunOptions& options, std::string_view system,
                             std::uint64_t handoff_rounds, MakeSide make_side) {
  const std::string who(system);
  SystemFigures figures;
  progress(options, kName, who + ": uncontended acquire+release, 1 process");
  figures.rows.push_back(run_uncontended(config, system, make_side));
  progress(options, kName, who + ": handoff, 2 processes, " + std::to_string(2 * handoff_rounds) + " handoffs");
  figures.rows.push_back(run_handoff(handoff_rounds, system, make_side));
  progress(options, kName, who + ": contended, " + std::to_string(kContendedProcesses) + " processes");
  figures.contended = run_contended(config, system, make_side);
  figures.rows.push_back(figures.contended.row);
  return figures;
}

SystemFigures measure_ours(const LockConfig& config, const RunOptions& options) {
  ScratchStore scratch(kName, kSegmentBytes);
  fill_store(scratch.store(), 0, 1);
  const std::string& name = scratch.name();
  return measure_system(config, options, kOurSystem, config.our_handoff_rounds,
                        [&](WorkerContext&, HandoffBoard*) { return OurLockSide(name); });
}

SystemFigures measure_redis(const LockConfig& config, const RunOptions& options, const RedisServer& server) {
  {
    RedisConnection redis = RedisConnection::connect(server.port());
    redis.command({"FLUSHALL"});
    load_redis(redis, 0, 1);
    RedisSessionLock::load_release_script(redis);
  }
  const int port = server.port();
  return measure_system(
      config, options, kRedisSystem, config.redis_handoff_rounds,
      [&](WorkerContext& ctx, HandoffBoard* board) { return RedisLockSide(port, board, ctx.index(), config.seed); });
}

// --- the report -----------------------------------------------------------

std::string fixed(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return text;
}

void describe(BenchReport& report, const LockConfig& config) {
  report.description = "the process lock of one session (" + session_id(0) +
                       "): uncontended acquire+release; handoff "
                       "latency between 2 processes (release -> acquire returns, CLOCK_MONOTONIC); 4 processes each "
                       "acquire, read " +
                       std::string(kReadAttribute) + ", commit " + std::string(kCommitAttribute) + " (" +
                       std::to_string(kCommitBytes) + " B), release. Redis: phpredis's session-lock recipe";
  report.parameters = {{"uncontended_s", std::chrono::duration<double>(config.uncontended_time).count()},
                       {"handoffs", 2 * config.our_handoff_rounds},
                       {"redis_handoffs", 2 * config.redis_handoff_rounds},
                       {"contended_s", std::chrono::duration<double>(config.contended_time).count()},
                       {"contended_procs", kContendedProcesses},
                       {"lock_wait_time_us", kPhpredisLockWaitTime.count()},
                       {"lock_retries", kPhpredisLockRetries},
                       {"seed", config.seed}};
}

std::string contended_summary(std::string_view system, const ContendedOutcome& c) {
  return std::string(system) + " " + std::to_string(c.fewest_cycles) + ".." + std::to_string(c.most_cycles) +
         " cycles per process, longest cycle " + fixed(c.longest_cycle_ms, 2) + " ms";
}

void add_notes(BenchReport& report, const SystemFigures& ours, const std::optional<SystemFigures>& theirs) {
  report.notes.push_back(
      "redis recipe (phpredis redis_session.c): SET lock:<session> <hostname|pid> NX PX " +
      std::to_string(kLockExpireMs) + ", retried every " + std::to_string(kPhpredisLockWaitTime.count()) +
      " us (redis.session.lock_wait_time default 20000 us, lock_retries default 100: phpredis redis.c INI "
      "entries and README); release EVALSHA " +
      std::string(kReleaseScriptSha) + " (phpredis's compare-and-delete script, SCRIPT LOAD once; EVAL on NOSCRIPT)");
  report.notes.push_back(
      "handoff: a shmsession waiter sleeps on a futex and the release wakes it; a redis waiter polls, "
      "so its wait is the rest of its 20 ms retry interval (the holder releases at a random point of it)");
  report.notes.push_back("uncontended figures include one clock read per cycle (the loop's timing)");
  std::string contended = "contended: " + contended_summary(kOurSystem, ours.contended) + " (FIFO queue)";
  if (theirs) {
    contended += "; " + contended_summary(kRedisSystem, theirs->contended) +
                 "; redis acquisitions needing more "
                 "than " +
                 std::to_string(kPhpredisAttempts) +
                 " attempts (phpredis would give up): " + std::to_string(theirs->contended.over_limit);
  }
  report.notes.push_back(contended);
}

std::vector<ThroughputRow> pair_rows(const SystemFigures& ours, const std::optional<SystemFigures>& theirs) {
  std::vector<ThroughputRow> rows;
  for (std::size_t i = 0; i < ours.rows.size(); ++i) {
    rows.push_back(ours.rows[i]);
    rows.push_back(theirs ? theirs->rows[i]
                          : unavailable_row(ours.rows[i].operation, kRedisSystem, ours.rows[i].processes));
  }
  return rows;
}

}  // namespace
}  // namespace lock_workload

BenchReport run_lock(const RunOptions& options) {
  using namespace lock_workload;
  BenchReport report = start_report(kName, options);
  const LockConfig config = lock_config(options);
  describe(report, config);
  std::optional<RedisServer> peer = start_redis_peer(options, report);

  const SystemFigures ours = measure_ours(config, options);
  std::optional<SystemFigures> theirs;
  if (peer) theirs = measure_redis(config, options, *peer);
  report.results = pair_rows(ours, theirs);
  add_notes(report, ours, theirs);

  if (peer) peer->stop();
  progress(options, kName, "done");
  return report;
}

}  // namespace shmsession::bench
