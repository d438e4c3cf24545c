#include "tools/shmbench/workload_replicate.hpp"

#include <hiredis/hiredis.h>
#include <sys/prctl.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "shm/agent_seat.hpp"
#include "shm/change_feed.hpp"
#include "shm/replica.hpp"
#include "sync/backup/agent.hpp"
#include "tools/shmbench/fork_shared.hpp"
#include "tools/shmbench/lag_prober.hpp"
#include "tools/shmbench/our_backup.hpp"
#include "tools/shmbench/process_group.hpp"
#include "tools/shmbench/redis_replica.hpp"
#include "tools/shmbench/replicate_plan.hpp"
#include "tools/shmbench/replicate_report.hpp"
#include "tools/shmbench/scratch_store.hpp"
#include "tools/shmbench/session_shape.hpp"

namespace shmsession::bench {

// The helpers in a namespace of their own: the other workloads, compiled in
// the same unity batch, have helpers of the same names.
namespace replicate_workload {
namespace {

constexpr std::string_view kName = "replicate";
constexpr auto kPhaseTimeout = std::chrono::seconds{120};
constexpr auto kSyncTimeout = std::chrono::seconds{60};      // initial resync / sync, settled status
constexpr auto kCatchUpTimeout = std::chrono::seconds{120};  // the backup after the writers
constexpr std::uint64_t kSegmentBase = std::uint64_t{64} << 20;
// Segment bytes reserved per session; pages cost memory only when touched.
constexpr std::uint64_t kSegmentPerSession = 8192;
// Segment bytes per change-log entry: the entry (152 B) with room to spare.
constexpr std::uint64_t kSegmentPerLogEntry = 256;

double seconds(std::chrono::nanoseconds span) { return std::chrono::duration<double>(span).count(); }

// Each commit's value differs from every earlier one: run, writer, position.
std::uint64_t stamp_base(int run, const WorkerContext& ctx) {
  return (static_cast<std::uint64_t>(run) << 48) | (static_cast<std::uint64_t>(ctx.index()) << 40);
}

// Holds a writer to `per_s` commits a second (0: no pacing): wait() returns
// at the next slot, at once when behind.
class Pacer {
 public:
  explicit Pacer(std::uint32_t per_s) : gap_ns_(per_s > 0 ? 1'000'000'000u / per_s : 0), next_ns_(monotonic_ns()) {
    if (gap_ns_ > 0) ::prctl(PR_SET_TIMERSLACK, 1UL);  // this writer process only
  }
  void wait() noexcept {
    if (gap_ns_ == 0) return;
    const timespec at{static_cast<time_t>(next_ns_ / 1'000'000'000u), static_cast<long>(next_ns_ % 1'000'000'000u)};
    while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, nullptr) == EINTR) {
    }
    next_ns_ += gap_ns_;
  }

