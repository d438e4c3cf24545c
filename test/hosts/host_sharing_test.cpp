// Sessions shared by two hosts through a real 3-master Redis Cluster: each
// "host" is a store with its own shmsession-agent process (the Redis sink,
// run as operators run it) and an app-server process whose Client takes
// ownership through a HostGate. Requests alternating between the hosts,
// a host killed while it owns sessions, its late writes after it comes
// back, and an owner that never hands a session over.
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include <boost/serialization/vector.hpp>

#include "shm/error.hpp"
#include "sync/client.hpp"
#include "sync/hosts/host_gate.hpp"
#include "sync/hosts/host_records.hpp"
#include "sync/hosts/ownership.hpp"
#include "test/hosts/test_redis_cluster.hpp"
#include "test/support/test_support.hpp"
#include "tools/common/temp_dir.hpp"

using namespace shmsession;
using namespace shmsession::hosts;
using namespace std::chrono_literals;
using shmsession::test::ChildProcess;
using shmsession::test::code_of;
using shmsession::test::SegmentGuard;
using shmsession::test::Signal;
using shmsession::test::TestRedis;
using Clock = std::chrono::steady_clock;

struct Count {
  std::uint64_t n = 0;
  template <class A>
  void serialize(A& a, unsigned) {
    a& boost::serialization::make_nvp("n", n);
  }
};

struct Steps {
  std::vector<std::uint64_t> seen;
  template <class A>
  void serialize(A& a, unsigned) {
    a& boost::serialization::make_nvp("seen", seen);
  }
};

namespace {

constexpr auto kFailAfter = 60s;  // only to fail instead of hanging

TestRedis& shared_redis() {
  static TestRedis redis(3, 0);
  return redis;
}

void empty_masters(const TestRedis& redis) {
  for (std::size_t i = 0; i < 3; ++i) BOOST_TEST_REQUIRE(redis.on(redis.nodes()[i], {"FLUSHALL"}).str == "OK");
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A process of the test running a tool (here shmsession-agent), its
// output in a file; SIGKILLed and reaped at the latest by the destructor.
class Tool {
 public:
  Tool(const std::vector<std::string>& argv, std::string log)
      : pid_(test::spawn_logged(argv, log)), log_(std::move(log)) {}
  ~Tool() { kill(SIGKILL); }
  Tool(const Tool&) = delete;
  Tool& operator=(const Tool&) = delete;

  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) != pid_) return true;
    pid_ = -1;
    return false;
  }
  // Sends `signal` and reaps it (a SIGTERM'd agent ships what it has first).
  int kill(int signal) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, signal);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  std::string log() const { return read_file(log_); }

 private:
  pid_t pid_ = -1;
  std::string log_;
};

// One host: its store, its host records, its agent (Redis sink), and an
// app-server process serving one request at a time on command.
class Host {
 public:
  Host(const std::string& id, TestRedis& redis, const std::string& dir, std::chrono::milliseconds lease = 10s,
       std::uint32_t idle_timeout_s = 1800)
      : id_(id),
        redis_(redis),
        dir_(dir),
        lease_(lease),
        guard_(id),
        store_(test::make_store(guard_, {.size_bytes = 16 << 20, .default_idle_timeout_s = idle_timeout_s})) {
    HostRecords::remove(guard_.name());
    start_agent();
  }
  ~Host() {
    app_.reset();
    agent_.reset();
    HostRecords::remove(guard_.name());
  }

  const std::string& id() const noexcept { return id_; }
  const std::string& name() const noexcept { return guard_.name(); }
  Store& store() noexcept { return store_; }
  Tool& agent() { return *agent_; }

  void start_agent() {
    agent_.reset();
    agent_ = std::make_unique<Tool>(
        std::vector<std::string>{AGENT_PATH, "run", guard_.name(), "--redis", redis_.seeds(), "--host-id", id_,
                                 "--lease-ms", std::to_string(lease_.count()),
                                 // Changes leave 20 ms after the first (the default 1 s would only
                                 // make the tests wait): a session's changes still leave together.
                                 "--ship-interval-ms", "20"},
        dir_ + "/" + id_ + ".agent.log");
    // Ready when its records exist with its configuration and it holds
    // their config lock (it claimed the store as this host's sink).
    for (const auto end = Clock::now() + kFailAfter;;) {
      BOOST_TEST_REQUIRE(agent_->running(), "agent of " << id_ << " exited: " << agent_->log());
      BOOST_TEST_REQUIRE((Clock::now() < end), "agent of " << id_ << " never started: " << agent_->log());
      if (Store::exists(HostRecords::name_for(guard_.name()))) {
        try {
          HostRecords r = HostRecords::attach(guard_.name());
          bool claimed = false;
          for (const LockInfo& l : r.store().locks()) claimed = claimed || l.session == HostRecords::kConfigId;
          if (r.config().host == id_ && claimed) break;
        } catch (const Error&) {  // being made
        }
      }
      std::this_thread::sleep_for(2ms);
    }
  }
  void kill_agent() { agent_->kill(SIGKILL); }

