#include "tools/shmbench/replicate_plan.hpp"

#include <algorithm>
#include <stdexcept>

#include "tools/shmbench/session_fill.hpp"
#include "tools/shmbench/session_shape.hpp"

namespace shmsession::bench {

namespace {

constexpr std::size_t kValuePool = 4096;
static_assert(kValuePool <= 65536, "a WriterStep holds a 16-bit pool index");

}  // namespace

ReplicateConfig replicate_config(const RunOptions& options) {
  ReplicateConfig config;
  config.sessions = options.quick ? 1'000 : 10'000;
  config.loop_time = std::chrono::milliseconds{options.quick ? 300 : 3000};
  config.warmup_time = config.loop_time / 10;
  config.mixes = {{1, 5000}, {1, 0}, {2, 0}, {2, 0, 100}};
  config.probe_only_time = std::chrono::milliseconds{options.quick ? 200 : 1000};
  config.change_log_capacity = options.quick ? (1u << 20) : (1u << 22);
  config.seed = options.seed;
  return config;
}

std::string WriterMix::label() const {
  return std::to_string(writers) + (per_s > 0 ? " @" + std::to_string(per_s) + "/s" : "") +
         (bound_ms > 0 ? " bound " + std::to_string(bound_ms) + "ms" : "");
}

ReplicatePlan::ReplicatePlan(const ReplicateConfig& config) : config_(config) {
  for (std::size_t a = 0; a < kReplicateAttributes; ++a) names_[a] = "attr" + std::to_string(a);
  SplitMix64 random(config.seed ^ 0x7265706c6963ull);
  values_.reserve(kValuePool);
  for (std::size_t v = 0; v < kValuePool; ++v) {
    std::string value(kReplicateValueBytes, '\0');
    for (char& c : value) c = static_cast<char>('a' + random.below(26));
    values_.push_back(std::move(value));
  }
}

const std::string& ReplicatePlan::initial_value(std::uint64_t s, std::size_t a) const {
  return values_[(s * kReplicateAttributes + a) % values_.size()];
}

WriterInputs ReplicatePlan::writer_inputs(int writers, int index) const {
  const auto count = static_cast<std::uint64_t>(writers);
  const auto at = static_cast<std::uint64_t>(index);
  const std::uint64_t first = config_.sessions * at / count;
  const std::uint64_t last = config_.sessions * (at + 1) / count;
  WriterInputs inputs;
  for (std::uint64_t s = first; s < last; ++s) inputs.ids.push_back(session_id(s));
  SplitMix64 random(config_.seed ^ (count << 32) ^ at);
  inputs.steps.reserve(config_.sequence_length);
  for (std::uint64_t k = 0; k < config_.sequence_length; ++k) {
    inputs.steps.push_back({static_cast<std::uint32_t>(random.below(last - first)),
                            static_cast<std::uint16_t>(random.below(values_.size())),
                            static_cast<std::uint8_t>(random.below(kReplicateAttributes))});
  }
  return inputs;
}

std::uint64_t ReplicatePlan::session_payload_bytes() const noexcept {
  std::uint64_t total = 0;
  for (const std::string& name : names_) total += name.size() + kReplicateValueBytes;
  return total;
}

void ReplicatePlan::fill(Store& store) const {
  for (std::uint64_t s = 0; s < config_.sessions; ++s) {
    const std::string id = session_id(s);
    if (!store.create_session(id)) throw std::runtime_error("session " + id + " exists already");
    CommitBatch batch;
    for (std::size_t a = 0; a < kReplicateAttributes; ++a) batch.put(names_[a], initial_value(s, a));
    store.commit(id, batch);
  }
  if (!store.create_session(kProbeSession))
    throw std::runtime_error("session " + std::string(kProbeSession) + " exists already");
  store.commit(kProbeSession, CommitBatch{}.put(std::string(kProbeAttribute), "0"));
}

void ReplicatePlan::load(RedisConnection& redis) const {
  constexpr std::size_t kArgs = 2 + 2 * kReplicateAttributes;
  std::array<const char*, kArgs> argv{};
  std::array<std::size_t, kArgs> lengths{};
  argv[0] = "HSET";
  lengths[0] = 4;
  for (std::uint64_t s = 0; s < config_.sessions;) {
    const std::uint64_t end = std::min(config_.sessions, s + kRedisPipelineDepth);
    std::vector<std::string> keys;
    keys.reserve(end - s);
    for (std::uint64_t k = s; k < end; ++k) {
      keys.push_back(session_id(k));
      argv[1] = keys.back().data();
      lengths[1] = keys.back().size();
      for (std::size_t a = 0; a < kReplicateAttributes; ++a) {
        argv[2 + 2 * a] = names_[a].data();
        lengths[2 + 2 * a] = names_[a].size();
        argv[3 + 2 * a] = initial_value(k, a).data();
        lengths[3 + 2 * a] = kReplicateValueBytes;
      }
      redis.append(static_cast<int>(kArgs), argv.data(), lengths.data());
    }
    for (std::uint64_t k = s; k < end; ++k) redis.next_reply();
    s = end;
  }
  redis.command({"HSET", kProbeSession, kProbeAttribute, "0"});
}

}  // namespace shmsession::bench
