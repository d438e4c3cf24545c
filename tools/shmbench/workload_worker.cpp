#include "tools/shmbench/workload_worker.hpp"

#include <hiredis/hiredis.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sync/attribute_codec.hpp"
#include "sync/client.hpp"
#include "tools/shmbench/fork_shared.hpp"
#include "tools/shmbench/process_group.hpp"
#include "tools/shmbench/scratch_store.hpp"
#include "tools/shmbench/session_objects.hpp"
#include "tools/shmbench/visit_pattern.hpp"
#include "tools/shmbench/worker_report.hpp"
#include "tools/shmbench/worker_sampler.hpp"

namespace shmsession::bench {

// The helpers in a namespace of their own: the other workloads, compiled in
// the same unity batch, have helpers of the same names.
namespace worker_workload {
namespace {

constexpr std::string_view kName = "worker";
constexpr auto kPhaseTimeout = std::chrono::seconds{1800};
// Ascending: a request takes the cart's handle before writing visits.
constexpr std::string_view kCart = "cart";
constexpr std::string_view kVisits = "visits";
constexpr std::uint64_t kVerifyEvery = 997;

// The visitor's own record, beside the cart: pages seen, the last request.
struct VisitLog {
  std::uint32_t pages = 0;
  std::uint64_t last_request = 0;

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& boost::serialization::make_nvp("pages", pages) & boost::serialization::make_nvp("last_request", last_request);
  }
};

struct WorkerConfig {
  std::uint64_t sessions = 0;
  std::uint64_t segment_bytes = 0;
  sync::ClientOptions client;
  std::uint64_t seed = 0;
};

WorkerConfig worker_config(const RunOptions& options) {
  WorkerConfig config;
  config.sessions = options.quick ? 20'000 : 1'000'000;
  // 533 B per session measured at 1M sessions (record, id, attribute
  // table, the two values, allocator headers): 700 leaves room to spare.
  config.segment_bytes = (std::uint64_t{32} << 20) + config.sessions * 700;
  config.client.max_sessions = 4096;
  config.client.max_bytes = std::size_t{64} << 20;
  config.client.max_idle = std::chrono::minutes(10);
  config.seed = options.seed;
  return config;
}

// The edit of one page view, the same on both sides and in the verifier.
void view_page(Cart& cart, VisitLog& log, std::uint64_t session, std::uint64_t request, std::uint64_t seed) {
  ++log.pages;
  log.last_request = request;
  if (log.pages <= 2)
    cart.items.push_back(make_line_item(seed ^ (session * 4 + log.pages)));
  else
    change_one_quantity(cart, request);
}

// Runs the whole sequence in a forked worker through a `Server` built
// there from `args` (server.request(visit, k) per request, server.fill(tick)
// per sample) and returns what the loop measured. The server is destroyed
// in the worker before it leaves (a Client commits and releases its locks).
template <class Server, class... Args>
LoopResult serve_sequence(const WorkerConfig& config, WorkerRecord& record, const Args&... args) {
  const std::uint64_t requests = VisitPattern::count_requests(config.sessions, config.seed);
  return run_in_processes(
      1,
      [&](WorkerContext& ctx) {
        Server server(config, record, args...);
        WorkerProgress progress;
        VisitPattern pattern(config.sessions, config.seed);
        ResidencySampler sampler(record, progress, [&](ResidencyTick& tick) { server.fill(tick); });
        ctx.measure(requests, [&](std::uint64_t k) {
          const Visit visit = *pattern.next();
          ++record.kinds[static_cast<std::size_t>(visit.kind)];
          server.request(visit, k);
          progress.requests.store(k + 1, std::memory_order_relaxed);
          progress.sessions_seen.store(pattern.started(), std::memory_order_relaxed);
        });
        sampler.stop();
      },
      kPhaseTimeout);
}

// --- shmsession -------------------------------------------------------------

std::uint64_t locks_held_by(const Store& store, pid_t pid) {
  std::uint64_t held = 0;
  for (const LockInfo& lock : store.locks()) held += lock.holder_pid == pid ? 1 : 0;
  return held;
}

// The worker process's side: the store attached, one Client.
class OurWorker {
 public:
  OurWorker(const WorkerConfig& config, WorkerRecord& record, const ScratchStore& scratch)
      : config_(config),
        record_(record),
        store_(Store::attach(scratch.name())),
        client_(store_, config.client),
        pid_(::getpid()) {}

