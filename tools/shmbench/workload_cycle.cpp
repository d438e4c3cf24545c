#include "tools/shmbench/workload_cycle.hpp"

#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "sync/attribute_codec.hpp"
#include "sync/client.hpp"
#include "sync/hosts/host_gate.hpp"
#include "sync/hosts/host_records.hpp"
#include "sync/hosts/redis_sink.hpp"
#include "tools/shmbench/cycle_report.hpp"
#include "tools/shmbench/fork_shared.hpp"
#include "tools/shmbench/hand_over_probe.hpp"
#include "tools/shmbench/process_group.hpp"
#include "tools/shmbench/redis_session_lock.hpp"
#include "tools/shmbench/scratch_store.hpp"
#include "tools/shmbench/session_objects.hpp"
#include "tools/shmbench/session_shape.hpp"
#include "tools/shmbench/text_table.hpp"

namespace shmsession::bench {

// The helpers in a namespace of their own: the other workloads, compiled in
// the same unity batch, have helpers of the same names.
namespace cycle_workload {
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
  std::chrono::milliseconds warmup_time{0};  // untimed, after one pass over the worker's own sessions
  std::uint64_t seed = 0;
  int processes = 1;
  Routing routing = Routing::Sticky;
  CycleLockPolicy lock_policy = CycleLockPolicy::Adaptive;  // the Client's (RunOptions::cycle_lock_policy)
};

CycleConfig cycle_config(const RunOptions& options, const CycleSetup& setup) {
  CycleConfig config;
  config.loop_time = std::chrono::milliseconds{options.quick ? 400 : 3000};
  config.warmup_time = config.loop_time / 10;
  config.seed = options.seed;
  config.processes = setup.processes;
  config.routing = setup.processes > 1 ? setup.routing : Routing::Sticky;  // one process: the same
  config.lock_policy = options.cycle_lock_policy;
  return config;
}

// The sessions and the order one worker's requests visit them in: from the
// seed and the worker's index only, so both sides see the same sequences.
// Worker w owns (fills, and first visits) the sessions s with s % N == w;
// sticky routing draws its requests from those, random routing from all.
struct CycleInputs {
  std::vector<std::string> ids;  // of every session
  std::vector<std::uint32_t> owned;
  std::vector<std::uint32_t> order;