  // Starts the app-server process: on each go(), it opens `sid` (waiting up
  // to `open_timeout` for ownership), runs `request`, commits and says done.
  using Request = std::function<void(sync::SessionHandle&)>;
  void start_app(const std::vector<std::string>& sids, const Request& request,
                 std::chrono::milliseconds open_timeout = 30s) {
    app_.reset();
    go_ = std::make_unique<Signal>();
    done_ = std::make_unique<Signal>();
    app_ = std::make_unique<ChildProcess>([this, sids, request, open_timeout] {
      Store store = Store::attach(guard_.name());
      sync::ClientOptions options;
      options.gate = std::make_shared<HostGate>(guard_.name());
      options.lock_policy = sync::LockPolicy::Sticky;  // a hand-over asks this process to release
      options.lock_timeout = open_timeout;
      sync::Client client(store, options);
      for (std::size_t k = 0;; ++k) {
        if (!go_->wait(std::chrono::hours(1))) return 0;
        {
          sync::SessionHandle s = client.open(sids[k % sids.size()]);
          request(s);
          s.commit();
        }
        done_->notify();
      }
    });
  }
  // One request by the app process; false if it failed (the app exited).
  bool request() {
    go_->notify();
    return done_->wait(kFailAfter);
  }
  int app_exit() { return app_->wait_for(5s); }
  void kill_app() { app_.reset(); }

 private:
  std::string id_;
  TestRedis& redis_;
  std::string dir_;
  std::chrono::milliseconds lease_;
  SegmentGuard guard_;
  Store store_;
  std::unique_ptr<Tool> agent_;
  std::unique_ptr<Signal> go_, done_;
  std::unique_ptr<ChildProcess> app_;
};

void count_and_append(sync::SessionHandle& s) {
  if (!s.contains("counter")) {
    s.put("counter", Count{});
    s.put("list", Steps{});
  }
  auto [counter, list] = s.edit<Count, Steps>("counter", "list");
  list->seen.push_back(counter->n);
  ++counter->n;
}

// Redis's bytes of one attribute of `sid` (empty if absent).
std::string in_redis(Ownership& reader, const std::string& sid, const std::string& name) {
  for (const auto& [n, v] : reader.load(sid).attributes)
    if (n == name) return v;
  return {};
}

std::string local_value(Store& store, const std::string& sid, const std::string& name) {
  const std::optional<SessionSnapshot> s = store.peek(sid);
  const Attribute* a = s ? s->find(name) : nullptr;
  return a ? a->value : std::string();
}