  void request(const Visit& visit, std::uint64_t k) {
    const std::string id = session_id(visit.session);
    if (visit.kind != VisitKind::New && !client_.holds(id)) ++record_.reopened;
    sync::SessionHandle session = client_.open(id);
    VisitLog log;
    if (session.contains(kVisits)) log = *session.get<VisitLog>(kVisits);
    if (log.pages == 0) {
      Cart cart;
      view_page(cart, log, visit.session, k, config_.seed);
      session.put(kCart, std::move(cart));
    } else {
      view_page(*session.edit<Cart>(kCart), log, visit.session, k, config_.seed);
    }
    session.put(kVisits, log);
    session.commit();
  }

  // On the sampler thread: Client and Store are thread-safe.
  void fill(ResidencyTick& tick) {
    const sync::ClientStats stats = client_.stats();
    tick.kept = stats.sessions;
    tick.kept_bytes = stats.bytes;
    tick.evictions = stats.evictions;
    tick.locks = stats.locks_held;
    const std::uint64_t scan_began = monotonic_ns();
    tick.locks_in_store = locks_held_by(store_, pid_);
    record_.longest_scan_ns = std::max(record_.longest_scan_ns, monotonic_ns() - scan_began);
    tick.store_bytes = store_.stats().used_bytes;
  }

 private:
  const WorkerConfig& config_;
  WorkerRecord& record_;
  Store store_;
  sync::Client client_;
  pid_t pid_;
};

// --- Redis --------------------------------------------------------------------

// The peer's worker: one connection for requests, one for the sampler
// (a hiredis context belongs to one thread).
class RedisWorker {
 public:
  RedisWorker(const WorkerConfig& config, WorkerRecord& /*record*/, const RedisServer& server)
      : config_(config),
        redis_(RedisConnection::connect(server.port())),
        sampler_(RedisConnection::connect(server.port())) {
    redis_.command({"FLUSHALL"});
  }

  void request(const Visit& visit, std::uint64_t k) {
    const std::string id = session_id(visit.session);
    const RedisReplyPtr reply = redis_.command({"HMGET", id, kCart, kVisits});
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2)
      throw std::runtime_error("redis: HMGET of " + id + " did not return 2 values");
    Cart cart;
    VisitLog log;
    const redisReply* cart_bytes = reply->element[0];
    const redisReply* log_bytes = reply->element[1];
    if (log_bytes->type == REDIS_REPLY_STRING) {
      if (cart_bytes->type != REDIS_REPLY_STRING) throw std::runtime_error("redis: " + id + " has visits, no cart");
      log = sync::decode_attribute<VisitLog>(std::string_view(log_bytes->str, log_bytes->len));
      cart = sync::decode_attribute<Cart>(std::string_view(cart_bytes->str, cart_bytes->len));
    }
    view_page(cart, log, visit.session, k, config_.seed);
    const std::string cart_value = sync::encode_attribute(cart);
    const std::string log_value = sync::encode_attribute(log);
    if (redis_.command({"HSET", id, kCart, cart_value, kVisits, log_value})->type != REDIS_REPLY_INTEGER)
      throw std::runtime_error("redis: HSET did not answer an integer");
  }

  void fill(ResidencyTick& tick) { tick.store_bytes = sampler_.info_integer("memory", "used_memory_rss"); }