  std::uint32_t index_at(std::uint64_t k) const { return order[k % order.size()]; }
};

// `foreign_percent` (shmbench hosts): that share of a sticky worker's
// requests goes to another worker's sessions.
CycleInputs make_inputs(const CycleConfig& config, int worker, int foreign_percent = 0) {
  CycleInputs inputs;
  for (std::uint64_t s = 0; s < config.sessions; ++s) {
    inputs.ids.push_back(session_id(s));
    if (s % static_cast<std::uint64_t>(config.processes) == static_cast<std::uint64_t>(worker))
      inputs.owned.push_back(static_cast<std::uint32_t>(s));
  }
  // Worker 0 keeps the seed itself: one process visits what it always did.
  SplitMix64 random(config.seed + static_cast<std::uint64_t>(worker) * 0x632be59bd9b4e019ull);
  inputs.order.reserve(config.sequence_length);
  for (std::uint64_t k = 0; k < config.sequence_length; ++k) {
    if (foreign_percent > 0 && random.below(100) < static_cast<std::uint64_t>(foreign_percent)) {
      std::uint64_t s = random.below(config.sessions);
      while (s % static_cast<std::uint64_t>(config.processes) == static_cast<std::uint64_t>(worker))
        s = random.below(config.sessions);
      inputs.order.push_back(static_cast<std::uint32_t>(s));
      continue;
    }
    inputs.order.push_back(config.routing == Routing::Random ? static_cast<std::uint32_t>(random.below(config.sessions))
                                                             : inputs.owned[random.below(inputs.owned.size())]);
  }
  return inputs;
}

// Where the workers of one loop meet once each has filled its own sessions.
using FillLine = ForkShared<std::atomic<int>>;

void wait_for_fills(std::atomic<int>& filled, int processes) {
  filled.fetch_add(1, std::memory_order_acq_rel);
  while (filled.load(std::memory_order_acquire) < processes)
    std::this_thread::sleep_for(std::chrono::microseconds{100});
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

// Runs cycle(session index, k) once per owned session in index order (so
// every copy is current and every lock held), then along the random
// sequence: untimed for the warm-up time, then (after `measuring`)
// measured for the loop time.
template <class Cycle, class Measuring>
void warm_then_measure(WorkerContext& ctx, const CycleConfig& config, const CycleInputs& inputs, Cycle&& cycle,
                       Measuring&& measuring) {
  std::uint64_t k = 0;
  for (; k < inputs.owned.size(); ++k) cycle(inputs.owned[k], k);
  const std::uint64_t warmup_end =
      monotonic_ns() + static_cast<std::uint64_t>(std::chrono::nanoseconds(config.warmup_time).count());
  for (; monotonic_ns() < warmup_end; ++k) cycle(inputs.index_at(k), k);
  measuring();
  ctx.measure_for(config.loop_time, [&](std::uint64_t i) { cycle(inputs.index_at(k + i), k + i); });
}

// --- shmsession -------------------------------------------------------------

void fill_sessions(sync::Client& client, const CycleConfig& config, const CycleInputs& inputs) {
  for (const std::uint32_t s : inputs.owned) {
    sync::SessionHandle session = client.open(inputs.ids[s]);
    session.put(kProfile, initial_profile(config, s));
    session.put(kRecent, initial_recent(config, s));
    session.put(kCart, initial_cart(config, s));
    session.commit();
  }
}

// `probe` (random routing only): stamps the request's steps for the
// hand-over breakdown.
void our_cycle(sync::Client& client, const std::string& id, std::uint64_t k, HandOverProbe* probe) {
  if (probe != nullptr) probe->request_begins();
  {
    sync::SessionHandle session = client.open(id);
    if (probe != nullptr) probe->opened();
    {
      const sync::ReadHandle<Cart> cart = session.get<Cart>(kCart);
      const sync::ReadHandle<Profile> profile = session.get<Profile>(kProfile);
      const sync::ReadHandle<RecentProducts> recent = session.get<RecentProducts>(kRecent);
      check_page(page_figures(*profile, *recent, *cart), id);
    }
    change_one_quantity(*session.edit<Cart>(kCart), k);
    if (probe != nullptr) probe->commit_begins();
    const sync::CommitOutcome outcome = session.commit();
    if (probe != nullptr) probe->committed();
    if (outcome.written.size() != 1 || outcome.written.front() != kCart)
      throw std::runtime_error("the commit of " + id + " did not write exactly the cart");
  }
  if (probe != nullptr) probe->request_ends();
}

std::string scratch_tag(const CycleConfig& config, bool graph) {
  std::string tag = graph ? "cycle_graph" : "cycle_binary";
  if (config.processes > 1) tag += "_" + std::to_string(config.processes) + std::string(routing_name(config.routing));
  return tag;
}

ThroughputRow routed_row(std::string operation, std::string_view system, const CycleConfig& config,
                         const LoopResult& loop) {
  ThroughputRow row = throughput_row(std::move(operation), system, loop);
  if (config.processes > 1) row.routing = std::string(routing_name(config.routing));
  return row;
}

// "4 processes, random, object-graph comparison: 75% of 23778 requests
// moved ...": how many requests waited for a hand-over, and how evenly the
// processes shared the requests (a process whose requests keep waiting
// serves fewer, so fewer sessions move away from the others).
std::string moved_note(const CycleConfig& config, const std::string& operation, const LoopResult& loop,
                       const std::vector<HandOverPhaseRow>& rows) {
  const std::uint64_t moved = rows.empty() ? 0 : rows.front().samples;  // the whole-request phase
  const double share = loop.ops > 0 ? 100.0 * static_cast<double>(moved) / static_cast<double>(loop.ops) : 0.0;
  return std::to_string(config.processes) + " processes, random, " + operation + ": " + fixed(share, 0) + "% of " +
         std::to_string(loop.ops) + " measured requests waited for a hand-over; requests per process " +
         std::to_string(loop.worker_ops_min) + ".." + std::to_string(loop.worker_ops_max);
}

const char* policy_name(CycleLockPolicy policy) {
  switch (policy) {
    case CycleLockPolicy::Sticky:
      return "sticky";
    case CycleLockPolicy::PerRequest:
      return "per-request";
    case CycleLockPolicy::Adaptive:
      break;
  }
  return "adaptive";
}

sync::LockPolicy client_policy(CycleLockPolicy policy) {
  switch (policy) {
    case CycleLockPolicy::Sticky:
      return sync::LockPolicy::Sticky;
    case CycleLockPolicy::PerRequest:
      return sync::LockPolicy::PerRequest;
    case CycleLockPolicy::Adaptive:
      break;
  }
  return sync::LockPolicy::Adaptive;
}

// How the measured requests of all workers gave their locks up (sums of
// sync::ClientStats over the measured phase).
struct ReleaseCounts {
  std::atomic<std::uint64_t> at_request_end{0};  // by the policy, at a request's end
  std::atomic<std::uint64_t> on_request{0};      // because another process asked
};

std::string policy_note(const CycleConfig& config, const std::string& operation, const LoopResult& loop,
                        const ReleaseCounts& releases) {
  auto share = [&](std::uint64_t n) {
    return fixed(loop.ops > 0 ? 100.0 * static_cast<double>(n) / static_cast<double>(loop.ops) : 0.0, 1) + "%";
  };
  return std::to_string(config.processes) + " processes, " + std::string(routing_name(config.routing)) + ", " +
         operation + ": lock policy " + policy_name(config.lock_policy) + "; of " + std::to_string(loop.ops) +
         " measured requests, " + share(releases.at_request_end.load()) +
         " ended by releasing the lock (the policy's choice), " + share(releases.on_request.load()) +
         " handed it over because another process asked";
}

// Our rows of one setup; under random routing with several processes also
// the hand-over breakdown (into `phases`) and a note of how many moved.
ThroughputRow measure_ours(const CycleConfig& config, const RunOptions& options, sync::Comparison comparison,
                           std::vector<HandOverPhaseRow>& phases, std::vector<std::string>& notes) {
  const bool graph = comparison == sync::Comparison::ObjectGraph;
  const std::string operation(graph ? kCycleObjectGraph : kCycleBinary);
  ScratchStore scratch(scratch_tag(config, graph), kSegmentBytes);
  const bool breakdown = config.routing == Routing::Random && config.processes > 1;
  std::optional<HandOverProbe> probe;
  if (breakdown) probe.emplace();
  FillLine filled;
  std::string what = "shmsession: " + operation;
  if (config.processes > 1)
    what += ", " + std::to_string(config.processes) + " processes, " + std::string(routing_name(config.routing));
  if (config.lock_policy != CycleLockPolicy::Adaptive)
    what += std::string(", ") + policy_name(config.lock_policy) + " locks";
  progress(options, kName, what);
  ForkShared<ReleaseCounts> releases;
  const LoopResult loop = run_in_processes(
      config.processes,
      [&](WorkerContext& ctx) {
        sync::ClientStats before;
        Store store = Store::attach(scratch.name());
        sync::Client client(
            store, sync::ClientOptions{.comparison = comparison, .lock_policy = client_policy(config.lock_policy)});
        const CycleInputs inputs = make_inputs(config, ctx.index());
        fill_sessions(client, config, inputs);
        wait_for_fills(*filled, config.processes);
        HandOverProbe* stamps = probe ? &*probe : nullptr;
        if (stamps != nullptr) stamps->install(ctx.index());
        warm_then_measure(
            ctx, config, inputs,
            [&](std::uint32_t index, std::uint64_t k) { our_cycle(client, inputs.ids[index], k, stamps); },
            [&] {
              if (stamps != nullptr) stamps->start_recording();
              before = client.stats();
            });
        const sync::ClientStats after = client.stats();
        releases->at_request_end += after.released_at_request_end - before.released_at_request_end;
        releases->on_request += after.released_on_request - before.released_on_request;
      },
      kPhaseTimeout);
  if (config.processes > 1) notes.push_back(policy_note(config, operation, loop, *releases));
  if (probe) {
    std::vector<HandOverPhaseRow> rows = probe->rows(operation, config.processes);
    notes.push_back(moved_note(config, operation, loop, rows));
    for (HandOverPhaseRow& row : rows) phases.push_back(std::move(row));
  }
  return routed_row(operation, kOurSystem, config, loop);
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
  for (const std::uint32_t s : inputs.owned) {
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
  std::string what = "redis: lock + HMGET + HSET + unlock";
  if (config.processes > 1)
    what += ", " + std::to_string(config.processes) + " processes, " + std::string(routing_name(config.routing));
  progress(options, kName, what);
  {
    RedisConnection redis = RedisConnection::connect(server.port());
    redis.command({"FLUSHALL"});  // before the workers load: nothing of an earlier setup stays
    RedisSessionLock::load_release_script(redis);
  }
  FillLine filled;
  const LoopResult loop = run_in_processes(
      config.processes,
      [&](WorkerContext& ctx) {
        RedisConnection redis = RedisConnection::connect(server.port());  // each process its own connection
        const CycleInputs inputs = make_inputs(config, ctx.index());
        load_sessions(redis, config, inputs);
        wait_for_fills(*filled, config.processes);
        RedisCycle cycle(redis, inputs);
        warm_then_measure(
            ctx, config, inputs, [&](std::uint32_t index, std::uint64_t k) { cycle.run(inputs.ids[index], index, k); },
            [] {});
      },
      kPhaseTimeout);
  return routed_row(std::string(kCycleRedis), kRedisSystem, config, loop);
}

// --- the report -----------------------------------------------------------------

bool only_one_process(const std::vector<CycleSetup>& setups) {
  return setups.size() == 1 && setups.front().processes == 1;
}

// "1 process; 2 processes, random; ..."
std::string setups_text(const std::vector<CycleSetup>& setups) {
  std::string text;
  for (const CycleSetup& setup : setups) {
    if (!text.empty()) text += "; ";
    text += std::to_string(setup.processes) + (setup.processes == 1 ? " process" : " processes");
    if (setup.processes > 1) text += ", " + std::string(routing_name(setup.routing));
  }
  return text;
}

void describe(BenchReport& report, const CycleConfig& config, const std::vector<CycleSetup>& setups) {
  const bool one = only_one_process(setups);
  report.description =
      std::string(one ? "one request's session cycle in one process: open (process lock held from the previous "
                        "request), read "
                      : "one request's session cycle in N processes sharing the store (sticky routing: session k "
                        "always to process k % N; random: any process), each request: open, read ") +
      "profile + recent + cart, edit one line item's qty in cart, commit; redis: phpredis lock, HMGET of the 3, "
      "decode, HSET cart, unlock" +
      (one ? "" : " (each process its own connection, routed the same way)");
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
  if (!one) report.parameters["setups"] = setups_text(setups);
}

void add_notes(BenchReport& report, const std::vector<CycleSetup>& setups) {
  const bool random = std::any_of(setups.begin(), setups.end(), [](const CycleSetup& setup) {
    return setup.processes > 1 && setup.routing == Routing::Random;
  });
  report.notes.push_back(
      std::string(only_one_process(setups) ? "" : "one process or sticky routing: ") +
      "shmsession's open() reuses the process lock this process still holds and refreshes nothing (the "
      "session version did not move): the steady state of a sticky process; a session last written by "
      "another process would first be copied in");
  if (random) {
    report.notes.push_back(
        "random routing: with sticky locks a session's lock stays with the process that served it last, so "
        "about (N-1)/N of the requests wait for a hand-over: release request to the holder's watcher, its "
        "flush and release, the wake-up, the copy's refresh; the adaptive policy (the Client's default) "
        "releases a session at the end of each request once another process asked for it, so the next "
        "request finds it free and copies only the attributes that moved; a request still waits when the "
        "session is in another process's request at that moment; the hand-over table gives each phase of the "
        "requests that waited (probes in the library, CLOCK_MONOTONIC; the whole request runs from open() to "
        "the handle's end, so it also holds the reads, the edit and the lock request itself)");
  }
  report.notes.push_back(
      "both sides encode with sync/attribute_codec.hpp (Boost binary archive); redis decodes the 3 values on "
      "every request (as PHP unserializes $_SESSION), shmsession decodes only what the primary changed");
  report.notes.push_back(
      "redis lock: phpredis's recipe (SET NX PX 30000, EVALSHA compare-and-delete), uncontended: "
      "4 round trips per cycle on 127.0.0.1");
  if (!only_one_process(setups))
    report.notes.push_back(
        "several processes: ops/s is the sum over them (first start to last end), p50/p99 over all their "
        "requests; a redis lock found taken is retried after phpredis's 20 ms lock_wait_time");
}

// --- More than one host (shmbench hosts) ------------------------------------------

constexpr std::string_view kHostsName = "hosts";

std::atomic<hosts::RedisSink*> bench_sink{nullptr};
extern "C" void stop_bench_sink(int /*signal*/) {
  if (hosts::RedisSink* sink = bench_sink.load()) sink->stop();
}

// A host's Redis sink, as its agent runs it, in a child process (it takes
// process locks in the store, which must not be the workers'); stopped by
// SIGTERM, SIGKILLed if it does not stop.
class SinkProcess {
 public:
  SinkProcess(const std::string& store, const hosts::HostConfig& config) {
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      int code = 0;
      try {
        Store s = Store::attach(store);
        hosts::RedisSinkOptions options;
        options.config = config;
        hosts::RedisSink sink(s, options);
        bench_sink = &sink;
        struct sigaction sa {};
        sa.sa_handler = stop_bench_sink;
        ::sigaction(SIGTERM, &sa, nullptr);
        sink.run();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "shmbench: hosts: the Redis sink of %s failed: %s\n", store.c_str(), e.what());
        code = 1;
      }
      ::_exit(code);
    }
    // Ready once it wrote the host's configuration and holds its lock.
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (;;) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("the Redis sink of " + store + " exited at its start");
      }
      if (Store::exists(hosts::HostRecords::name_for(store))) {
        try {
          hosts::HostRecords records = hosts::HostRecords::attach(store);
          for (const LockInfo& l : records.store().locks())
            if (l.session == hosts::HostRecords::kConfigId && l.holder_pid == pid_) return;
        } catch (const Error&) {  // being made
        }
      }
      if (std::chrono::steady_clock::now() > end)
        throw std::runtime_error("the Redis sink of " + store + " never started");
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  ~SinkProcess() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) != pid_) {
      if (std::chrono::steady_clock::now() > end) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  SinkProcess(const SinkProcess&) = delete;
  SinkProcess& operator=(const SinkProcess&) = delete;

 private:
  pid_t pid_ = -1;
};

