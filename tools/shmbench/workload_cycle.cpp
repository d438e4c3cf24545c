#include "tools/shmbench/workload_cycle.hpp"

#include <hiredis/hiredis.h>

#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "sync/attribute_codec.hpp"
#include "sync/client.hpp"
#include "tools/shmbench/cycle_report.hpp"
#include "tools/shmbench/process_group.hpp"
#include "tools/shmbench/redis_session_lock.hpp"
#include "tools/shmbench/scratch_store.hpp"
#include "tools/shmbench/session_objects.hpp"
#include "tools/shmbench/session_shape.hpp"

namespace shmsession::bench {

namespace {

constexpr std::string_view kName = "cycle";
constexpr std::uint64_t kSegmentBytes = std::uint64_t{64} << 20;
constexpr auto kPhaseTimeout = std::chrono::seconds{120};
// Ascending: a thread holding several handles takes them in name order.
constexpr std::string_view kCart = "cart";
constexpr std::string_view kProfile = "profile";
constexpr std::string_view kRecent = "recent";

struct CycleConfig {
  std::uint64_t sessions = 1000;
  std::size_t cart_items = 20;
  std::size_t recent_products = 30;
  std::uint64_t sequence_length = std::uint64_t{1} << 16;  // random positions, reused cyclically
  std::chrono::milliseconds loop_time{0};
  std::chrono::milliseconds warmup_time{0};  // untimed, after one pass over every session
  std::uint64_t seed = 0;
};

CycleConfig cycle_config(const RunOptions& options) {
  CycleConfig config;
  config.loop_time = std::chrono::milliseconds{options.quick ? 400 : 3000};
  config.warmup_time = config.loop_time / 10;
  config.seed = options.seed;
  return config;
}

// The sessions and the order requests visit them in: from the seed only,
// so both sides see the same sequence.
struct CycleInputs {
  std::vector<std::string> ids;
  std::vector<std::uint32_t> order;

