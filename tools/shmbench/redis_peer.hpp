// The Redis peer of a benchmark: a redis-server this run starts on
// 127.0.0.1 at a free port and stops by pid (RedisServer), and a hiredis
// connection to it (RedisConnection).
//
// Thread safety: neither class may be used by two threads at once.
// Cross-process safety: a RedisServer stops its server only in the process
// that started it, so a forked worker leaving by any path never stops the
// parent's peer; a worker opens its own RedisConnection (a connection
// inherited through fork() must not be used by both processes).
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tools/shmbench/peer_process.hpp"

struct redisContext;
struct redisReply;

namespace shmsession::bench {

class RedisServer {
 public:
  // Starts `program` (looked up in PATH) without persistence and waits until
  // it answers PING (PeerProcess::launch: retries on another port if one was
  // taken). `extra_args` follow the standard ones (e.g. {"--replicaof",
  // "127.0.0.1", "6379"}). Returns nullopt and sets *why if the program
  // cannot be run at all (not installed); throws std::runtime_error if it
  // runs but never answers. `die_with_parent`: see ServerLaunch.
  static std::optional<RedisServer> start(const std::string& program, std::string* why,
                                          const std::vector<std::string>& extra_args = {},
                                          bool die_with_parent = false);

  int port() const noexcept { return process_.port(); }
  pid_t pid() const noexcept { return process_.pid(); }
  // SIGTERM, then SIGKILL if still running after 5 s; reaps the process.
  // Does nothing outside the starting process or when already stopped.
  void stop() noexcept { process_.stop(); }

 private:
  explicit RedisServer(PeerProcess process) : process_(std::move(process)) {}

  PeerProcess process_;
};

struct RedisReplyDeleter {
  void operator()(redisReply* reply) const noexcept;
};
using RedisReplyPtr = std::unique_ptr<redisReply, RedisReplyDeleter>;

class RedisConnection {
 public:
  // Throws std::runtime_error if no connection is made within `timeout`.
  static RedisConnection connect(int port, std::chrono::milliseconds timeout = std::chrono::seconds{2});

  RedisConnection(RedisConnection&& other) noexcept;
  RedisConnection& operator=(RedisConnection&&) = delete;
  RedisConnection(const RedisConnection&) = delete;
  ~RedisConnection();

  // Sends one command (binary-safe arguments) and returns its reply.
  // Throws std::runtime_error on a connection error or an error reply.
  RedisReplyPtr command(const std::vector<std::string_view>& args);
  // The same without building a vector; `count` arguments.
  RedisReplyPtr command(int count, const char** argv, const std::size_t* lengths);

  // Pipelining: queue commands, then read one reply per queued command.
  void append(int count, const char** argv, const std::size_t* lengths);
  RedisReplyPtr next_reply();

  // `INFO <section>` field as an integer, e.g. info_integer("memory", "used_memory").
  std::uint64_t info_integer(std::string_view section, std::string_view field);
  std::string info_field(std::string_view section, std::string_view field);

 private:
  explicit RedisConnection(redisContext* context) : context_(context) {}
  RedisReplyPtr checked(void* reply);

  redisContext* context_ = nullptr;
};

}  // namespace shmsession::bench
