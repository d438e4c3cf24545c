// Two hosts: the primary's agent and the backup daemon run in two network
// namespaces joined by a veth pair, so replication crosses a real link
// between two network stacks. Shared memory is not namespaced: the primary
// and the standby stay two segments the test reads directly. The link is
// then cut at the network level (the agent's end of the veth set down)
// while writers commit, and the standby must converge again; and hit by a
// random sequence of faults (loss, blackholes, duplication, resets, delay,
// link cuts, SIGKILLs of either end), after which the standby must equal
// the primary.
//
// Needs root, `ip` (Debian package iproute2) and the right to create network
// namespaces (the chaos case also `nft`, package nftables); without them
// each test is skipped with one line saying why.
// Once a namespace could be created, every later failure is a real one.
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "shm/agent_seat.hpp"
#include "shm/change_feed.hpp"
#include "test/sync/replication_fixture.hpp"

using namespace shmsession;
using namespace shmsession::test;
using namespace std::chrono_literals;

namespace {

// Namespaces are private, so a fixed port cannot clash with anything else.
constexpr std::uint16_t kPort = 7480;

std::string ip_path() {
  for (const char* path : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"})
    if (::access(path, X_OK) == 0) return path;
  return {};
}

CommandResult run_ip(const std::vector<std::string>& args) {
  std::vector<std::string> argv{ip_path()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, {}, 60s);
}

std::string describe(const std::vector<std::string>& args) {
  std::string line = "ip";
  for (const std::string& a : args) line += " " + a;
  return line;
}

// Runs `ip args...`. Throws: std::runtime_error naming the command, its exit
// status and its stderr (also printed, so a failure in a destructor shows).
void ip(const std::vector<std::string>& args) {
  const CommandResult r = run_ip(args);
  if (r.exit_code == 0) return;
  const std::string what = describe(args) + ": exit " + std::to_string(r.exit_code) + ": " + r.err;
  std::fprintf(stderr, "%s\n", what.c_str());
  throw std::runtime_error(what);
}

std::vector<std::string> listed_namespaces() {
  const CommandResult r = run_ip({"netns", "list"});
  if (r.exit_code != 0) throw std::runtime_error("ip netns list: " + r.err);
  std::vector<std::string> names;
  std::istringstream lines(r.out);
  for (std::string name; lines >> name;) {
    names.push_back(name);
    lines.ignore(1 << 20, '\n');  // "(id: N)" after the name
  }
  return names;
}

bool namespace_listed(const std::string& name) {
  for (const std::string& n : listed_namespaces())
    if (n == name) return true;
  return false;
}

// Why these tests cannot run here, or nullopt when they can. Printed once.
std::optional<std::string> reason_to_skip() {
  std::optional<std::string> why;
  if (::geteuid() != 0) {
    why = "not root (euid " + std::to_string(::geteuid()) + ")";
  } else if (ip_path().empty()) {
    why = "no `ip` in /usr/sbin, /sbin, /usr/bin or /bin (Debian package iproute2)";
  } else {
    // An unprivileged container refuses the namespace (unshare or the bind
    // mount under /run/netns): EPERM. Any other failure is left to the test,
    // which then fails on the same command.
    ChildProcess probe([] { return ::unshare(CLONE_NEWNET) == 0 ? 0 : errno; });
    const std::string name = "shms-" + std::to_string(::getpid()) + "-probe";
    if (probe.wait() == EPERM) {
      why = "cannot create a network namespace: unshare(CLONE_NEWNET): " + std::string(shmsession::errno_text(EPERM));
    } else if (const CommandResult r = run_ip({"netns", "add", name}); r.exit_code != 0) {
      if (r.err.find(shmsession::errno_text(EPERM)) != std::string::npos)
        why = "cannot create a network namespace: ip netns add: " + r.err.substr(0, r.err.find('\n'));
    } else {
      ip({"netns", "del", name});
    }
  }
  if (why) std::printf("netns_replication_test: SKIPPED: %s\n", why->c_str());
  std::fflush(stdout);
  return why;
}

boost::test_tools::assertion_result netns_usable(boost::unit_test::test_unit_id) {
  static const std::optional<std::string> why_not = reason_to_skip();
  if (!why_not) return true;
  boost::test_tools::assertion_result result(false);
  result.message() << *why_not;
  return result;
}

// Two network namespaces "shms-<pid>-a" and "shms-<pid>-b" joined by a veth
// pair "shv<pid>a" <-> "shv<pid>b" (15 characters at most) addressed
// 10.X.Y.1/30 and 10.X.Y.2/30 (X, Y from the pid), both ends and both
// loopbacks up. The destructor deletes both namespaces, which destroys the
// veth pair, also when the test failed; the constructor first removes what a
// crashed run with the same pid left. Processes still inside a namespace
// keep its stack alive until they exit, so declare children after the guard.
// Throws: std::runtime_error naming the failed ip command and its stderr.
class NetnsPair {
 public:
  struct Side {
    std::string netns, veth, address;
  };

  NetnsPair() {
    const unsigned pid = static_cast<unsigned>(::getpid());
    const std::string net = "10." + std::to_string(16 + (pid >> 8) % 224) + "." + std::to_string(pid & 0xff) + ".";
    a_ = {"shms-" + std::to_string(pid) + "-a", "shv" + std::to_string(pid) + "a", net + "1"};
    b_ = {"shms-" + std::to_string(pid) + "-b", "shv" + std::to_string(pid) + "b", net + "2"};
    remove();
    try {
      ip({"netns", "add", a_.netns});
      ip({"netns", "add", b_.netns});
      ip({"link", "add", a_.veth, "netns", a_.netns, "type", "veth", "peer", "name", b_.veth, "netns", b_.netns});
      for (const Side* s : {&a_, &b_}) {
        ip({"-n", s->netns, "addr", "add", s->address + "/30", "dev", s->veth});
        ip({"-n", s->netns, "link", "set", "dev", "lo", "up"});
        ip({"-n", s->netns, "link", "set", "dev", s->veth, "up"});
      }
    } catch (...) {
      remove();
      throw;
    }
  }
  ~NetnsPair() { remove(); }
  NetnsPair(const NetnsPair&) = delete;
  NetnsPair& operator=(const NetnsPair&) = delete;

  const Side& a() const noexcept { return a_; }
  const Side& b() const noexcept { return b_; }
  // Sets A's end of the veth down or up: a link cut below TCP.
  void set_link_up(bool up) const { ip({"-n", a_.netns, "link", "set", "dev", a_.veth, up ? "up" : "down"}); }

 private:
  void remove() noexcept {
    for (const Side* s : {&a_, &b_}) {
      try {
        if (namespace_listed(s->netns)) ip({"netns", "del", s->netns});
      } catch (const std::exception&) {
        // ip() printed why; the cleanup check of the test then fails.
      }
    }
  }

  Side a_, b_;
};

// In a forked child: moves this process into the network namespace `name`.
// Throws: std::runtime_error with the errno text.
void enter_netns(const std::string& name) {
  const std::string path = "/run/netns/" + name;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("open " + path + ": " + shmsession::errno_text(errno));
  const int rc = ::setns(fd, CLONE_NEWNET);
  const int error = errno;
  ::close(fd);
  if (rc != 0) throw std::runtime_error("setns " + path + ": " + shmsession::errno_text(error));
}

// From namespace `netns`, a TCP connect to address:port: 0 when it was
// accepted, else the errno of the failure (ECONNREFUSED: nobody listens).
int connect_from(const std::string& netns, const std::string& address, std::uint16_t port) {
  ChildProcess probe([=] {
    enter_netns(netns);
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const timeval limit{30, 0};  // bounds connect() (to fail instead of hang)
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    ::inet_pton(AF_INET, address.c_str(), &to.sin_addr);
    const int result = ::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) == 0 ? 0 : errno;
    ::close(fd);
    return result;
  });
  return probe.wait();
}

std::vector<ChildProcess> start_writers(const std::string& primary, std::chrono::milliseconds duration, int seed) {
  std::vector<ChildProcess> writers;
  for (int i = 0; i < 2; ++i) writers.push_back(start_writer(primary, seed + i, duration));
  return writers;
}

void finish_writers(std::vector<ChildProcess>& writers) {
  for (ChildProcess& w : writers) BOOST_REQUIRE_EQUAL(w.wait(), 0);
}

void require_running(ChildProcess& child, const char* what) {
  const int code = child.wait_for(0ms);
  BOOST_REQUIRE_MESSAGE(code == -1, what << " exited with code " << code);
}

}  // namespace