  std::uint32_t index_at(std::uint64_t k) const { return order[k % order.size()]; }
};

CycleInputs make_inputs(const CycleConfig& config) {
  CycleInputs inputs;
  for (std::uint64_t s = 0; s < config.sessions; ++s) inputs.ids.push_back(session_id(s));
  SplitMix64 random(config.seed);
  inputs.order.reserve(config.sequence_length);
  for (std::uint64_t k = 0; k < config.sequence_length; ++k)
    inputs.order.push_back(static_cast<std::uint32_t>(random.below(config.sessions)));
  return inputs;
}

// The initial values of session `s`, the same on both sides.
Profile initial_profile(const CycleConfig& config, std::uint64_t s) { return make_profile(config.seed ^ (s * 3 + 0)); }
Cart initial_cart(const CycleConfig& config, std::uint64_t s) {
  return make_cart(config.seed ^ (s * 3 + 1), config.cart_items);
}
RecentProducts initial_recent(const CycleConfig& config, std::uint64_t s) {
  return make_recent(config.seed ^ (s * 3 + 2), config.recent_products);
}

// What a page does with what it read: touches every attribute.
std::uint64_t page_figures(const Profile& profile, const RecentProducts& recent, const Cart& cart) {
  std::uint64_t total = static_cast<std::uint64_t>(profile.visits) + recent.product_ids.size();
  for (const LineItem& item : cart.items) total += static_cast<std::uint64_t>(item.qty * item.unit_price_cents);
  return total;
}

void check_page(std::uint64_t figures, const std::string& id) {
  if (figures == 0) throw std::runtime_error("the request of " + id + " read empty attributes");
}

// Runs cycle(session index, k) once per session in index order (so every
// copy is current and every lock held), then along the random sequence:
// untimed for the warm-up time, then measured for the loop time.
template <class Cycle>
void warm_then_measure(WorkerContext& ctx, const CycleConfig& config, const CycleInputs& inputs, Cycle&& cycle) {
  std::uint64_t k = 0;
  for (; k < inputs.ids.size(); ++k) cycle(static_cast<std::uint32_t>(k), k);
  const std::uint64_t warmup_end = monotonic_ns() + static_cast<std::uint64_t>(
      std::chrono::nanoseconds(config.warmup_time).count());
  for (; monotonic_ns() < warmup_end; ++k) cycle(inputs.index_at(k), k);
  ctx.measure_for(config.loop_time, [&](std::uint64_t i) { cycle(inputs.index_at(k + i), k + i); });
}

// --- shmsession -------------------------------------------------------------

void fill_sessions(sync::Client& client, const CycleConfig& config, const CycleInputs& inputs) {
  for (std::uint64_t s = 0; s < config.sessions; ++s) {
    sync::SessionHandle session = client.open(inputs.ids[s]);
    session.put(kProfile, initial_profile(config, s));
    session.put(kRecent, initial_recent(config, s));
    session.put(kCart, initial_cart(config, s));
    session.commit();
  }
}

void our_cycle(sync::Client& client, const std::string& id, std::uint64_t k) {
  sync::SessionHandle session = client.open(id);
  {
    const sync::ReadHandle<Cart> cart = session.get<Cart>(kCart);
    const sync::ReadHandle<Profile> profile = session.get<Profile>(kProfile);
    const sync::ReadHandle<RecentProducts> recent = session.get<RecentProducts>(kRecent);
    check_page(page_figures(*profile, *recent, *cart), id);
  }
  change_one_quantity(*session.edit<Cart>(kCart), k);
  const sync::CommitOutcome outcome = session.commit();
  if (outcome.written.size() != 1 || outcome.written.front() != kCart)
    throw std::runtime_error("the commit of " + id + " did not write exactly the cart");
}

ThroughputRow measure_ours(const CycleConfig& config, const RunOptions& options, sync::Comparison comparison) {
  const bool graph = comparison == sync::Comparison::ObjectGraph;
  const std::string operation(graph ? kCycleObjectGraph : kCycleBinary);
  ScratchStore scratch(graph ? "cycle_graph" : "cycle_binary", kSegmentBytes);
  progress(options, kName, "shmsession: " + operation);
  const LoopResult loop = run_in_processes(1, [&](WorkerContext& ctx) {
    Store store = Store::attach(scratch.name());
    sync::Client client(store, sync::ClientOptions{.comparison = comparison});
    const CycleInputs inputs = make_inputs(config);
    fill_sessions(client, config, inputs);
    warm_then_measure(ctx, config, inputs,
                      [&](std::uint32_t index, std::uint64_t k) { our_cycle(client, inputs.ids[index], k); });
  }, kPhaseTimeout);
  return throughput_row(operation, kOurSystem, loop);
}

// --- Redis --------------------------------------------------------------------

template <class T>
std::string encoded(const T& value) {
  return sync::encode_attribute(value);
}

template <class T>
std::shared_ptr<T> decoded(const redisReply* element) {
  return std::make_shared<T>(sync::decode_attribute<T>(std::string_view(element->str, element->len)));
}

void load_sessions(RedisConnection& redis, const CycleConfig& config, const CycleInputs& inputs) {
  for (std::uint64_t s = 0; s < config.sessions; ++s) {
    const std::string profile = encoded(initial_profile(config, s));
    const std::string recent = encoded(initial_recent(config, s));
    const std::string cart = encoded(initial_cart(config, s));
    redis.command({"HSET", inputs.ids[s], kProfile, profile, kRecent, recent, kCart, cart});
  }
}

class RedisCycle {
 public:
  RedisCycle(RedisConnection& redis, const CycleInputs& inputs) : redis_(redis) {
    locks_.reserve(inputs.ids.size());
    for (const std::string& id : inputs.ids) locks_.emplace_back(redis, id);
  }

