// Real Redis servers for the hosts tests: a Redis Cluster of N masters (and
// R replicas each) on free loopback ports, or one standalone server, each a
// redis-server child of the test (killed with it: PR_SET_PDEATHSIG), in a
// private directory removed afterwards. Nothing is mocked: the cluster is
// made by `redis-cli --cluster create`, as operators make one.
//
// Thread safety: one thread. Throws std::runtime_error (with the nodes'
// logs' last lines) when a server does not start or the cluster never
// settles within its timeout.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "sync/hosts/redis_cluster.hpp"
#include "tools/common/temp_dir.hpp"

namespace shmsession::test {

class TestRedis {
 public:
  // `masters` masters with `replicas` replicas each; masters == 0 starts
  // one standalone server (cluster support off).
  TestRedis(int masters, int replicas);
  ~TestRedis();
  TestRedis(const TestRedis&) = delete;
  TestRedis& operator=(const TestRedis&) = delete;

  // Every node, masters first (in the order `--cluster create` got them).
  const std::vector<hosts::RedisAddress>& nodes() const noexcept { return nodes_; }
  // "127.0.0.1:P,..." of every node.
  std::string seeds() const;
  // Runs a command on one node (its own connection). Throws on a
  // connection failure; a Redis error comes back as a reply.
  hosts::RedisReply on(const hosts::RedisAddress& node, const std::vector<std::string>& args) const;
  // SIGKILLs one node and reaps it.
  void kill(const hosts::RedisAddress& node);
  // Waits until every live node says cluster_state:ok and maps all 16384
  // slots to live masters, the same way. Throws after `timeout`.
  void wait_settled(std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;
  // The node IDs (CLUSTER MYID) of a node.
  std::string id_of(const hosts::RedisAddress& node) const;

 private:
  std::string log_tail(std::size_t index) const;

  tools::TempDir dir_{"shms-redis"};
  std::vector<hosts::RedisAddress> nodes_;
  std::vector<pid_t> pids_;
};

}  // namespace shmsession::test
