// ReplicatePlan: the sizes and the input sequences of the `replicate`
// workload, identical for shmsession and the Redis peer:
//   sessions session:<8 digits>, each with attributes attr0..attr9 of
//   kReplicateValueBytes; a commit changes one attribute of a random session
//   of its writer's range to a new value (a random value of a fixed pool,
//   its first 8 bytes stamped with the commit's number, so no commit rewrites
//   identical bytes and no value is a small edit of the one it replaces).
// A probe session (kProbeSession, attribute kProbeAttribute) belongs to the
// lag prober alone.
//
// Thread safety: a plan is immutable once made; any number of threads.
// Cross-process safety: plain values, read by forked writers after fork().
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "shm/store.hpp"
#include "tools/shmbench/lag_prober.hpp"
#include "tools/shmbench/redis_peer.hpp"
#include "tools/shmbench/workload.hpp"

namespace shmsession::bench {

inline constexpr std::size_t kReplicateAttributes = 10;
inline constexpr std::size_t kReplicateValueBytes = 100;
inline constexpr std::string_view kProbeSession = "probe:lag";
inline constexpr std::string_view kProbeAttribute = "counter";

// The writers of one row of the report: how many processes, at what pace.
struct WriterMix {
  int writers = 1;
  std::uint32_t per_s = 0;  // commits a second, all writers together; 0: as fast as they go
  // A replication bound for the backed-up phase (0: none): ours,
  // Store::set_replication_bound with this max lag and as long a wait;
  // Redis, min-replicas-to-write 1 with min-replicas-max-lag in whole
  // seconds (its unit: at least 1).
  std::uint32_t bound_ms = 0;

  // "1", "2", "1 @5000/s", "2 bound 100ms"
  std::string label() const;
};

struct ReplicateConfig {
  std::uint64_t sessions = 0;
  std::chrono::milliseconds loop_time{0};    // of each measured loop
  std::chrono::milliseconds warmup_time{0};  // untimed, before each loop
  // One row each: a paced writer (a rate both backups keep up with, so a
  // commit is shipped on its own) and unpaced writers (the backups' limits).
  std::vector<WriterMix> mixes;
  ProbeTiming probe;                             // ~500 probes a second, a look at the backup every 20 us
  std::chrono::milliseconds probe_only_time{0};  // the prober alone, backup attached
  // Our primary's change log: long enough to hold what the writers commit
  // while the agent lags, so the replicated phase ships deltas, not a full
  // resync (resyncs are counted and reported if they happen anyway).
  std::uint32_t change_log_capacity = 0;
  std::uint64_t redis_check_sample = 200;                  // replica sessions compared by HGETALL
  std::uint64_t sequence_length = std::uint64_t{1} << 18;  // steps per writer, reused cyclically
  std::uint64_t seed = 0;
};

ReplicateConfig replicate_config(const RunOptions& options);

// One commit of a writer: which of its sessions, attribute and pool value.
struct WriterStep {
  std::uint32_t session;  // index into WriterInputs::ids
  std::uint16_t value;    // index into ReplicatePlan::values
  std::uint8_t attribute;
};

struct WriterInputs {
  std::vector<std::string> ids;  // the writer's session range
  std::vector<WriterStep> steps;

  const WriterStep& step_at(std::uint64_t k) const { return steps[k % steps.size()]; }
};

class ReplicatePlan {
 public:
  explicit ReplicatePlan(const ReplicateConfig& config);

  const ReplicateConfig& config() const noexcept { return config_; }
  const std::string& attribute(std::size_t a) const { return names_[a]; }
  const std::string& value(std::size_t v) const { return values_[v]; }
  // The value attribute `a` of session `s` starts with.
  const std::string& initial_value(std::uint64_t s, std::size_t a) const;

  // The range and steps of writer `index` of `writers`: from the seed, the
  // writer count and the index only, so both sides get the same.
  WriterInputs writer_inputs(int writers, int index) const;

  // Attribute names and values of one session.
  std::uint64_t session_payload_bytes() const noexcept;

  // Creates every session with its 10 attributes, and the probe session.
  // Throws: std::runtime_error if a session exists already; Store errors.
  void fill(Store& store) const;
  // The same into Redis: HSET of the 10 fields, pipelined 1,000 deep.
  void load(RedisConnection& redis) const;

 private:
  ReplicateConfig config_;
  std::array<std::string, kReplicateAttributes> names_;
  std::vector<std::string> values_;  // the pool
};

}  // namespace shmsession::bench