 private:
  const WorkerConfig& config_;
  RedisConnection redis_;
  RedisConnection sampler_;
};

// --- verification ---------------------------------------------------------------

struct Written {
  Cart cart;
  VisitLog log;
};

// Replays the sequence: what every kVerifyEvery-th session should hold.
std::unordered_map<std::uint64_t, Written> expected_sessions(const WorkerConfig& config) {
  std::unordered_map<std::uint64_t, Written> expected;
  VisitPattern pattern(config.sessions, config.seed);
  for (std::uint64_t k = 0;; ++k) {
    const std::optional<Visit> visit = pattern.next();
    if (!visit) break;
    if (visit->session % kVerifyEvery != 0) continue;
    Written& written = expected[visit->session];
    view_page(written.cart, written.log, visit->session, k, config.seed);
  }
  return expected;
}

// Compares the stored bytes of each attribute with the encoding of what was
// written; returns the first difference ("" if none) and counts mismatches.
template <class Lookup>
std::string compare_sessions(const std::unordered_map<std::uint64_t, Written>& expected, WorkerRow& row,
                             Lookup&& lookup) {
  std::string first;
  for (const auto& [session, written] : expected) {
    const std::string id = session_id(session);
    const std::pair<std::optional<std::string>, std::optional<std::string>> stored = lookup(id);
    ++row.verified;
    std::string why;
    if (!stored.first || !stored.second)
      why = "is missing an attribute";
    else if (*stored.first != sync::encode_attribute(written.cart))
      why = "holds another cart than written";
    else if (*stored.second != sync::encode_attribute(written.log))
      why = "holds other visits than written";
    if (why.empty()) continue;
    ++row.mismatched;
    if (first.empty()) first.append(id).append(" ").append(why);
  }
  return first;
}

std::optional<std::string> attribute(const std::optional<SessionSnapshot>& snapshot, std::string_view name) {
  if (!snapshot) return std::nullopt;
  const Attribute* found = snapshot->find(name);
  if (found == nullptr) return std::nullopt;
  return found->value;
}

void verify_ours(Store& store, const std::unordered_map<std::uint64_t, Written>& expected, WorkerRow& row,
                 BenchReport& report) {
  const std::string first = compare_sessions(expected, row, [&](const std::string& id) {
    const std::optional<SessionSnapshot> snapshot = store.peek(id);
    return std::pair{attribute(snapshot, kCart), attribute(snapshot, kVisits)};
  });
  if (!first.empty())
    report.failures.push_back("shmsession: " + std::to_string(row.mismatched) + " of " + std::to_string(row.verified) +
                              " sessions read back differ: " + first);
}

void verify_redis(const RedisServer& server, const std::unordered_map<std::uint64_t, Written>& expected, WorkerRow& row,
                  BenchReport& report) {
  RedisConnection redis = RedisConnection::connect(server.port());
  const auto value = [](const redisReply* element) -> std::optional<std::string> {
    if (element->type != REDIS_REPLY_STRING) return std::nullopt;
    return std::string(element->str, element->len);
  };
  const std::string first = compare_sessions(expected, row, [&](const std::string& id) {
    const RedisReplyPtr reply = redis.command({"HMGET", id, kCart, kVisits});
    return std::pair{value(reply->element[0]), value(reply->element[1])};
  });
  if (!first.empty())
    report.failures.push_back("redis: " + std::to_string(row.mismatched) + " of " + std::to_string(row.verified) +
                              " sessions read back differ: " + first);
}

// --- the report -----------------------------------------------------------------

WorkerRow worker_row(std::string_view system, const WorkerRecord& record, const LoopResult& loop,
                     const WorkerConfig& config) {
  WorkerRow row;
  row.system = std::string(system);
  row.measured = true;
  row.requests = loop.ops;
  row.sessions = config.sessions;
  row.new_visits = record.kinds[static_cast<std::size_t>(VisitKind::New)];
  row.follow_ups = record.kinds[static_cast<std::size_t>(VisitKind::FollowUp)];
  row.returning = record.kinds[static_cast<std::size_t>(VisitKind::Returning)];
  row.longest_sample_ms = static_cast<double>(record.longest_sample_ns) / 1e6;
  return row;
}

void add_samples(BenchReport& report, std::string_view system, const WorkerRecord& record, bool ours) {
  constexpr double kMiB = 1024.0 * 1024.0;
  for (std::uint32_t i = 0; i < record.tick_count; ++i) {
    const ResidencyTick& tick = record.ticks[i];
    ResidencyRow row;
    row.system = std::string(system);
    row.time_s = static_cast<double>(tick.at_ns) / 1e9;
    row.requests = tick.requests;
    row.sessions_seen = tick.sessions_seen;
    row.worker_rss_anon_mib = static_cast<double>(tick.rss_anon_kib) / 1024.0;
    row.store_mib = static_cast<double>(tick.store_bytes) / kMiB;
    if (ours) {
      row.kept_sessions = tick.kept;
      row.kept_mib = static_cast<double>(tick.kept_bytes) / kMiB;
      row.evictions = tick.evictions;
      row.locks_held = tick.locks;
      row.locks_in_store = tick.locks_in_store;
    }
    report.residency.push_back(row);
  }
  if (record.ticks_dropped)
    report.notes.push_back(std::string(system) + ": samples after the first " + std::to_string(kMaxResidencyTicks) +
                           " were not kept");
}

void describe(BenchReport& report, const WorkerConfig& config) {
  report.description =
      "one worker process serves every session over time (50% new visitors, 35% their next page, 15% returning "
      "visitors log-uniform among the last 100,000); a request: open, read visits, edit cart, put visits, commit; "
      "redis: HMGET + HSET of the session hash; sampled every second";
  report.parameters = {{"sessions", config.sessions},
                       {"requests", VisitPattern::count_requests(config.sessions, config.seed)},
                       {"max_sessions", config.client.max_sessions},
                       {"max_bytes", config.client.max_bytes},
                       {"max_idle_s", std::chrono::duration_cast<std::chrono::seconds>(config.client.max_idle).count()},
                       {"segment_bytes", config.segment_bytes},
                       {"verify_every", kVerifyEvery},
                       {"seed", config.seed}};
}

}  // namespace
}  // namespace worker_workload