// One setup of the hosts workload: `hosts` 0 is one host without Redis
// (the store alone: the baseline); else that many hosts (stores), worker w
// on host w % hosts, sessions shared through the Redis peer.
struct HostsSetup {
  int hosts = 0;
  int foreign_percent = 0;
  std::string_view operation;
};

ThroughputRow measure_hosts(const CycleConfig& config, const RunOptions& options, const RedisServer& server,
                            const HostsSetup& setup, std::vector<std::string>& notes) {
  progress(options, kHostsName, std::string(setup.operation));
  {
    RedisConnection redis = RedisConnection::connect(server.port());
    redis.command({"FLUSHALL"});
  }
  const int stores = std::max(setup.hosts, 1);
  std::vector<std::unique_ptr<ScratchStore>> scratch;
  std::vector<std::unique_ptr<SinkProcess>> sinks;
  struct RemoveRecords {
    std::vector<std::unique_ptr<ScratchStore>>& scratch;
    ~RemoveRecords() {
      for (const auto& s : scratch) hosts::HostRecords::remove(s->name());
    }
  } remove_records{scratch};
  for (int h = 0; h < stores; ++h) {
    scratch.push_back(std::make_unique<ScratchStore>("hosts_" + std::to_string(h), kSegmentBytes));
    if (setup.hosts > 0) {
      hosts::HostRecords::remove(scratch.back()->name());
      hosts::HostConfig host;
      host.host = "bench-host-" + std::to_string(h);
      host.redis = "127.0.0.1:" + std::to_string(server.port());
      host.prefix = "shmsbench:";
      sinks.push_back(std::make_unique<SinkProcess>(scratch.back()->name(), host));
    }
  }
  FillLine filled;
  ForkShared<std::atomic<std::uint64_t>> acquired, loaded;
  const LoopResult loop = run_in_processes(
      config.processes,
      [&](WorkerContext& ctx) {
        const std::string& name = scratch[static_cast<std::size_t>(ctx.index() % stores)]->name();
        Store store = Store::attach(name);
        std::shared_ptr<hosts::HostGate> gate;
        if (setup.hosts > 0) gate = std::make_shared<hosts::HostGate>(name);
        sync::Client client(store, sync::ClientOptions{.comparison = sync::Comparison::Binary, .gate = gate});
        const CycleInputs inputs = make_inputs(config, ctx.index(), setup.foreign_percent);
        fill_sessions(client, config, inputs);
        wait_for_fills(*filled, config.processes);
        hosts::HostGateStats before;
        warm_then_measure(
            ctx, config, inputs,
            [&](std::uint32_t index, std::uint64_t k) { our_cycle(client, inputs.ids[index], k, nullptr); },
            [&] {
              if (gate) before = gate->stats();
            });
        if (gate) {
          *acquired += gate->stats().acquired - before.acquired;
          *loaded += gate->stats().loaded - before.loaded;
        }
      },
      kPhaseTimeout);
  if (setup.hosts > 0) {
    const double share =
        loop.ops > 0 ? 100.0 * static_cast<double>(acquired->load()) / static_cast<double>(loop.ops) : 0;
    notes.push_back(std::string(setup.operation) + ": " + std::to_string(loop.ops) + " measured requests, " +
                    fixed(share, 1) + "% took the session from the other host (" + std::to_string(loaded->load()) +
                    " loaded from Redis)");
  }
  ThroughputRow row = throughput_row(std::string(setup.operation), kOurSystem, loop);
  row.processes = config.processes;
  return row;
}

}  // namespace
}  // namespace cycle_workload