  void run(const std::string& id, std::uint32_t index, std::uint64_t k) {
    RedisSessionLock& lock = locks_[index];
    lock.acquire();
    std::array<const char*, 5> get{"HMGET", id.data(), kCart.data(), kProfile.data(), kRecent.data()};
    std::array<std::size_t, 5> get_lengths{5, id.size(), kCart.size(), kProfile.size(), kRecent.size()};
    const RedisReplyPtr reply = redis_.command(5, get.data(), get_lengths.data());
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3)
      throw std::runtime_error("redis: HMGET of " + id + " did not return 3 values");
    for (std::size_t i = 0; i < 3; ++i)
      if (reply->element[i]->type != REDIS_REPLY_STRING)
        throw std::runtime_error("redis: HMGET of " + id + " misses an attribute");
    const std::shared_ptr<Cart> cart = decoded<Cart>(reply->element[0]);
    check_page(page_figures(*decoded<Profile>(reply->element[1]), *decoded<RecentProducts>(reply->element[2]), *cart),
               id);
    change_one_quantity(*cart, k);
    const std::string bytes = encoded(*cart);
    std::array<const char*, 4> set{"HSET", id.data(), kCart.data(), bytes.data()};
    std::array<std::size_t, 4> set_lengths{4, id.size(), kCart.size(), bytes.size()};
    if (redis_.command(4, set.data(), set_lengths.data())->type != REDIS_REPLY_INTEGER)
      throw std::runtime_error("redis: HSET did not answer an integer");
    lock.release();
  }

 private:
  RedisConnection& redis_;
  std::vector<RedisSessionLock> locks_;  // one per session, built once
};

ThroughputRow measure_redis(const CycleConfig& config, const RunOptions& options, const RedisServer& server) {
  progress(options, kName, "redis: lock + HMGET + HSET + unlock");
  const LoopResult loop = run_in_processes(1, [&](WorkerContext& ctx) {
    RedisConnection redis = RedisConnection::connect(server.port());
    redis.command({"FLUSHALL"});
    const CycleInputs inputs = make_inputs(config);
    load_sessions(redis, config, inputs);
    RedisSessionLock::load_release_script(redis);
    RedisCycle cycle(redis, inputs);
    warm_then_measure(ctx, config, inputs,
                      [&](std::uint32_t index, std::uint64_t k) { cycle.run(inputs.ids[index], index, k); });
  }, kPhaseTimeout);
  return throughput_row(std::string(kCycleRedis), kRedisSystem, loop);
}

// --- the report -----------------------------------------------------------------

void describe(BenchReport& report, const CycleConfig& config) {
  report.description =
      "one request's session cycle in one process: open (process lock held from the previous request), read "
      "profile + recent + cart, edit one line item's qty in cart, commit; redis: phpredis lock, HMGET of the 3, "
      "decode, HSET cart, unlock";
  const std::size_t profile = encoded(initial_profile(config, 0)).size();
  const std::size_t cart = encoded(initial_cart(config, 0)).size();
  const std::size_t recent = encoded(initial_recent(config, 0)).size();
  report.parameters = {{"sessions", config.sessions},
                       {"profile_bytes", profile},
                       {"cart_bytes", cart},
                       {"cart_items", config.cart_items},
                       {"recent_bytes", recent},
                       {"loop_s", std::chrono::duration<double>(config.loop_time).count()},
                       {"warmup_s", std::chrono::duration<double>(config.warmup_time).count()},
                       {"seed", config.seed}};
}

void add_notes(BenchReport& report) {
  report.notes.push_back(
      "shmsession's open() reuses the process lock this process still holds and refreshes nothing (the "
      "session version did not move): the steady state of a sticky process; a session last written by "
      "another process would first be copied in");
  report.notes.push_back(
      "both sides encode with sync/attribute_codec.hpp (Boost binary archive); redis decodes the 3 values on "
      "every request (as PHP unserializes $_SESSION), shmsession decodes only what the primary changed");
  report.notes.push_back(
      "redis lock: phpredis's recipe (SET NX PX 30000, EVALSHA compare-and-delete), uncontended: "
      "4 round trips per cycle on 127.0.0.1");
}

}  // namespace

BenchReport run_cycle(const RunOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  BenchReport report = start_report(kName, options);
  const CycleConfig config = cycle_config(options);
  describe(report, config);
  progress(options, kName, "starting the redis peer");
  std::optional<RedisServer> peer = start_redis_peer(options, report);

  report.results.push_back(measure_ours(config, options, sync::Comparison::ObjectGraph));
  report.results.push_back(measure_ours(config, options, sync::Comparison::Binary));
  report.results.push_back(peer ? measure_redis(config, options, *peer)
                                : unavailable_row(std::string(kCycleRedis), kRedisSystem, 1));
  add_notes(report);

  if (peer) peer->stop();
  progress(options, kName, "done");
  report.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return report;
}

}  // namespace shmsession::bench
