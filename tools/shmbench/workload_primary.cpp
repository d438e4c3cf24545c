#include "tools/shmbench/workload_primary.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <vector>

#include "shm/store.hpp"
#include "tools/shmbench/process_group.hpp"
#include "tools/shmbench/scratch_store.hpp"
#include "tools/shmbench/session_fill.hpp"
#include "tools/shmbench/session_shape.hpp"

namespace shmsession::bench {

// The helpers in a namespace of their own: the other workloads, compiled in
// the same unity batch, have helpers of the same names.
namespace primary_workload {
namespace {

constexpr std::string_view kName = "primary";
constexpr std::uint64_t kSegmentBase = std::uint64_t{64} << 20;
// Segment bytes reserved per session; pages cost memory only when touched.
constexpr std::uint64_t kSegmentPerSession = 4096;

enum class Operation { Commit, Read };
constexpr std::array<Operation, 2> kOperations = {Operation::Commit, Operation::Read};

// One loop measured per operation and round: a process count, and for ours
// whether the 2 processes share one store or each has its own (nothing
// shared: what this machine gives two processes for the same work).
struct Arm {
  int processes;
  std::string_view system;
};
constexpr std::array<Arm, 2> kRedisArms = {Arm{1, kRedisSystem}, Arm{2, kRedisSystem}};
constexpr std::array<Arm, 2> kMemcachedArms = {Arm{1, kMemcachedSystem}, Arm{2, kMemcachedSystem}};
constexpr std::array<Arm, 3> kOurArms = {Arm{1, kOurSystem}, Arm{2, kOurSystem}, Arm{2, kSeparateStoresSystem}};

std::string operation_name(Operation op) { return op == Operation::Commit ? "commit" : "read"; }

struct PrimaryConfig {
  std::uint64_t sessions = 0;
  int rounds = 0;                              // loops per figure, alternating the process counts
  std::chrono::milliseconds loop_time{0};      // of each measured loop (a round)
  std::chrono::milliseconds warmup_time{0};    // untimed, before each loop
  std::uint64_t sequence_length = 0;           // random positions per worker, reused cyclically
  std::vector<std::uint64_t> memory_sessions;  // ascending
  std::uint64_t seed = 0;
};

PrimaryConfig primary_config(const RunOptions& options) {
  PrimaryConfig config;
  config.sessions = options.quick ? 10'000 : 100'000;
  config.rounds = options.quick ? 2 : 6;
  config.loop_time = std::chrono::milliseconds{options.quick ? 250 : 1000};
  config.warmup_time = config.loop_time / 10;
  config.sequence_length = std::uint64_t{1} << 18;
  config.memory_sessions =
      options.quick ? std::vector<std::uint64_t>{10'000, 100'000} : std::vector<std::uint64_t>{100'000, 1'000'000};
  config.seed = options.seed;
  return config;
}

// What one worker works on: its own slice of the sessions, visited in a
// random order that depends only on the seed, the process count and the
// worker, so shmsession and Redis see the same sequence.
struct WorkerInputs {
  std::vector<std::string> ids;      // of the worker's sessions
  std::vector<std::uint32_t> order;  // indexes into ids, used cyclically

  const std::string& id_at(std::uint64_t k) const { return ids[order[k % order.size()]]; }
};

WorkerInputs make_inputs(const PrimaryConfig& config, const WorkerContext& ctx) {
  const auto workers = static_cast<std::uint64_t>(ctx.count());
  const auto index = static_cast<std::uint64_t>(ctx.index());
  const std::uint64_t first = config.sessions * index / workers;
  const std::uint64_t last = config.sessions * (index + 1) / workers;
  WorkerInputs inputs;
  for (std::uint64_t s = first; s < last; ++s) inputs.ids.push_back(session_id(s));
  SplitMix64 random(config.seed ^ (workers << 32) ^ index);
  inputs.order.reserve(config.sequence_length);
  for (std::uint64_t k = 0; k < config.sequence_length; ++k)
    inputs.order.push_back(static_cast<std::uint32_t>(random.below(last - first)));
  return inputs;
}

// Runs op(k) untimed for the warm-up time, then measures it for the loop
// time, continuing the same sequence of positions k.
template <class Op>
void warm_then_measure(WorkerContext& ctx, const PrimaryConfig& config, Op&& op) {
  const std::uint64_t warmup_end =
      monotonic_ns() + static_cast<std::uint64_t>(std::chrono::nanoseconds(config.warmup_time).count());
  std::uint64_t k = 0;
  while (monotonic_ns() < warmup_end) op(k++);
  ctx.measure_for(config.loop_time, [&](std::uint64_t i) { op(k + i); });
}

// Each commit's value differs from every earlier one: run, worker, position.
std::uint64_t stamp_base(int run, const WorkerContext& ctx) {
  return (static_cast<std::uint64_t>(run) << 48) | (static_cast<std::uint64_t>(ctx.index()) << 40);
}

// Adds one round's loop to what the earlier rounds of its process count
// measured.
void merge_round(LoopResult& into, const LoopResult& round) {
  if (into.processes == 0) {
    into = round;
    return;
  }
  into.ops += round.ops;
  into.worker_ops_min = std::min(into.worker_ops_min, round.worker_ops_min);
  into.worker_ops_max = std::max(into.worker_ops_max, round.worker_ops_max);
  into.wall_s += round.wall_s;
  into.latency.merge(round.latency);
}

// A row per operation and arm, each measured in config.rounds loops:
// loop(op, arm, run, placement) measures one (`run` numbers the loops from
// 1). The rounds alternate the order of the arms, so a drift of the
// machine's speed weighs on each alike, and the CPUs the workers are
// pinned to: round r starts at the r-th usable CPU, so a 1-process arm
// runs on each CPU in turn and a 2-process arm on two of them. On a VM the
// CPUs can differ (a vCPU whose host core has no room in its last-level
// cache runs this memory-bound work at half speed, and which one that is
// changes within minutes); left to the kernel, the single worker would land
// wherever the scheduler puts it, and the 1-process figure would be one
// CPU's while the 2-process one is both CPUs'. `by_cpu` gets a note with
// each operation's 1-process loops by CPU. `workers` names the workers in
// the progress lines, `single_worker` one of them in the note.
template <std::size_t N, class Loop>
std::vector<ThroughputRow> measure_rounds(const PrimaryConfig& config, const RunOptions& options,
                                          const std::array<Arm, N>& arms, std::string_view workers,
                                          std::string_view single_worker, std::vector<std::string>& by_cpu,
                                          Loop&& loop) {
  const std::vector<int> cpus = usable_cpus();
  std::vector<ThroughputRow> rows;
  std::string cpu_note;
  int run = 0;
  for (Operation op : kOperations) {
    std::array<LoopResult, N> merged{};
    std::vector<LoopResult> single(cpus.size());  // the 1-process loops, by CPU
    std::vector<int> loops(cpus.size());
    for (int round = 0; round < config.rounds; ++round) {
      for (std::size_t i = 0; i < N; ++i) {
        const std::size_t at = round % 2 == 0 ? i : N - 1 - i;
        const Arm& arm = arms[at];
        progress(options, kName,
                 std::string(arm.system) + ": " + operation_name(op) + ", " + std::to_string(arm.processes) + " " +
                     std::string(workers) + ", round " + std::to_string(round + 1) + " of " +
                     std::to_string(config.rounds));
        const LoopResult result = loop(op, arm, ++run, Placement{round});
        merge_round(merged[at], result);
        if (arm.processes == 1) {
          const std::size_t cpu = static_cast<std::size_t>(round) % cpus.size();
          merge_round(single[cpu], result);
          ++loops[cpu];
        }
      }
    }
    for (std::size_t i = 0; i < N; ++i) rows.push_back(throughput_row(operation_name(op), arms[i].system, merged[i]));
    cpu_note += (cpu_note.empty() ? "" : "; ") + operation_name(op);
    for (std::size_t c = 0; c < cpus.size(); ++c)
      if (loops[c] > 0)
        cpu_note += " cpu" + std::to_string(cpus[c]) + " " + std::to_string(std::llround(single[c].ops_per_s())) +
                    "/s (" + std::to_string(loops[c]) + " loops)";
  }
  by_cpu.push_back(std::string(arms.front().system) + ", 1 " + std::string(single_worker) +
                   " pinned to each CPU in turn: " + cpu_note);
  return rows;
}

// --- shmsession ---------------------------------------------------------

void ours_worker(WorkerContext& ctx, const std::string& store_name, const PrimaryConfig& config, Operation op,
                 int run) {
  Store store = Store::attach(store_name);
  const WorkerInputs inputs = make_inputs(config, ctx);
  if (op == Operation::Commit) {
    CommitBatch batch;
    batch.put(std::string(kCommittedAttribute), filler_value(kShapeAttributes[0].bytes, 'p'));
    std::string& value = batch.puts.front().value;
    const std::uint64_t base = stamp_base(run, ctx);
    warm_then_measure(ctx, config, [&](std::uint64_t k) {
      stamp_value(value, base | k);
      store.commit(inputs.id_at(k), batch);
    });
    return;
  }
  SessionSnapshot snapshot;
  warm_then_measure(ctx, config, [&](std::uint64_t k) {
    const std::string& id = inputs.id_at(k);
    if (!store.read_into(id, kShapeNames, snapshot) || snapshot.attributes.size() != kShapeNames.size())
      throw std::runtime_error("read of " + id + " did not return the 3 attributes");
  });
}

std::vector<ThroughputRow> measure_ours(const PrimaryConfig& config, const RunOptions& options,
                                        std::vector<std::string>& notes) {
  // The shared store, and a second one alike for the separate-stores arm,
  // whose worker 1 works there (worker 0 on the first).
  std::array<std::optional<ScratchStore>, 2> stores;
  for (std::size_t i = 0; i < stores.size(); ++i) {
    stores[i].emplace(i == 0 ? kName : "primary_apart", kSegmentBase + config.sessions * kSegmentPerSession);
    progress(options, kName,
             "shmsession: filling " + std::to_string(config.sessions) + " sessions (store " + std::to_string(i + 1) +
                 " of 2)");
    fill_store(stores[i]->store(), 0, config.sessions);
  }
  return measure_rounds(config, options, kOurArms, "process(es)", "process", notes,
                        [&](Operation op, const Arm& arm, int run, Placement placement) {
                          return run_in_processes(
                              arm.processes,
                              [&](WorkerContext& ctx) {
                                const bool apart = arm.system == kSeparateStoresSystem && ctx.index() == 1;
                                ours_worker(ctx, stores[apart ? 1 : 0]->name(), config, op, run);
                              },
                              placement);
                        });
}

std::vector<MemoryRow> measure_ours_memory(const PrimaryConfig& config, const RunOptions& options) {
  const std::uint64_t largest = config.memory_sessions.back();
  ScratchStore scratch("memory", kSegmentBase + largest * kSegmentPerSession);
  const std::uint64_t before = scratch.store().stats().used_bytes;
  std::vector<MemoryRow> rows;
  std::uint64_t filled = 0;
  for (std::uint64_t sessions : config.memory_sessions) {
    progress(options, kName, "shmsession: memory at " + std::to_string(sessions) + " sessions");
    fill_store(scratch.store(), filled, sessions);
    filled = sessions;
    const std::uint64_t used = scratch.store().stats().used_bytes;
    rows.push_back({sessions, std::string(kOurSystem), true,
                    static_cast<double>(used - before) / static_cast<double>(sessions),
                    static_cast<double>(shape_payload_bytes())});
  }
  return rows;
}

// --- Redis --------------------------------------------------------------

void redis_commit_worker(WorkerContext& ctx, RedisConnection& redis, const PrimaryConfig& config,
                         const WorkerInputs& inputs, int run) {
  std::string value = filler_value(kShapeAttributes[0].bytes, 'p');
  const std::uint64_t base = stamp_base(run, ctx);
  std::array<const char*, 4> argv{"HSET", nullptr, kCommittedAttribute.data(), nullptr};
  std::array<std::size_t, 4> lengths{4, 0, kCommittedAttribute.size(), value.size()};
  warm_then_measure(ctx, config, [&](std::uint64_t k) {
    const std::string& key = inputs.id_at(k);
    stamp_value(value, base | k);
    argv[1] = key.data();
    lengths[1] = key.size();
    argv[3] = value.data();
    if (redis.command(4, argv.data(), lengths.data())->type != REDIS_REPLY_INTEGER)
      throw std::runtime_error("redis: HSET did not answer an integer");
  });
}

void redis_read_worker(WorkerContext& ctx, RedisConnection& redis, const PrimaryConfig& config,
                       const WorkerInputs& inputs) {
  std::array<const char*, 5> argv{"HMGET", nullptr};
  std::array<std::size_t, 5> lengths{5, 0};
  for (std::size_t a = 0; a < kShapeNames.size(); ++a) {
    argv[2 + a] = kShapeNames[a].data();
    lengths[2 + a] = kShapeNames[a].size();
  }
  warm_then_measure(ctx, config, [&](std::uint64_t k) {
    const std::string& key = inputs.id_at(k);
    argv[1] = key.data();
    lengths[1] = key.size();
    const RedisReplyPtr reply = redis.command(5, argv.data(), lengths.data());
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != kShapeNames.size() ||
        reply->element[0]->type != REDIS_REPLY_STRING)
      throw std::runtime_error("redis: HMGET of " + key + " did not return the 3 attributes");
  });
}

std::vector<ThroughputRow> measure_redis(const PrimaryConfig& config, const RunOptions& options,
                                         const RedisServer& server, std::vector<std::string>& notes) {
  RedisConnection redis = RedisConnection::connect(server.port());
  redis.command({"FLUSHALL"});
  progress(options, kName, "redis: loading " + std::to_string(config.sessions) + " sessions");
  load_redis(redis, 0, config.sessions);
  return measure_rounds(config, options, kRedisArms, "client(s)", "client", notes,
                        [&](Operation op, const Arm& arm, int run, Placement placement) {
                          return run_in_processes(
                              arm.processes,
                              [&](WorkerContext& ctx) {
                                RedisConnection own = RedisConnection::connect(server.port());
                                const WorkerInputs inputs = make_inputs(config, ctx);
                                if (op == Operation::Commit)
                                  redis_commit_worker(ctx, own, config, inputs, run);
                                else
                                  redis_read_worker(ctx, own, config, inputs);
                              },
                              placement);
                        });
}

std::vector<MemoryRow> measure_redis_memory(const PrimaryConfig& config, const RunOptions& options,
                                            const RedisServer& server) {
  RedisConnection redis = RedisConnection::connect(server.port());
  redis.command({"FLUSHALL"});
  const std::uint64_t before = redis.info_integer("memory", "used_memory");
  std::vector<MemoryRow> rows;
  std::uint64_t loaded = 0;
  for (std::uint64_t sessions : config.memory_sessions) {
    progress(options, kName, "redis: memory at " + std::to_string(sessions) + " sessions");
    load_redis(redis, loaded, sessions);
    loaded = sessions;
    const std::uint64_t used = redis.info_integer("memory", "used_memory");
    rows.push_back({sessions, std::string(kRedisSystem), true,
                    (static_cast<double>(used) - static_cast<double>(before)) / static_cast<double>(sessions),
                    static_cast<double>(shape_payload_bytes())});
  }
  return rows;  // the server stops next: no need to flush a million keys
}

// --- memcached ----------------------------------------------------------

// Each worker's keys of every session it visits: <id>:profile, :user, :flags.
std::vector<std::array<std::string, 3>> memcached_keys(const WorkerInputs& inputs) {
  std::vector<std::array<std::string, 3>> keys;
  keys.reserve(inputs.ids.size());
  for (const std::string& id : inputs.ids)
    keys.push_back(
        {memcached_key(id, kShapeNames[0]), memcached_key(id, kShapeNames[1]), memcached_key(id, kShapeNames[2])});
  return keys;
}

void memcached_worker(WorkerContext& ctx, MemcachedConnection& memcached, const PrimaryConfig& config,
                      const WorkerInputs& inputs, Operation op, int run) {
  static_assert(kShapeNames[0] == kCommittedAttribute, "the committed attribute is keys[0]");
  const std::vector<std::array<std::string, 3>> keys = memcached_keys(inputs);
  const auto keys_at = [&](std::uint64_t k) -> const std::array<std::string, 3>& {
    return keys[inputs.order[k % inputs.order.size()]];
  };
  if (op == Operation::Commit) {
    std::string value = filler_value(kShapeAttributes[0].bytes, 'p');
    const std::uint64_t base = stamp_base(run, ctx);
    warm_then_measure(ctx, config, [&](std::uint64_t k) {
      stamp_value(value, base | k);
      memcached.set(keys_at(k)[0], value);
    });
    return;
  }
  warm_then_measure(ctx, config, [&](std::uint64_t k) {
    const std::array<std::string, 3>& session = keys_at(k);
    if (memcached.get_count(session) != session.size())
      throw std::runtime_error("memcached: multi-get of " + session[0] + " did not return the 3 attributes");
  });
}

std::vector<ThroughputRow> measure_memcached(const PrimaryConfig& config, const RunOptions& options,
                                             const MemcachedServer& server, std::vector<std::string>& notes) {
  // Requires: a fresh server (memcached's flush_all only marks items invalid).
  MemcachedConnection memcached = MemcachedConnection::connect(server.port());
  progress(options, kName, "memcached: loading " + std::to_string(config.sessions) + " sessions");
  memcached.load_sessions(0, config.sessions);
  return measure_rounds(config, options, kMemcachedArms, "client(s)", "client", notes,
                        [&](Operation op, const Arm& arm, int run, Placement placement) {
                          return run_in_processes(
                              arm.processes,
                              [&](WorkerContext& ctx) {
                                MemcachedConnection own = MemcachedConnection::connect(server.port());
                                const WorkerInputs inputs = make_inputs(config, ctx);
                                memcached_worker(ctx, own, config, inputs, op, run);
                              },
                              placement);
                        });
}

std::vector<MemoryRow> measure_memcached_memory(const PrimaryConfig& config, const RunOptions& options,
                                                const MemcachedServer& server) {
  // Requires: a fresh server. (flush_all only marks items invalid; their
  // bytes stay counted until the same keys are set again.)
  MemcachedConnection memcached = MemcachedConnection::connect(server.port());
  const std::uint64_t before = memcached.stats_bytes();
  const std::uint64_t footprint_before = memcached.slab_footprint();
  std::vector<MemoryRow> rows;
  std::uint64_t loaded = 0;
  for (std::uint64_t sessions : config.memory_sessions) {
    progress(options, kName, "memcached: memory at " + std::to_string(sessions) + " sessions");
    memcached.load_sessions(loaded, sessions);
    loaded = sessions;
    const std::uint64_t used = memcached.stats_bytes();
    const std::uint64_t footprint = memcached.slab_footprint();
    rows.push_back(
        {sessions, std::string(kMemcachedSystem), true,
         (static_cast<double>(used) - static_cast<double>(before)) / static_cast<double>(sessions),
         static_cast<double>(shape_payload_bytes()),
         (static_cast<double>(footprint) - static_cast<double>(footprint_before)) / static_cast<double>(sessions)});
  }
  return rows;
}

// --- the report ---------------------------------------------------------

void describe(BenchReport& report, const PrimaryConfig& config) {
  report.description = std::string(
                           "commit: one 1 KiB attribute (profile) to a random session; "
                           "read: all 3 attributes; ") +
                       std::string(kShapeSummary);
  boost::json::array memory_sessions(config.memory_sessions.begin(), config.memory_sessions.end());
  report.parameters = {{"sessions", config.sessions},
                       {"rounds", config.rounds},
                       {"loop_s", std::chrono::duration<double>(config.loop_time).count()},
                       {"warmup_s", std::chrono::duration<double>(config.warmup_time).count()},
                       {"memory_sessions", std::move(memory_sessions)},
                       {"seed", config.seed}};
}

// Ours and the peers' rows side by side: per operation, per process count;
// the separate-stores row after ours with 2 processes. A peer that was not
// available has n/a rows.
std::vector<ThroughputRow> side_by_side(const std::vector<ThroughputRow>& ours, const std::vector<ThroughputRow>& redis,
                                        const std::vector<ThroughputRow>& memcached) {
  const auto peer_row = [](const std::vector<ThroughputRow>& peer, const ThroughputRow& mine, std::string_view system) {
    for (const ThroughputRow& row : peer)
      if (row.operation == mine.operation && row.processes == mine.processes) return row;
    return unavailable_row(mine.operation, system, mine.processes);
  };
  std::vector<ThroughputRow> rows;
  for (const ThroughputRow& mine : ours) {
    rows.push_back(mine);
    if (mine.system != kOurSystem) continue;
    rows.push_back(peer_row(redis, mine, kRedisSystem));
    rows.push_back(peer_row(memcached, mine, kMemcachedSystem));
  }
  return rows;
}

std::vector<MemoryRow> side_by_side(const std::vector<MemoryRow>& ours, const std::vector<MemoryRow>& redis,
                                    const std::vector<MemoryRow>& memcached) {
  std::vector<MemoryRow> rows;
  const auto peer_row = [&](const std::vector<MemoryRow>& peer, std::size_t i, std::string_view system) {
    return i < peer.size() ? peer[i]
                           : MemoryRow{ours[i].sessions, std::string(system), false, 0, ours[i].payload_per_session};
  };
  for (std::size_t i = 0; i < ours.size(); ++i) {
    rows.push_back(ours[i]);
    rows.push_back(peer_row(redis, i, kRedisSystem));
    rows.push_back(peer_row(memcached, i, kMemcachedSystem));
  }
  return rows;
}

}  // namespace
}  // namespace primary_workload

BenchReport run_primary(const RunOptions& options) {
  using namespace primary_workload;
  BenchReport report = start_report(kName, options);
  const PrimaryConfig config = primary_config(options);
  describe(report, config);
  std::optional<RedisServer> peer = start_redis_peer(options, report);

  std::vector<std::string> by_cpu;
  const std::vector<ThroughputRow> ours = measure_ours(config, options, by_cpu);
  const std::vector<ThroughputRow> redis =
      peer ? measure_redis(config, options, *peer, by_cpu) : std::vector<ThroughputRow>{};
  const std::vector<MemoryRow> ours_memory = measure_ours_memory(config, options);
  const std::vector<MemoryRow> redis_memory =
      peer ? measure_redis_memory(config, options, *peer) : std::vector<MemoryRow>{};
  if (peer) peer->stop();

  // memcached runs once Redis is gone: their largest memory steps never
  // share the machine.
  std::optional<MemcachedServer> second = start_memcached_peer(options, report);
  const std::vector<ThroughputRow> memcached =
      second ? measure_memcached(config, options, *second, by_cpu) : std::vector<ThroughputRow>{};
  std::vector<MemoryRow> memcached_memory;
  if (second) {
    second->stop();
    std::optional<MemcachedServer> fresh = MemcachedServer::start(options.memcached_program, nullptr);
    if (fresh) memcached_memory = measure_memcached_memory(config, options, *fresh);
  }

  report.results = side_by_side(ours, redis, memcached);
  report.memory = side_by_side(ours_memory, redis_memory, memcached_memory);
  report.notes.push_back(
      "memcached: each attribute is the item <session id>:<attribute>; commit = set of it, "
      "read = one multi-get of the 3 (ASCII protocol, libmemcached); bytes/session from "
      "stats bytes (item sizes with headers, not slab-class rounding), the figure ours/peer "
      "compares with; its footprint/session column adds what that leaves out: slab chunks in use x "
      "chunk size (stats slabs) plus its hash table (stats hash_bytes)");
  report.notes.push_back(
      "2 separate stores: 2 processes doing what shmsession's 2 do, worker 1 on a second store filled alike "
      "and written by it alone: nothing shared but the machine, and worker 1's sessions on pages of their own "
      "(in the first store every row's commits, 1 process's included, have mixed all sessions' blobs over all "
      "its pages); its ours/peer is shmsession's 2-process figure over it (below 1x: what sharing one store "
      "costs, in lines and in layout)");
  report.notes.push_back("rounds per figure: " + std::to_string(config.rounds) +
                         " (a round measures each row of a system once; the order alternates from round to round, "
                         "and the workers are pinned to CPUs, round r's starting at the r-th CPU: a 1-process row "
                         "runs on each CPU in turn, a 2-process row on two)");
  for (const std::string& note : by_cpu) report.notes.push_back(note);
  progress(options, kName, "done");
  return report;
}

}  // namespace shmsession::bench