// Waits until Redis holds what `store` holds of `sid`'s attribute `name`.
void wait_shipped(Ownership& reader, Store& store, const std::string& sid, const std::string& name, Tool& agent) {
  for (const auto end = Clock::now() + kFailAfter;;) {
    const std::string local = local_value(store, sid, name);
    if (!local.empty() && in_redis(reader, sid, name) == local) return;
    BOOST_TEST_REQUIRE((Clock::now() < end), sid << " never reached Redis; agent: " << agent.log());
    std::this_thread::sleep_for(2ms);
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(requests_alternating_between_two_hosts_lose_no_update) {
  TestRedis& redis = shared_redis();
  empty_masters(redis);
  tools::TempDir dir("shms-hosts");
  Host a("host-a", redis, dir.path());
  Host b("host-b", redis, dir.path());
  a.start_app({"cart"}, count_and_append);
  b.start_app({"cart"}, count_and_append);
  constexpr int kRequests = 1000;
  const auto start = Clock::now();
  for (int i = 0; i < kRequests; ++i) {
    Host& h = i % 2 == 0 ? a : b;
    if (!h.request())
      BOOST_FAIL("request " << i << " on " << h.id() << " failed (app exit " << h.app_exit()
                            << "); agents: " << a.agent().log() << b.agent().log());
  }
  BOOST_TEST_MESSAGE(kRequests << " alternating requests in "
                               << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count()
                               << " ms");
  // The last request ran on b: b's store has every update, in order.
  RedisCluster cluster(parse_redis_addresses(redis.seeds()));
  Ownership reader(cluster, "reader");
  wait_shipped(reader, b.store(), "cart", "list", b.agent());
  sync::Client check(b.store());
  {
    // Read b's copy directly (no gate: the test only looks).
    const std::optional<SessionSnapshot> snap = b.store().peek("cart");
    BOOST_TEST_REQUIRE(snap.has_value());
  }
  a.kill_app();
  b.kill_app();
  // Both hosts' stores and Redis decode to 1000 updates in order. b holds
  // the session; a's copy is the state it released at (999 updates).
  Store& bs = b.store();
  const std::string list_bytes = local_value(bs, "cart", "list");
  BOOST_TEST(in_redis(reader, "cart", "list") == list_bytes);
  BOOST_TEST(in_redis(reader, "cart", "counter") == local_value(bs, "cart", "counter"));
  {
    sync::SessionHandle s = check.open("cart");
    BOOST_TEST(s.get<Count>("counter")->n == std::uint64_t{kRequests});
    const std::vector<std::uint64_t>& seen = s.get<Steps>("list")->seen;
    BOOST_TEST_REQUIRE(seen.size() == std::size_t{kRequests});
    for (std::size_t i = 0; i < seen.size(); ++i) BOOST_TEST_REQUIRE(seen[i] == i, "update " << i << " out of order");
  }
  const OwnerInfo owner = reader.owner("cart");
  BOOST_TEST(owner.host == "host-b");
  BOOST_TEST(owner.last_token == std::uint64_t{kRequests}, "one grant per request: the session moved every time");
  BOOST_TEST(reader.load("cart").version >= std::uint64_t{kRequests - 1});
}

BOOST_AUTO_TEST_CASE(an_owner_that_never_hands_over_makes_open_time_out_and_frees_the_lock) {
  TestRedis& redis = shared_redis();
  empty_masters(redis);
  tools::TempDir dir("shms-hosts");
  Host a("host-a", redis, dir.path());
  RedisCluster cluster(parse_redis_addresses(redis.seeds()));
  Ownership elsewhere(cluster, "host-gone");  // owns "held" and answers nobody
  BOOST_TEST_REQUIRE((elsewhere.acquire("held").kind == Acquired::Kind::Granted));
  sync::ClientOptions options;
  options.gate = std::make_shared<HostGate>(a.name());
  sync::Client client(a.store(), options);
  const std::string why = test::message_of([&] { client.open("held", 300ms); });
  BOOST_TEST(why.find("owned by host 'host-gone'") != std::string::npos, why);
  BOOST_TEST((code_of([&] { client.open("held", 300ms); }) == Errc::LockTimeout));
  BOOST_TEST(!client.holds("held"));
  BOOST_TEST(a.store().try_acquire("held").has_value(), "the refused open let the process lock go");
  BOOST_TEST(elsewhere.owner("held").queue.empty(), "and left the queue");
  BOOST_TEST(elsewhere.owner("held").host == "host-gone");
}

BOOST_AUTO_TEST_CASE(a_killed_host_loses_its_sessions_after_the_lease_and_its_late_writes_are_fenced) {
  TestRedis& redis = shared_redis();
  empty_masters(redis);
  tools::TempDir dir("shms-hosts");
  constexpr int kSessions = 24;
  std::vector<std::string> sids;
  for (int i = 0; i < kSessions; ++i) sids.push_back("user-" + std::to_string(i));
  Host a("host-a", redis, dir.path(), 1500ms);
  Host b("host-b", redis, dir.path(), 1500ms);
  RedisCluster cluster(parse_redis_addresses(redis.seeds()));
  Ownership reader(cluster, "reader");
  // A serves every session once: it owns them all, and ships them.
  a.start_app(sids, count_and_append);
  for (int i = 0; i < kSessions; ++i) BOOST_TEST_REQUIRE(a.request());
  for (const std::string& sid : sids) wait_shipped(reader, a.store(), sid, "list", a.agent());
  // Spread over the three masters by their hash tags.
  for (std::size_t m = 0; m < 3; ++m)
    BOOST_TEST(redis.on(redis.nodes()[m], {"DBSIZE"}).integer > 0, "master " << m << " holds none");
  // Host A dies: its agent and its app process, SIGKILLed.
  a.kill_app();
  a.kill_agent();
  // B takes every session once A's lease ran out, with what A shipped.
  b.start_app(sids, count_and_append);
  for (int i = 0; i < kSessions; ++i)
    if (!b.request()) BOOST_FAIL("b's request " << i << ": app exit " << b.app_exit() << "; " << b.agent().log());
  for (const std::string& sid : sids) {
    BOOST_TEST(reader.owner(sid).host == "host-b");
    wait_shipped(reader, b.store(), sid, "list", b.agent());
  }
  std::vector<std::string> b_bytes;
  for (const std::string& sid : sids) b_bytes.push_back(local_value(b.store(), sid, "list"));
  // A comes back believing it owns them (its records say so): a late write
  // on user-0 by its app before its agent runs again.
  HostRecords a_records = HostRecords::attach(a.name());
  BOOST_TEST_REQUIRE((a_records.get("user-0")->state == HostRecord::State::Owned));
  a.start_app({"user-0"}, [](sync::SessionHandle& s) { s.put("late", Count{42}); });
  BOOST_TEST_REQUIRE(a.request());
  BOOST_TEST(!local_value(a.store(), "user-0", "late").empty());
  a.kill_app();
  a.start_agent();  // ships what it believes it owns: fenced, every one
  for (const auto end = Clock::now() + kFailAfter;;) {
    int lost = 0;
    for (const std::string& sid : sids) lost += a_records.get(sid)->state == HostRecord::State::Lost ? 1 : 0;
    if (lost == kSessions) break;
    BOOST_TEST_REQUIRE((Clock::now() < end), lost << " of " << kSessions << " marked lost; agent: " << a.agent().log());
    std::this_thread::sleep_for(2ms);
  }
  for (std::size_t i = 0; i < sids.size(); ++i) {
    BOOST_TEST(in_redis(reader, sids[i], "list") == b_bytes[i], sids[i] << ": Redis took a fenced write");
    BOOST_TEST(in_redis(reader, sids[i], "late").empty());
  }
  // A's next request on user-0 takes it back from B and sees B's state,
  // not its own late write.
  a.start_app({"user-0"}, [](sync::SessionHandle& s) {
    if (s.contains("late")) throw Error(Errc::Corrupt, "the fenced late write came back");
    count_and_append(s);
  });
  if (!a.request()) BOOST_FAIL("a's app: exit " << a.app_exit() << "; " << a.agent().log());
  BOOST_TEST(reader.owner("user-0").host == "host-a");
  a.kill_app();
  sync::Client check(a.store());
  sync::SessionHandle s = check.open("user-0");
  BOOST_TEST(s.get<Count>("counter")->n == 3u, "a's first, b's, a's again");
  BOOST_TEST(!s.contains("late"));
}

BOOST_AUTO_TEST_CASE(a_redis_master_killed_under_load_is_followed_and_the_hosts_converge) {
  TestRedis redis(3, 1);  // its own cluster: this case kills a node
  tools::TempDir dir("shms-hosts");
  constexpr int kSessions = 12;
  std::vector<std::string> sids;
  for (int i = 0; i < kSessions; ++i) sids.push_back("cart-" + std::to_string(i));
  Host a("host-a", redis, dir.path());
  Host b("host-b", redis, dir.path());
  a.start_app(sids, count_and_append);
  b.start_app(sids, count_and_append);
  RedisCluster cluster(parse_redis_addresses(redis.seeds()));
  Ownership reader(cluster, "reader");
  // Requests go to a and b in turns of 5 (each app walks the sessions in
  // order), so sessions keep moving between the hosts.
  int served = 0;
  auto serve = [&](int n) {
    for (int i = 0; i < n; ++i, ++served) {
      Host& h = (served / 5) % 2 == 0 ? a : b;
      if (!h.request())
        BOOST_FAIL("request " << served << " on " << h.id() << " failed (app exit " << h.app_exit()
                              << "); agents: " << a.agent().log() << b.agent().log());
    }
  };
  serve(200);
  // Kill the master holding the first session's slot (and so its owner
  // key, fence and data) in the middle of the load.
  const RedisAddress victim = cluster.master_of(redis_key_slot(reader.key(sids[0], "owner")));
  redis.kill(victim);
  serve(200);
  redis.wait_settled();
  serve(200);
  // Converged: every session is readable in Redis, as its last owner holds
  // it, and each one's updates are a whole chain (counter n, list 0..n-1):
  // whatever Redis's asynchronous replication dropped at the failover, no
  // host ever served a mix of states.
  a.kill_app();
  b.kill_app();
  std::uint64_t total = 0;
  for (const std::string& sid : sids) {
    const std::string owner = reader.owner(sid).host;
    BOOST_TEST_REQUIRE((owner == "host-a" || owner == "host-b"), sid << " owned by '" << owner << "'");
    Host& h = owner == "host-a" ? a : b;
    wait_shipped(reader, h.store(), sid, "list", h.agent());
    BOOST_TEST(in_redis(reader, sid, "counter") == local_value(h.store(), sid, "counter"), sid);
    sync::Client check(h.store());
    sync::SessionHandle s = check.open(sid);
    const std::uint64_t n = s.get<Count>("counter")->n;
    const std::vector<std::uint64_t>& seen = s.get<Steps>("list")->seen;
    BOOST_TEST_REQUIRE(seen.size() == n, sid);
    for (std::size_t i = 0; i < seen.size(); ++i) BOOST_TEST_REQUIRE(seen[i] == i, sid << " update " << i);
    total += n;
  }
  BOOST_TEST_MESSAGE(total << " of 600 updates kept through the failover");
  BOOST_TEST(total <= 600u);
  BOOST_TEST(total >= 400u, "at most the updates around the failover may be lost");
  BOOST_TEST((cluster.master_of(redis_key_slot(reader.key(sids[0], "owner"))) != victim), "the replica took over");
  BOOST_TEST(cluster.stats().map_refreshes >= 1u);
}

// The gate's two branches after a grant: a host that gets back a session
// nobody changed since it released it serves its own copy (no load, the
// local version stays); one that another host changed meanwhile is
// replaced by Redis's state (the local version moves).
BOOST_AUTO_TEST_CASE(a_session_taken_back_unchanged_is_not_loaded_again) {
  TestRedis& redis = shared_redis();
  empty_masters(redis);
  tools::TempDir dir("shms-hosts");
  Host a("host-a", redis, dir.path());
  Host b("host-b", redis, dir.path());
  RedisCluster cluster(parse_redis_addresses(redis.seeds()));
  Ownership reader(cluster, "reader");
  const Host::Request read_only = [](sync::SessionHandle& s) {
    if (!s.contains("counter")) throw Error(Errc::NotFound, "no counter");
  };
  a.start_app({"s"}, count_and_append);
  BOOST_TEST_REQUIRE(a.request());
  wait_shipped(reader, a.store(), "s", "list", a.agent());
  a.start_app({"s"}, read_only);
  b.start_app({"s"}, read_only);
  BOOST_TEST_REQUIRE(b.request());  // b never had it: loaded
  const std::uint64_t redis_version = reader.load("s").version;
  const SessionVersion a_before = *a.store().version("s");
  const SessionVersion b_before = *b.store().version("s");
  BOOST_TEST_REQUIRE(a.request());  // back to a, unchanged: no load
  BOOST_TEST_REQUIRE(b.request());  // and to b, unchanged: no load
  BOOST_TEST(reader.owner("s").host == "host-b");
  BOOST_TEST(reader.owner("s").last_token == 4u, "four grants");
  BOOST_TEST((*a.store().version("s") == a_before), "a served its own copy");
  BOOST_TEST((*b.store().version("s") == b_before), "b served its own copy");
  BOOST_TEST(reader.load("s").version == redis_version, "nothing shipped: nothing changed");
  // b writes; a takes it back and loads b's state.
  b.start_app({"s"}, count_and_append);
  BOOST_TEST_REQUIRE(b.request());
  BOOST_TEST_REQUIRE(a.request());
  BOOST_TEST((a.store().version("s")->version > a_before.version), "a loaded b's change");
  BOOST_TEST(local_value(a.store(), "s", "list") == local_value(b.store(), "s", "list"));
}

BOOST_AUTO_TEST_CASE(shmctl_shows_owners_hands_sessions_over_and_takes_them_by_force) {
  TestRedis& redis = shared_redis();
  empty_masters(redis);
  tools::TempDir dir("shms-hosts");
  Host a("host-a", redis, dir.path());
  Host b("host-b", redis, dir.path());
  auto shmctl = [](const std::vector<std::string>& args) {
    std::vector<std::string> argv{SHMCTL_PATH};
    argv.insert(argv.end(), args.begin(), args.end());
    return test::run_command(argv);
  };
  a.start_app({"s"}, count_and_append);
  BOOST_TEST_REQUIRE(a.request());
  a.kill_app();  // its sticky process lock goes with it
  test::CommandResult owner = shmctl({"owner", a.name(), "s"});
  BOOST_TEST(owner.exit_code == 0, owner.err);
  BOOST_TEST(owner.out.find("owner          host-a") != std::string::npos, owner.out);
  test::CommandResult hosts = shmctl({"hosts", a.name(), "--json"});
  BOOST_TEST(hosts.exit_code == 0, hosts.err);
  BOOST_TEST(hosts.out.find("\"host\":\"host-a\"") != std::string::npos, hosts.out);
  BOOST_TEST(hosts.out.find("\"owned\":1") != std::string::npos, hosts.out);
  test::CommandResult info = shmctl({"info", a.name(), "--json"});
  BOOST_TEST(info.exit_code == 0, info.err);
  BOOST_TEST(info.out.find("\"hosts\":{\"host\":\"host-a\"") != std::string::npos, info.out);
  BOOST_TEST(info.out.find("\"sink_shipped_bytes\"") != std::string::npos, info.out);
  test::CommandResult info_text = shmctl({"info", a.name()});
  BOOST_TEST(info_text.out.find("shared as host 'host-a'") != std::string::npos, info_text.out);
  BOOST_TEST(info_text.out.find("hosts lag") != std::string::npos, info_text.out);
  // Hand-over: a's sink ships and releases; nobody owns it in Redis.
  test::CommandResult over = shmctl({"hand-over", a.name(), "s"});
  BOOST_TEST_REQUIRE(over.exit_code == 0, over.err);
  BOOST_TEST(over.out.find("released") != std::string::npos, over.out);
  RedisCluster cluster(parse_redis_addresses(redis.seeds()));
  Ownership reader(cluster, "reader");
  BOOST_TEST(reader.owner("s").host.empty());
  BOOST_TEST(shmctl({"hand-over", a.name(), "s"}).exit_code == 1, "not owned any more");
  // B serves it, then dies; a takes it by force without waiting for the
  // lease, and gets B's update.
  b.start_app({"s"}, count_and_append);
  BOOST_TEST_REQUIRE(b.request());
  wait_shipped(reader, b.store(), "s", "list", b.agent());
  b.kill_app();
  b.kill_agent();
  BOOST_TEST(shmctl({"take", a.name(), "s"}).exit_code == 2, "--force is required");
  const std::uint64_t b_token = reader.owner("s").token;
  test::CommandResult take = shmctl({"take", a.name(), "s", "--force"});
  BOOST_TEST_REQUIRE(take.exit_code == 0, take.err);
  const OwnerInfo after = reader.owner("s");
  BOOST_TEST(after.host == "host-a");
  BOOST_TEST(after.token > b_token, "b's token is fenced");
  BOOST_TEST(local_value(a.store(), "s", "list") == local_value(b.store(), "s", "list"), "a loaded b's state");
  // Errors name what failed.
  test::CommandResult missing = shmctl({"owner", "no-such-store", "s"});
  BOOST_TEST(missing.exit_code == 1);
  BOOST_TEST(missing.err.find("shmsession-agent run no-such-store --redis") != std::string::npos, missing.err);
  BOOST_TEST(shmctl({"owner", a.name(), "bad{id}"}).exit_code == 1);
  // The store owns "s" as host-a: its agent refuses to run under another id.
  a.kill_agent();
  test::CommandResult other =
      test::run_command({AGENT_PATH, "run", a.name(), "--redis", redis.seeds(), "--host-id", "host-z"});
  BOOST_TEST(other.exit_code == 1);
  BOOST_TEST(other.err.find("owns sessions as host 'host-a'") != std::string::npos, other.err);
}

// A store that held sessions before it was shared: the first request's
// grant finds Redis without them, keeps the local state, and the sink
// ships it whole although the request changed nothing.
BOOST_AUTO_TEST_CASE(a_session_held_before_the_store_was_shared_reaches_redis_at_its_first_grant) {
  TestRedis& redis = shared_redis();
  empty_masters(redis);
  tools::TempDir dir("shms-hosts");
  Host a("host-a", redis, dir.path());
  BOOST_TEST_REQUIRE(a.store().create_session("old"));
  a.store().commit("old", CommitBatch().put("note", "kept from before"));
  a.start_app({"old"}, [](sync::SessionHandle& s) {
    if (!s.contains("note")) throw Error(Errc::NotFound, "the local state was dropped");
  });
  BOOST_TEST_REQUIRE(a.request());
  RedisCluster cluster(parse_redis_addresses(redis.seeds()));
  Ownership reader(cluster, "reader");
  BOOST_TEST(reader.owner("old").host == "host-a");
  wait_shipped(reader, a.store(), "old", "note", a.agent());
  BOOST_TEST(in_redis(reader, "old", "note") == "kept from before");
}

// The records of sessions gone from the store expire (twice the store's
// idle timeout), those of sessions this host owns do not (the sink
// touches them): a host's records do not grow with every session it ever
// served.
BOOST_AUTO_TEST_CASE(the_records_of_sessions_gone_expire_and_those_owned_stay) {
  TestRedis& redis = shared_redis();
  empty_masters(redis);
  tools::TempDir dir("shms-hosts");
  Host a("host-a", redis, dir.path(), 1500ms, 1);           // records expire after 2 s idle
  BOOST_TEST_REQUIRE(a.store().create_session("kept", 0));  // the sessions never expire here: only records do
  BOOST_TEST_REQUIRE(a.store().create_session("gone", 0));
  a.start_app({"gone", "kept"}, count_and_append);
  BOOST_TEST_REQUIRE(a.request());
  BOOST_TEST_REQUIRE(a.request());
  a.kill_app();
  HostRecords records = HostRecords::attach(a.name());
  BOOST_TEST(records.config().record_idle_s == 2u);
  BOOST_TEST_REQUIRE(records.get("gone").has_value());
  // "gone" is handed over and removed here: its record serves nobody.
  test::CommandResult over = test::run_command({SHMCTL_PATH, "hand-over", a.name(), "gone"});
  BOOST_TEST_REQUIRE(over.exit_code == 0, over.err);
  BOOST_TEST_REQUIRE(a.store().remove_session("gone"));
  for (const auto end = Clock::now() + kFailAfter; records.get("gone").has_value();) {
    BOOST_TEST_REQUIRE((Clock::now() < end), "the record of a session gone never expired; " << a.agent().log());
    std::this_thread::sleep_for(5ms);
  }
  const std::optional<HostRecord> kept = records.get("kept");
  BOOST_TEST_REQUIRE(kept.has_value(), "an owned session's record expired");
  BOOST_TEST((kept->state == HostRecord::State::Owned));
}

// A session removed on its owner is removed for the other hosts too: a
// host holding an older copy loads the empty state rather than serving
// (and shipping back) its copy.
BOOST_AUTO_TEST_CASE(a_session_removed_on_its_owner_does_not_come_back_from_another_hosts_copy) {
  TestRedis& redis = shared_redis();
  empty_masters(redis);
  tools::TempDir dir("shms-hosts");
  Host a("host-a", redis, dir.path());
  Host b("host-b", redis, dir.path());
  RedisCluster cluster(parse_redis_addresses(redis.seeds()));
  Ownership reader(cluster, "reader");
  b.start_app({"x"}, count_and_append);
  BOOST_TEST_REQUIRE(b.request());
  a.start_app({"x"}, count_and_append);
  BOOST_TEST_REQUIRE(a.request());  // a takes it from b, b keeps its copy
  a.kill_app();
  BOOST_TEST_REQUIRE(!local_value(b.store(), "x", "counter").empty());
  BOOST_TEST_REQUIRE(a.store().remove_session("x"));
  for (const auto end = Clock::now() + kFailAfter; !reader.owner("x").host.empty();)
    BOOST_TEST_REQUIRE((Clock::now() < end), "a's sink never released the removed session; " << a.agent().log());
  b.start_app({"x"}, [](sync::SessionHandle& s) {
    if (s.contains("counter")) throw Error(Errc::Corrupt, "the removed session came back from b's copy");
  });
  if (!b.request()) BOOST_FAIL("b's request: exit " << b.app_exit() << "; " << b.agent().log());
  BOOST_TEST(reader.load("x").attributes.empty());
}
