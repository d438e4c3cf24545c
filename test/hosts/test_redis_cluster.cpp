#include "test/hosts/test_redis_cluster.hpp"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "test/support/test_support.hpp"
#include "tools/common/loopback_port.hpp"

namespace shmsession::test {

namespace {

using hosts::RedisAddress;
using hosts::RedisReply;

constexpr auto kStartTimeout = std::chrono::seconds(20);

// A server whose port and cluster-bus port were both free a moment ago.
pid_t start_server(const std::string& dir, std::uint16_t port, std::uint16_t bus_port, bool cluster) {
  const std::string p = std::to_string(port);
  std::vector<std::string> args{"redis-server",
                                "--port",
                                p,
                                "--bind",
                                "127.0.0.1",
                                "--save",
                                "",
                                "--appendonly",
                                "no",
                                "--dir",
                                dir,
                                "--logfile",
                                dir + "/" + p + ".log",
                                "--protected-mode",
                                "no",
                                "--daemonize",
                                "no"};
  if (cluster) {
    // A replica's first sync starts at once (Redis waits 5 s by default
    // for more replicas to share it).
    for (const char* a :
         {"--cluster-enabled", "yes", "--cluster-node-timeout", "1000", "--repl-diskless-sync-delay", "0"})
      args.emplace_back(a);
    args.insert(args.end(),
                {"--cluster-config-file", dir + "/nodes-" + p + ".conf", "--cluster-port", std::to_string(bus_port)});
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execvp("redis-server", argv.data());
    ::_exit(127);
  }
  return pid;
}

}  // namespace

TestRedis::TestRedis(int masters, int replicas) {
  const bool cluster = masters > 0;
  const int count = cluster ? masters * (1 + replicas) : 1;
  try {
    for (int i = 0; i < count; ++i) {
      // The cluster bus port is chosen too (Redis's default, port + 10000,
      // may fall in the ephemeral range).
      std::uint16_t port = 0;
      std::uint16_t bus = 0;
      do {
        port = tools::free_loopback_port();
        bus = tools::free_loopback_port();
      } while (port == bus);
      pids_.push_back(start_server(dir_.path(), port, bus, cluster));
      nodes_.push_back({"127.0.0.1", port});
    }
    const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      for (;;) {
        try {
          if (on(nodes_[i], {"PING"}).str == "PONG") break;
        } catch (const std::exception&) {
        }
        int status = 0;
        if (::waitpid(pids_[i], &status, WNOHANG) == pids_[i]) {
          pids_[i] = -1;
          throw std::runtime_error("redis-server on " + nodes_[i].text() + " exited: " + log_tail(i));
        }
        if (std::chrono::steady_clock::now() > deadline)
          throw std::runtime_error("redis-server on " + nodes_[i].text() + " never answered: " + log_tail(i));
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
    if (!cluster) return;
    std::vector<std::string> create{"/usr/bin/redis-cli", "--cluster", "create"};
    for (const RedisAddress& n : nodes_) create.push_back(n.text());
    create.insert(create.end(), {"--cluster-replicas", std::to_string(replicas), "--cluster-yes"});
    const CommandResult made = run_command(create);
    if (made.exit_code != 0)
      throw std::runtime_error("redis-cli --cluster create failed (" + std::to_string(made.exit_code) +
                               "): " + made.out + made.err);
    wait_settled();
  } catch (...) {
    for (pid_t pid : pids_)
      if (pid > 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
      }
    throw;
  }
}

TestRedis::~TestRedis() {
  for (pid_t pid : pids_)
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
}

std::string TestRedis::seeds() const {
  std::string out;
  for (const RedisAddress& n : nodes_) out += (out.empty() ? "" : ",") + n.text();
  return out;
}

RedisReply TestRedis::on(const RedisAddress& node, const std::vector<std::string>& args) const {
  // That node only, whatever slots it serves (no routing).
  hosts::RedisClusterOptions o;
  o.connect_timeout = std::chrono::milliseconds(500);
  o.command_timeout = std::chrono::milliseconds(2000);
  return hosts::redis_node_command(node, args, o);
}

void TestRedis::kill(const RedisAddress& node) {
  for (std::size_t i = 0; i < nodes_.size(); ++i)
    if (nodes_[i] == node && pids_[i] > 0) {
      ::kill(pids_[i], SIGKILL);
      ::waitpid(pids_[i], nullptr, 0);
      pids_[i] = -1;
      return;
    }
  throw std::runtime_error("no live node " + node.text());
}

std::string TestRedis::id_of(const RedisAddress& node) const { return on(node, {"CLUSTER", "MYID"}).str; }

void TestRedis::wait_settled(std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string last;
  for (;;) {
    bool settled = true;
    std::string reference;
    for (std::size_t i = 0; i < nodes_.size() && settled; ++i) {
      if (pids_[i] <= 0) continue;
      try {
        const RedisReply info = on(nodes_[i], {"CLUSTER", "INFO"});
        if (info.str.find("cluster_state:ok") == std::string::npos ||
            info.str.find("cluster_slots_assigned:16384") == std::string::npos ||
            info.str.find("cluster_slots_ok:16384") == std::string::npos) {
          settled = false;
          last = nodes_[i].text() + " says " + info.str.substr(0, info.str.find("cluster_known_nodes"));
          break;
        }
        // A replica counts once its first sync is done.
        const RedisReply role = on(nodes_[i], {"ROLE"});
        if (role.elements.at(0).str == "slave") {
          const RedisReply repl = on(nodes_[i], {"INFO", "replication"});
          if (repl.str.find("master_link_status:up") == std::string::npos ||
              repl.str.find("master_sync_in_progress:0") == std::string::npos) {
            settled = false;
            last = nodes_[i].text() + " is still syncing with its master";
            break;
          }
        }
        // Every node must map the slots to the same masters, all alive.
        const RedisReply slots = on(nodes_[i], {"CLUSTER", "SLOTS"});
        std::map<long long, std::string> ranges;
        for (const RedisReply& r : slots.elements) {
          const RedisAddress master{r.elements[2].elements[0].str,
                                    static_cast<std::uint16_t>(r.elements[2].elements[1].integer)};
          bool alive = false;
          for (std::size_t j = 0; j < nodes_.size(); ++j) alive = alive || (nodes_[j] == master && pids_[j] > 0);
          if (!alive) {
            settled = false;
            last = nodes_[i].text() + " maps slots to " + master.text() + ", which is down";
          }
          ranges[r.elements[0].integer] = std::to_string(r.elements[1].integer) + "@" + master.text();
        }
        std::string view;
        for (const auto& [first, rest] : ranges) view += std::to_string(first) + "-" + rest + " ";
        if (reference.empty()) reference = view;
        if (view != reference) {
          settled = false;
          last = nodes_[i].text() + " maps ";
          last += view;
          last += "against ";
          last += reference;
        }
      } catch (const std::exception& e) {
        settled = false;
        last = e.what();
      }
    }
    if (settled) return;
    if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("the cluster never settled: " + last);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string TestRedis::log_tail(std::size_t index) const {
  std::ifstream log(dir_.path() + "/" + std::to_string(nodes_[index].port) + ".log");
  std::stringstream all;
  all << log.rdbuf();
  const std::string text = all.str();
  return text.size() > 600 ? text.substr(text.size() - 600) : text;
}

}  // namespace shmsession::test