BOOST_AUTO_TEST_CASE(standby_converges_across_a_veth_link_and_after_a_cut,
                     *boost::unit_test::precondition(netns_usable)) {
  std::string netns_a, netns_b;
  {
    NetnsPair net;
    netns_a = net.a().netns;
    netns_b = net.b().netns;
    BOOST_TEST_MESSAGE("namespaces " << netns_a << " (" << net.a().address << ") and " << netns_b << " ("
                                     << net.b().address << ")");
    SegmentGuard pg("nsrep_p"), sg("nsrep_s");
    Store primary = make_store(pg.name(), 1 << 18, std::uint64_t{128} << 20);  // the log covers the cut
    const NetnsPair::Side &a = net.a(), &b = net.b();
    ChildProcess backup([&] {
      enter_netns(b.netns);
      return serve_backup(sg.name(), b.address, kPort);
    });
    // TCP rides out a short outage by retransmitting; a short
    // acknowledgement deadline makes the agent notice the cut and reconnect.
    ChildProcess agent([&] {
      enter_netns(a.netns);
      return run_agent(pg.name(), b.address, kPort, [](sync::AgentOptions& o) { o.ack_timeout = 400ms; });
    });

    std::vector<ChildProcess> writers = start_writers(pg.name(), 1500ms, 1);
    finish_writers(writers);
    require_running(backup, "the backup daemon in namespace B");
    require_running(agent, "the agent in namespace A");
    Store standby = Store::attach(sg.name());
    BOOST_REQUIRE(wait_caught_up(primary, standby));
    check_equal(primary, standby);
    const AgentStatus before = published_status(primary);
    BOOST_TEST(before.alive);
    BOOST_TEST(before.backup == b.address + ":" + std::to_string(kPort));
    // The first sync is a full one. Under load it may start over: the
    // short acknowledgement deadline this test sets can expire while the
    // backup applies the snapshot, and the agent then reconnects and sends
    // it again (what that deadline is for). The cut below must not need one.
    BOOST_TEST(before.full_resyncs >= 1u);
    // The stream crossed the veth: A's loopback has no daemon, and the
    // daemon listens on B's veth address only.
    BOOST_TEST(connect_from(a.netns, "127.0.0.1", kPort) == ECONNREFUSED);
    BOOST_TEST(connect_from(b.netns, "127.0.0.1", kPort) == ECONNREFUSED);
    BOOST_TEST(connect_from(a.netns, b.address, kPort) == 0);

    // Cut the link below TCP while writers commit, until the agent notices;
    // the writers go on until it has resumed over the restored link. Their
    // cap keeps the whole test inside the change log.
    Signal stop;
    writers.clear();
    for (int i = 0; i < 2; ++i) writers.push_back(start_writer_until(pg.name(), 11 + i, stop, 50000));
    const std::uint64_t head = ChangeFeed(primary).next_seq();
    BOOST_REQUIRE_MESSAGE(poll_until([&] { return ChangeFeed(primary).next_seq() >= head + 1000; }, 60s),
                          "the writers did not commit 1000 changes");
    net.set_link_up(false);
    std::string error_seen;
    const bool noticed = poll_until(
        [&] {
          const AgentStatus s = AgentSeat(primary).status();
          if (!s.last_error.empty()) error_seen = s.last_error;
          return s.state != AgentState::Streaming && s.state != AgentState::FullResync;
        },
        60s);
    net.set_link_up(true);
    BOOST_TEST_MESSAGE("agent during the cut: " << (error_seen.empty() ? "no error" : error_seen));
    const bool resumed =
        poll_until([&] { return AgentSeat(primary).status().partial_resyncs > before.partial_resyncs; }, 60s);
    for (std::size_t i = 0; i < writers.size(); ++i) stop.notify();
    finish_writers(writers);
    BOOST_TEST(noticed, "the agent never left Streaming during the cut");
    BOOST_TEST(resumed, "the agent did not resume from the log after the cut");
    BOOST_REQUIRE(wait_caught_up(primary, standby));
    check_equal(primary, standby);
    const AgentStatus after = published_status(primary);
    BOOST_TEST(after.reconnects > before.reconnects);
    BOOST_TEST(after.partial_resyncs > before.partial_resyncs);  // resumed from the log
    BOOST_TEST(after.full_resyncs == before.full_resyncs);
    BOOST_TEST(after.backup == b.address + ":" + std::to_string(kPort));

    agent.kill(SIGTERM);
    BOOST_TEST(agent.wait_for(60s) == 0);  // flushed: everything acknowledged across the veth
  }
  BOOST_TEST(!namespace_listed(netns_a));
  BOOST_TEST(!namespace_listed(netns_b));
}