BenchReport run_hosts(const RunOptions& options) {
  using namespace cycle_workload;
  BenchReport report = start_report(kHostsName, options);
  CycleSetup two{2, Routing::Sticky};
  CycleConfig config = cycle_config(options, two);
  report.description =
      "the request cycle of `cycle` (binary comparison) from 2 worker processes: on one host (one store, no "
      "Redis), on 2 hosts (a store each, with its Redis sink, sessions shared through Redis) with every request "
      "on its session's host, and with 10% of requests on the other host; beside every request through Redis "
      "(phpredis lock, HMGET, HSET, unlock) from 2 processes";
  report.parameters = {{"sessions", config.sessions},
                       {"processes", config.processes},
                       {"loop_s", std::chrono::duration<double>(config.loop_time).count()},
                       {"ship_interval_ms", hosts::RedisSinkOptions{}.ship_interval.count()},
                       {"seed", config.seed}};
  std::optional<RedisServer> peer = start_redis_peer(options, report);
  if (!peer) throw Error(Errc::NotFound, "hosts: needs redis-server (sessions are shared through it)");
  const HostsSetup setups[] = {
      {0, 0, "request cycle, 1 host (the store alone)"},
      {2, 0, "request cycle, 2 hosts, each request on its session's host"},
      {2, 10, "request cycle, 2 hosts, 10% of requests on the other host"},
  };
  std::vector<std::string> notes;
  std::vector<double> rates;
  for (const HostsSetup& setup : setups) {
    report.results.push_back(measure_hosts(config, options, *peer, setup, notes));
    rates.push_back(report.results.back().ops_per_s);
  }
  ThroughputRow redis = measure_redis(config, options, *peer);
  redis.operation = "request cycle, every request through Redis";
  const double redis_rate = redis.ops_per_s;
  report.results.push_back(std::move(redis));
  auto ratio = [](double a, double b) { return b > 0 ? fixed(a / b, 2) : std::string("n/a"); };
  report.notes.push_back("2 hosts, each on its own: " + ratio(rates[1], rates[0]) + " of 1 host (goal: at least 0.90)");
  report.notes.push_back("2 hosts, 10% on the other host: " + ratio(rates[2], redis_rate) +
                         "x every request through Redis (goal: at least 5x)");
  report.notes.insert(report.notes.end(), notes.begin(), notes.end());
  report.notes.push_back(
      "hosts on one machine: two stores, each with its Redis sink in a process of its own (as shmsession-agent "
      "run --redis runs it), one standalone redis-server; a request on the other host takes the session's "
      "ownership (release request, ship, release, grant, load), and the session's next request on its own host "
      "takes it back");
  peer->stop();
  progress(options, kHostsName, "done");
  return report;
}