BenchReport run_worker(const RunOptions& options) {
  using namespace worker_workload;
  BenchReport report = start_report(kName, options);
  const WorkerConfig config = worker_config(options);
  describe(report, config);
  std::optional<RedisServer> peer = start_redis_peer(options, report);
  progress(options, kName, "replaying the sequence for the verification sample");
  const std::unordered_map<std::uint64_t, Written> expected = expected_sessions(config);

  {
    ScratchStore scratch("worker", config.segment_bytes);
    ForkShared<WorkerRecord> record;
    progress(options, kName, "shmsession: " + std::to_string(config.sessions) + " sessions through one Client");
    const LoopResult loop = serve_sequence<OurWorker>(config, *record, scratch);
    report.results.push_back(throughput_row(std::string(kWorkerRequest), kOurSystem, loop));
    WorkerRow row = worker_row(kOurSystem, *record, loop, config);
    row.reopened = record->reopened;
    row.longest_scan_ms = static_cast<double>(record->longest_scan_ns) / 1e6;
    add_samples(report, kOurSystem, *record, true);
    progress(options, kName, "shmsession: reading back every " + std::to_string(kVerifyEvery) + "th session");
    verify_ours(scratch.store(), expected, row, report);
    report.workers.push_back(row);
  }
  if (peer) {
    ForkShared<WorkerRecord> record;
    progress(options, kName, "redis: the same sequence");
    const LoopResult loop = serve_sequence<RedisWorker>(config, *record, *peer);
    report.results.push_back(throughput_row(std::string(kWorkerRequest), kRedisSystem, loop));
    WorkerRow row = worker_row(kRedisSystem, *record, loop, config);
    add_samples(report, kRedisSystem, *record, false);
    verify_redis(*peer, expected, row, report);
    report.workers.push_back(row);
    peer->stop();
  } else {
    report.results.push_back(unavailable_row(std::string(kWorkerRequest), kRedisSystem, 1));
    report.workers.push_back(WorkerRow{.system = std::string(kRedisSystem)});
  }
  add_worker_notes(report);
  progress(options, kName, "done");
  return report;
}

}  // namespace shmsession::bench