BOOST_AUTO_TEST_CASE(namespaces_are_removed_when_a_test_throws, *boost::unit_test::precondition(netns_usable)) {
  std::string netns_a, netns_b;
  try {
    NetnsPair net;
    netns_a = net.a().netns;
    netns_b = net.b().netns;
    BOOST_REQUIRE(namespace_listed(netns_a));
    BOOST_REQUIRE(namespace_listed(netns_b));
    throw std::runtime_error("a test failing mid-way");
  } catch (const std::runtime_error&) {
  }
  BOOST_TEST(!namespace_listed(netns_a));
  BOOST_TEST(!namespace_listed(netns_b));
}

// ---- chaos: faults on the link and kills of both ends ----------------------

namespace {

std::string sbin_path(const char* program) {
  for (const char* dir : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"})
    if (std::string path = std::string(dir) + program; ::access(path.c_str(), X_OK) == 0) return path;
  return {};
}

std::string nft_path() { return sbin_path("nft"); }

boost::test_tools::assertion_result chaos_usable(boost::unit_test::test_unit_id id) {
  boost::test_tools::assertion_result netns = netns_usable(id);
  if (!netns) return netns;
  if (!nft_path().empty()) return true;
  std::printf("netns_replication_test: chaos SKIPPED: no `nft` (Debian package nftables)\n");
  std::fflush(stdout);
  boost::test_tools::assertion_result result(false);
  result.message() << "no nft (Debian package nftables)";
  return result;
}

// Runs `args` inside namespace `netns` (ip netns exec). Throws:
// std::runtime_error naming the command, its status and stderr.
void in_netns(const std::string& netns, const std::vector<std::string>& args) {
  std::vector<std::string> all{"netns", "exec", netns};
  all.insert(all.end(), args.begin(), args.end());
  ip(all);
}

// A fault the kernel cannot make here: CONFIG_NET_SCH_NETEM is off, so
// loss, duplication and resets come from nftables rules on A's output, and
// delay from a token bucket (tbf) that queues A's packets behind a slow rate.
enum class Fault { Loss, Blackhole, Duplicate, Reset, Delay, LinkDown, KillAgent, KillDaemon };

const char* fault_name(Fault f) {
  switch (f) {
    case Fault::Loss:
      return "loss";
    case Fault::Blackhole:
      return "blackhole";
    case Fault::Duplicate:
      return "duplication";
    case Fault::Reset:
      return "tcp reset";
    case Fault::Delay:
      return "delay";
    case Fault::LinkDown:
      return "link down";
    case Fault::KillAgent:
      return "SIGKILL agent";
    case Fault::KillDaemon:
      return "SIGKILL daemon";
  }
  return "?";
}

// How many faults (SHMSESSION_CHAOS_FAULTS, default 20: CI's share; 100 on
// demand) and the seed of their sequence (SHMSESSION_CHAOS_SEED).
std::size_t env_number(const char* name, std::size_t fallback) {
  const char* text = std::getenv(name);
  return text != nullptr && *text != '\0' ? static_cast<std::size_t>(std::stoull(text)) : fallback;
}

}  // namespace

// While two writers commit, a random sequence of faults hits the link
// between the namespaces (packet loss, a blackhole, duplicated packets, TCP
// resets, delay, the link set down) or kills the agent or the backup daemon
// with SIGKILL (each restarted at once); each fault lasts 50-600 ms. Once
// the writers stop and the link is healed, the standby equals the primary,
// every time.
BOOST_AUTO_TEST_CASE(standby_equals_the_primary_after_chaos_on_the_link_and_kills,
                     *boost::unit_test::precondition(chaos_usable)) {
  const std::size_t faults = env_number("SHMSESSION_CHAOS_FAULTS", 20);
  const std::size_t seed = env_number("SHMSESSION_CHAOS_SEED", 20261207);
  BOOST_TEST_MESSAGE("chaos: " << faults << " faults, seed " << seed);
  NetnsPair net;
  const NetnsPair::Side &a = net.a(), &b = net.b();
  SegmentGuard pg("nschaos_p"), sg("nschaos_s");
  Store primary = make_store(pg.name(), 1 << 20, std::uint64_t{256} << 20);
  const std::string port = std::to_string(kPort);
  in_netns(a.netns, {nft_path(), "add", "table", "ip", "chaos"});
  in_netns(a.netns, {nft_path(), "add", "chain", "ip", "chaos", "out", "{ type filter hook output priority 0; }"});

  const auto start_daemon = [&] {
    return ChildProcess([&] {
      enter_netns(b.netns);
      return serve_backup(sg.name(), b.address, kPort);
    });
  };
  const auto start_agent = [&] {
    return ChildProcess([&] {
      enter_netns(a.netns);
      return run_agent(pg.name(), b.address, kPort, [](sync::AgentOptions& o) {
        o.ack_timeout = 400ms;
        o.backoff_min = 20ms;
        o.backoff_max = 200ms;
      });
    });
  };
  std::optional<ChildProcess> daemon(start_daemon());
  std::optional<ChildProcess> agent(start_agent());
  Signal stop;
  std::vector<ChildProcess> writers;
  for (int i = 0; i < 2; ++i) writers.push_back(start_writer_until(pg.name(), 31 + i, stop, 2000000, 2000));

  std::mt19937_64 random(seed);
  const auto between = [&](int low, int high) {
    return std::chrono::milliseconds(std::uniform_int_distribution<int>(low, high)(random));
  };
  std::map<std::string, int> applied;
  for (std::size_t n = 0; n < faults; ++n) {
    const auto fault = static_cast<Fault>(std::uniform_int_distribution<int>(0, 7)(random));
    const std::chrono::milliseconds hold = between(50, 600);
    ++applied[fault_name(fault)];
    const auto rule = [&](std::vector<std::string> words) {
      std::vector<std::string> argv{nft_path(), "add", "rule", "ip", "chaos", "out"};
      argv.insert(argv.end(), words.begin(), words.end());
      in_netns(a.netns, argv);
      std::this_thread::sleep_for(hold);  // the fault lasts `hold` (the outcome is checked once healed)
      in_netns(a.netns, {nft_path(), "flush", "chain", "ip", "chaos", "out"});
    };
    switch (fault) {
      case Fault::Loss:
        rule({"numgen", "random", "mod", "100", "<", std::to_string(10 + n % 4 * 10), "drop"});
        break;
      case Fault::Blackhole:
        rule({"drop"});
        break;
      case Fault::Duplicate:
        rule({"ip", "daddr", b.address, "dup", "to", b.address});
        break;
      case Fault::Reset:
        rule({"tcp", "dport", port, "reject", "with", "tcp", "reset"});
        break;
      case Fault::Delay:
        in_netns(a.netns, {sbin_path("tc"), "qdisc", "add", "dev", a.veth, "root", "tbf", "rate", "256kbit", "burst",
                           "1600", "latency", "500ms"});
        std::this_thread::sleep_for(hold);
        in_netns(a.netns, {sbin_path("tc"), "qdisc", "del", "dev", a.veth, "root"});
        break;
      case Fault::LinkDown:
        net.set_link_up(false);
        std::this_thread::sleep_for(hold);
        net.set_link_up(true);
        break;
      case Fault::KillAgent:
        agent->kill(SIGKILL);
        BOOST_REQUIRE_EQUAL(agent->wait(), 128 + SIGKILL);
        agent.emplace(start_agent());
        break;
      case Fault::KillDaemon:
        daemon->kill(SIGKILL);
        BOOST_REQUIRE_EQUAL(daemon->wait(), 128 + SIGKILL);
        daemon.emplace(start_daemon());
        break;
    }
    std::this_thread::sleep_for(between(50, 300));  // the link works a while between faults
    require_running(*agent, "the agent in namespace A");
    require_running(*daemon, "the backup daemon in namespace B");
  }
  for (std::size_t i = 0; i < writers.size(); ++i) stop.notify();
  finish_writers(writers);
  std::string summary;
  for (const auto& [name, count] : applied) summary += " " + name + " x" + std::to_string(count);
  BOOST_TEST_MESSAGE("faults:" << summary);

  Store standby = Store::attach(sg.name());
  BOOST_REQUIRE_MESSAGE(wait_caught_up(primary, standby), "the standby did not catch up after the faults");
  check_equal(primary, standby);
  const AgentStatus status = published_status(primary);
  BOOST_TEST_MESSAGE("agent: reconnects " << status.reconnects << ", partial resyncs " << status.partial_resyncs
                                          << ", full resyncs " << status.full_resyncs << ", commits "
                                          << ChangeFeed(primary).next_seq());
  agent->kill(SIGTERM);
  BOOST_TEST(agent->wait_for(60s) == 0);
}