BenchReport run_cycle(const RunOptions& options) {
  using namespace cycle_workload;
  BenchReport report = start_report(kName, options);
  const std::vector<CycleSetup>& setups = options.cycle_setups;
  for (const CycleSetup& setup : setups)
    if (setup.processes < 1 || setup.processes > kMaxCycleProcesses)
      throw Error(Errc::InvalidArgument, "cycle: processes must be 1.." + std::to_string(kMaxCycleProcesses));
  describe(report, cycle_config(options, CycleSetup{}), setups);
  std::optional<RedisServer> peer = start_redis_peer(options, report);

  std::vector<std::string> moved_notes;
  for (const CycleSetup& setup : setups) {
    const CycleConfig config = cycle_config(options, setup);
    report.results.push_back(
        measure_ours(config, options, sync::Comparison::ObjectGraph, report.hand_over_phases, moved_notes));
    report.results.push_back(
        measure_ours(config, options, sync::Comparison::Binary, report.hand_over_phases, moved_notes));
    if (peer) {
      report.results.push_back(measure_redis(config, options, *peer));
    } else {
      ThroughputRow row = unavailable_row(std::string(kCycleRedis), kRedisSystem, config.processes);
      if (config.processes > 1) row.routing = std::string(routing_name(config.routing));
      report.results.push_back(std::move(row));
    }
  }
  add_notes(report, setups);
  report.notes.insert(report.notes.end(), moved_notes.begin(), moved_notes.end());

  if (peer) peer->stop();
  progress(options, kName, "done");
  return report;
}

}  // namespace shmsession::bench