 private:
  std::uint64_t gap_ns_;
  std::uint64_t next_ns_;
};

// Runs op(k, false) untimed for the warm-up time, then (the prober starting
// now, if there is one) measures op(k, true) for the loop time, continuing
// the sequence; both at the mix's pace.
template <class Op>
void warm_then_measure(WorkerContext& ctx, const ReplicateConfig& config, const WriterMix& mix, WriterLine* line,
                       Op&& op) {
  Pacer pacer(mix.per_s / static_cast<std::uint32_t>(mix.writers));
  const std::uint64_t warmup_end =
      monotonic_ns() + static_cast<std::uint64_t>(std::chrono::nanoseconds(config.warmup_time).count());
  std::uint64_t k = 0;
  while (monotonic_ns() < warmup_end) {
    pacer.wait();
    op(k++, false);
  }
  if (line != nullptr) line->ready.fetch_add(1, std::memory_order_acq_rel);
  ctx.measure_for(config.loop_time, [&](std::uint64_t i) {
    pacer.wait();
    op(k + i, true);
  });
}

std::string operation(std::string_view what, const WriterMix& mix) {
  return std::string(what) + (mix.per_s > 0 ? " at " + std::to_string(mix.per_s) + "/s" : "");
}

// Commits a second of a measured loop whose `refused` attempts (a
// replication bound) committed nothing.
double committed_per_s(const LoopResult& loop, std::uint64_t refused) {
  if (loop.ops == 0) return 0;
  const double committed = static_cast<double>(loop.ops - std::min(refused, loop.ops));
  return loop.ops_per_s() * committed / static_cast<double>(loop.ops);
}

// Redis's refusal of a write while too few replicas are within
// min-replicas-max-lag (RedisConnection throws error replies).
bool is_noreplicas(const std::exception& e) {
  return std::string_view(e.what()).find("NOREPLICAS") != std::string_view::npos;
}

ReplicationRow lag_row(std::string_view system, int writers, std::uint32_t per_s, const LagResult& lag) {
  ReplicationRow row{std::string(system), writers, per_s};
  row.measured = true;
  row.lag_samples = lag.lag.count();
  row.lag_unseen = lag.unseen;
  row.lag_p50_us = lag.lag.percentile_ns(0.50) / 1000.0;
  row.lag_p99_us = lag.lag.percentile_ns(0.99) / 1000.0;
  row.lag_max_us = static_cast<double>(lag.lag.max_ns()) / 1000.0;
  return row;
}

// What one side measured: its rows, and the per-commit figures of its loops.
struct SideFigures {
  std::vector<ReplicationRow> rows;
  std::vector<ThroughputRow> loops;
};

// The lag of an otherwise idle primary: the prober alone for a while.
ReplicationRow probe_only(std::string_view system, const ReplicateConfig& config, LagProber::Probe probe,
                          LagProber::Position position) {
  const WriterLine line;
  LagProber prober(line, 0, config.probe, std::move(probe), std::move(position));
  std::this_thread::sleep_for(config.probe_only_time);
  return lag_row(system, 0, 0, prober.finish());
}

// --- shmsession ---------------------------------------------------------

// Commits counted by the writers of a phase and by its prober (the prober
// runs in the benchmark process, the writers in forked children).
struct PhaseCounts {
  std::atomic<std::uint64_t> refused{0};  // writes a replication bound refused, in the measured loop
};

// A probe's mark is the change sequence after its commit: the standby has
// it once its applied position reaches that. A commit a replication bound
// refused has no mark (0), and is counted.
LagProber::Probe our_probe(Store& primary, PhaseCounts* counts = nullptr) {
  CommitBatch batch;
  batch.put(std::string(kProbeAttribute), "");
  return [&primary, batch, counts](std::uint64_t n) mutable -> std::uint64_t {
    batch.puts.front().value = std::to_string(n);
    try {
      primary.commit(kProbeSession, batch);
    } catch (const Error& e) {
      if (e.code() != Errc::ReplicaBehind || counts == nullptr) throw;
      counts->refused.fetch_add(1, std::memory_order_relaxed);
      return 0;
    }
    return ChangeFeed(primary).next_seq();
  };
}

LagProber::Position our_position(Store& standby) {
  return [&standby] { return Replica(standby).position().applied_seq; };
}

LoopResult our_writers(const ReplicatePlan& plan, const std::string& store_name, const WriterMix& mix, int run,
                       WriterLine* line, PhaseCounts* counts = nullptr) {
  return run_in_processes(
      mix.writers,
      [&](WorkerContext& ctx) {
        Store store = Store::attach(store_name);
        const WriterInputs inputs = plan.writer_inputs(ctx.count(), ctx.index());
        CommitBatch batch;
        batch.put(plan.attribute(0), plan.value(0));
        AttributeWrite& put = batch.puts.front();
        const std::uint64_t base = stamp_base(run, ctx);
        warm_then_measure(ctx, plan.config(), mix, line, [&](std::uint64_t k, bool measured) {
          const WriterStep& step = inputs.step_at(k);
          put.name = plan.attribute(step.attribute);
          put.value = plan.value(step.value);
          stamp_value(put.value, base | k);
          try {
            store.commit(inputs.ids[step.session], batch);
          } catch (const Error& e) {
            if (e.code() != Errc::ReplicaBehind || counts == nullptr) throw;
            if (measured) counts->refused.fetch_add(1, std::memory_order_relaxed);
          }
        });
      },
      kPhaseTimeout);
}

ReplicationRow our_replicated(const ReplicatePlan& plan, ScratchStore& primary_scratch, Store& standby,
                              OurBackup& backup, const WriterMix& mix, int run, const LoopResult& alone,
                              std::vector<ThroughputRow>& loops) {
  Store& primary = primary_scratch.store();
  const std::uint64_t start = ChangeFeed(primary).next_seq();
  const AgentStatus before = backup.settled_status(primary, start, kSyncTimeout);
  const std::uint64_t waits_before = primary.stats().bound_waits;
  ForkShared<WriterLine> line;
  ForkShared<PhaseCounts> counts;
  LoopResult loop;
  LagResult lag;
  std::uint64_t writers_end = 0;
  if (mix.bound_ms > 0) primary.set_replication_bound(ReplicationBound{mix.bound_ms, mix.bound_ms});
  {
    LagProber prober(*line, mix.writers, plan.config().probe, our_probe(primary, &*counts), our_position(standby));
    loop = our_writers(plan, primary_scratch.name(), mix, run, &*line, &*counts);
    writers_end = monotonic_ns();
    lag = prober.finish();
  }
  if (mix.bound_ms > 0) primary.set_replication_bound(ReplicationBound{});
  const std::uint64_t target = ChangeFeed(primary).next_seq();
  backup.wait_applied(primary, standby, target, kCatchUpTimeout);
  const std::uint64_t caught_up = monotonic_ns();
  const AgentStatus after = backup.settled_status(primary, target, kSyncTimeout);

  ReplicationRow row = lag_row(kOurSystem, mix.writers, mix.per_s, lag);
  row.bound_ms = mix.bound_ms;
  row.bound_waits = primary.stats().bound_waits - waits_before;
  row.writes_refused = counts->refused.load();
  row.commits_per_s_alone = alone.ops_per_s();
  row.commits_per_s_replicated = committed_per_s(loop, row.writes_refused);
  row.commits_shipped = target - start;
  row.wire_bytes = after.wire_bytes - before.wire_bytes;
  row.delta_bytes = after.delta_bytes - before.delta_bytes;
  row.frames = after.frames_sent - before.frames_sent;
  if (row.commits_shipped > 0)
    row.whole_bytes_per_commit =
        static_cast<double>(after.whole_bytes - before.whole_bytes) / static_cast<double>(row.commits_shipped);
  row.catch_up_s = static_cast<double>(caught_up - writers_end) / 1e9;
  row.full_resyncs = after.full_resyncs - before.full_resyncs;
  row.reconnects = after.reconnects - before.reconnects;
  row.backup_difference = first_difference(primary, standby);
  row.backup_equal = row.backup_difference.empty();
  loops.push_back(throughput_row(operation("commit, backup attached", mix), kOurSystem, loop));
  return row;
}

SideFigures measure_ours(const ReplicatePlan& plan, const RunOptions& options, BenchReport& report) {
  const ReplicateConfig& config = plan.config();
  CreateOptions primary_options;
  primary_options.size_bytes = kSegmentBase + config.sessions * kSegmentPerSession +
                               std::uint64_t{config.change_log_capacity} * kSegmentPerLogEntry;
  primary_options.change_log_capacity = config.change_log_capacity;
  ScratchStore primary("replicate_primary", primary_options);
  progress(options, kName, "shmsession: filling " + std::to_string(config.sessions) + " sessions");
  plan.fill(primary.store());

  SideFigures figures;
  std::vector<LoopResult> alone;
  int run = 0;
  for (const WriterMix& mix : config.mixes) {
    progress(options, kName, "shmsession: commits, no backup, writers " + mix.label());
    alone.push_back(our_writers(plan, primary.name(), mix, ++run, nullptr));
    figures.loops.push_back(throughput_row(operation("commit, no backup", mix), kOurSystem, alone.back()));
  }

  ScratchStore standby("replicate_standby", kSegmentBase + config.sessions * kSegmentPerSession);
  progress(options, kName, "shmsession: starting the backup daemon and the sync agent");
  const bool verbose = options.progress;
  OurBackup backup(primary.name(), standby.name(), [verbose](const std::string& line) {
    if (verbose) std::fprintf(stderr, "shmbench: replicate: [backup] %s\n", line.c_str());
  });
  const std::chrono::nanoseconds resync =
      backup.wait_applied(primary.store(), standby.store(), ChangeFeed(primary.store()).next_seq(), kSyncTimeout);
  report.parameters["initial_resync_s"] = seconds(resync);
  progress(options, kName, "shmsession: probes only, backup attached");
  figures.rows.push_back(probe_only(kOurSystem, config, our_probe(primary.store()), our_position(standby.store())));
  for (std::size_t i = 0; i < config.mixes.size(); ++i) {
    progress(options, kName, "shmsession: commits, backup attached, writers " + config.mixes[i].label());
    figures.rows.push_back(
        our_replicated(plan, primary, standby.store(), backup, config.mixes[i], ++run, alone[i], figures.loops));
  }
  if (const std::string how = backup.stop(); !how.empty()) report.notes.push_back("on stopping: " + how);
  return figures;
}

// --- Redis --------------------------------------------------------------

LoopResult redis_writers(const ReplicatePlan& plan, int port, const WriterMix& mix, int run, WriterLine* line,
                         PhaseCounts* counts = nullptr) {
  return run_in_processes(
      mix.writers,
      [&](WorkerContext& ctx) {
        RedisConnection redis = RedisConnection::connect(port);
        const WriterInputs inputs = plan.writer_inputs(ctx.count(), ctx.index());
        std::string value = plan.value(0);
        const std::uint64_t base = stamp_base(run, ctx);
        std::array<const char*, 4> argv{};
        std::array<std::size_t, 4> lengths{4, 0, 0, kReplicateValueBytes};
        warm_then_measure(ctx, plan.config(), mix, line, [&](std::uint64_t k, bool measured) {
          const WriterStep& step = inputs.step_at(k);
          const std::string& key = inputs.ids[step.session];
          const std::string& field = plan.attribute(step.attribute);
          value = plan.value(step.value);
          stamp_value(value, base | k);
          argv = {"HSET", key.data(), field.data(), value.data()};
          lengths[1] = key.size();
          lengths[2] = field.size();
          try {
            if (redis.command(4, argv.data(), lengths.data())->type != REDIS_REPLY_INTEGER)
              throw std::runtime_error("redis: HSET did not answer an integer");
          } catch (const std::runtime_error& e) {
            if (counts == nullptr || !is_noreplicas(e)) throw;
            if (measured) counts->refused.fetch_add(1, std::memory_order_relaxed);
          }
        });
      },
      kPhaseTimeout);
}

// The prober's own connections, and its counter: a probe's mark, growing
// across phases (the replica keeps the last phase's value).
struct RedisProbeLine {
  RedisConnection primary;
  RedisConnection replica;
  std::uint64_t counter = 0;
  PhaseCounts* counts = nullptr;  // refusals of the phase, when it has a bound

  LagProber::Probe probe() {
    return [this](std::uint64_t) -> std::uint64_t {
      const std::string value = std::to_string(counter + 1);
      try {
        primary.command({"HSET", kProbeSession, kProbeAttribute, value});
      } catch (const std::runtime_error& e) {
        if (counts == nullptr || !is_noreplicas(e)) throw;
        counts->refused.fetch_add(1, std::memory_order_relaxed);
        return 0;
      }
      return ++counter;
    };
  }
  LagProber::Position position() {
    return [this]() -> std::uint64_t {
      const RedisReplyPtr reply = replica.command({"HGET", kProbeSession, kProbeAttribute});
      if (reply->type != REDIS_REPLY_STRING) return 0;
      return std::stoull(std::string(reply->str, reply->len));
    };
  }
  // Waits until one probe has reached the replica: the primary streams to
  // it (see wait_replica_synced). Throws std::runtime_error at `timeout`.
  void wait_streaming(std::chrono::seconds timeout) {
    const std::uint64_t mark = probe()(0);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (position()() < mark) {
      if (std::chrono::steady_clock::now() > deadline)
        throw std::runtime_error("redis replica: a write did not arrive within " + std::to_string(timeout.count()) +
                                 " s of the sync");
      std::this_thread::sleep_for(std::chrono::milliseconds{1});
    }
  }
};

std::vector<std::string> check_sample(const ReplicatePlan& plan) {
  SplitMix64 random(plan.config().seed ^ 0x636865636bull);
  std::vector<std::string> keys;  // the probe's hash: the prober saw it arrive
  for (std::uint64_t i = 0; i < plan.config().redis_check_sample; ++i)
    keys.push_back(session_id(random.below(plan.config().sessions)));
  return keys;
}

ReplicationRow redis_replicated(const ReplicatePlan& plan, int primary_port, RedisConnection& primary,
                                RedisConnection& replica, RedisProbeLine& probes, const WriterMix& mix, int run,
                                const LoopResult& alone, std::vector<ThroughputRow>& loops) {
  const std::uint64_t start_offset = replication_offset(primary);
  const std::uint64_t start_hsets = hset_calls(primary);
  ForkShared<WriterLine> line;
  ForkShared<PhaseCounts> counts;
  LoopResult loop;
  LagResult lag;
  std::uint64_t writers_end = 0;
  if (mix.bound_ms > 0) {
    // Its finest bound: whole seconds of replica acknowledgement lag.
    const std::string seconds_text = std::to_string(std::max<std::uint32_t>(1, mix.bound_ms / 1000));
    primary.command({"CONFIG", "SET", "min-replicas-max-lag", seconds_text});
    primary.command({"CONFIG", "SET", "min-replicas-to-write", "1"});
  }
  probes.counts = &*counts;
  {
    LagProber prober(*line, mix.writers, plan.config().probe, probes.probe(), probes.position());
    loop = redis_writers(plan, primary_port, mix, run, &*line, &*counts);
    writers_end = monotonic_ns();
    lag = prober.finish();
  }
  probes.counts = nullptr;
  if (mix.bound_ms > 0) primary.command({"CONFIG", "SET", "min-replicas-to-write", "0"});
  wait_replica_synced(primary, replica, kCatchUpTimeout);
  const std::uint64_t caught_up = monotonic_ns();

  ReplicationRow row = lag_row(kRedisSystem, mix.writers, mix.per_s, lag);
  row.bound_ms = mix.bound_ms;
  row.writes_refused = counts->refused.load();
  row.commits_per_s_alone = alone.ops_per_s();
  row.commits_per_s_replicated = committed_per_s(loop, row.writes_refused);
  row.commits_shipped = hset_calls(primary) - start_hsets;  // writers' and probes'
  row.wire_bytes = replication_offset(primary) - start_offset;
  row.catch_up_s = static_cast<double>(caught_up - writers_end) / 1e9;
  const ReplicaCheck check = compare_replica(primary, replica, check_sample(plan));
  row.whole_bytes_per_commit = check.payload_per_key;
  row.backup_difference = check.difference;
  row.backup_equal = check.difference.empty();
  loops.push_back(throughput_row(operation("commit, backup attached", mix), kRedisSystem, loop));
  return row;
}

SideFigures measure_redis(const ReplicatePlan& plan, const RunOptions& options, const RedisServer& server) {
  const ReplicateConfig& config = plan.config();
  RedisConnection primary = RedisConnection::connect(server.port());
  primary.command({"FLUSHALL"});
  progress(options, kName, "redis: loading " + std::to_string(config.sessions) + " sessions");
  plan.load(primary);

  SideFigures figures;
  std::vector<LoopResult> alone;
  int run = 0;
  for (const WriterMix& mix : config.mixes) {
    progress(options, kName, "redis: commits, no replica, clients " + mix.label());
    alone.push_back(redis_writers(plan, server.port(), mix, ++run, nullptr));
    figures.loops.push_back(throughput_row(operation("commit, no backup", mix), kRedisSystem, alone.back()));
  }

  progress(options, kName, "redis: starting a replica");
  RedisServer replica_server = start_redis_replica(options.redis_program, primary, server.port());
  RedisConnection replica = RedisConnection::connect(replica_server.port());
  wait_replica_synced(primary, replica, kSyncTimeout);
  RedisProbeLine probes{RedisConnection::connect(server.port()), RedisConnection::connect(replica_server.port())};
  probes.wait_streaming(kSyncTimeout);
  progress(options, kName, "redis: probes only, replica attached");
  figures.rows.push_back(probe_only(kRedisSystem, config, probes.probe(), probes.position()));
  for (std::size_t i = 0; i < config.mixes.size(); ++i) {
    progress(options, kName, "redis: commits, replica attached, clients " + config.mixes[i].label());
    figures.rows.push_back(redis_replicated(plan, server.port(), primary, replica, probes, config.mixes[i], ++run,
                                            alone[i], figures.loops));
  }
  replica_server.stop();
  return figures;
}

// --- the report -----------------------------------------------------------

void describe(BenchReport& report, const ReplicatePlan& plan) {
  const ReplicateConfig& config = plan.config();
  report.description = "each commit: one attribute (a new " + std::to_string(kReplicateValueBytes) +
                       " B value) of a random session; sessions of " + std::to_string(kReplicateAttributes) +
                       " attributes x " + std::to_string(kReplicateValueBytes) +
                       " B; backup: our sync agent + backup daemon over TCP (127.0.0.1) into a standby segment, "
                       "beside a Redis replica (--replicaof)";
  boost::json::array writers;
  for (const WriterMix& mix : config.mixes) writers.push_back(boost::json::string(mix.label()));
  const sync::AgentOptions agent_defaults;
  report.parameters = {{"sessions", config.sessions},
                       {"attributes", kReplicateAttributes},
                       {"value_bytes", kReplicateValueBytes},
                       {"writers", std::move(writers)},
                       {"loop_s", seconds(config.loop_time)},
                       {"warmup_s", seconds(config.warmup_time)},
                       {"probe_period_us", config.probe.period.count()},
                       {"probe_pause_us", config.probe.pause.count()},
                       {"probe_only_s", seconds(config.probe_only_time)},
                       {"agent_idle_wait_us", agent_defaults.idle_wait.count()},
                       {"change_log_capacity", config.change_log_capacity},
                       {"seed", config.seed}};
}

// Ours and the peer's rows side by side.
template <class Row>
std::vector<Row> interleave(const std::vector<Row>& ours, const std::vector<Row>& peer) {
  std::vector<Row> rows;
  for (std::size_t i = 0; i < ours.size(); ++i) {
    rows.push_back(ours[i]);
    if (i < peer.size()) rows.push_back(peer[i]);
  }
  return rows;
}

}  // namespace
}  // namespace replicate_workload

BenchReport run_replicate(const RunOptions& options) {
  using namespace replicate_workload;
  BenchReport report = start_report(kName, options);
  const ReplicatePlan plan(replicate_config(options));
  describe(report, plan);
  std::optional<RedisServer> peer = start_redis_peer(options, report);

  const SideFigures ours = measure_ours(plan, options, report);
  SideFigures theirs;
  if (peer) {
    theirs = measure_redis(plan, options, *peer);
  } else {
    for (const ReplicationRow& row : ours.rows)
      theirs.rows.push_back(ReplicationRow{std::string(kRedisSystem), row.processes, row.paced_per_s});
    for (const ThroughputRow& row : ours.loops)
      theirs.loops.push_back(unavailable_row(row.operation, kRedisSystem, row.processes));
  }
  report.replication = interleave(ours.rows, theirs.rows);
  report.results = interleave(ours.loops, theirs.loops);
  add_replicate_notes(report);
  for (const ReplicationRow& row : report.replication)
    if (row.measured && row.processes > 0 && !row.backup_equal)
      report.failures.push_back("the " + row.system + " backup differs from its primary after writers " +
                                WriterMix{row.processes, row.paced_per_s}.label() + ": " + row.backup_difference);

  if (peer) peer->stop();
  progress(options, kName, "done");
  return report;
}

}  // namespace shmsession::bench
