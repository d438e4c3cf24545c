// A Redis client that routes by key over a Redis Cluster, or talks to one
// standalone Redis, for the sessions shared across hosts (sync/hosts/hosts.md).
//
// It reads the slot map (CLUSTER SLOTS) from the seed addresses, sends
// each command to the master that serves its key's slot, and follows the
// cluster's answers: MOVED (re-read the map, retry on the named node), ASK
// (ASKING, then the command on the named node, once), TRYAGAIN and
// CLUSTERDOWN (retry after a wait), a node that fails (re-read the map
// from any node it knows, retry). A standalone Redis, whose CLUSTER SLOTS
// says that cluster support is disabled, is one node holding every slot.
// Scripts run by EVALSHA, and by EVAL on a node that answers NOSCRIPT.
//
// A command whose answer never came (the connection failed or timed out
// after sending) is sent again, on the node the map then names: commands
// given to a RedisCluster must be safe to run twice. The ownership scripts
// are (sync/hosts/ownership.hpp: a repeated ship finds the version moved
// and answers Conflict; a repeated acquire finds its own grant).
//
// Errors: Error(Io) when no node answers within the retry budget (the
// message names the addresses tried and the last failure), Error(InvalidArgument)
// for a bad address or keys of different slots in one call. A Redis error
// reply is returned as a reply of type Error, not thrown: callers decide.
//
// Thread safety: a RedisCluster belongs to one thread at a time (its
// connections are hiredis contexts). fork(): a child must not use its
// parent's RedisCluster (the connections are shared); it makes its own.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace shmsession::hosts {

struct RedisAddress {
  std::string host;
  std::uint16_t port = 0;

  std::string text() const { return host + ":" + std::to_string(port); }
  friend auto operator<=>(const RedisAddress&, const RedisAddress&) = default;
};

// "HOST:PORT[,HOST:PORT...]". Throws Error(InvalidArgument) naming the bad part.
std::vector<RedisAddress> parse_redis_addresses(std::string_view text);

// A reply, copied out of hiredis.
struct RedisReply {
  enum class Type { Nil, Integer, String, Status, Error, Array };
  Type type = Type::Nil;
  long long integer = 0;
  std::string str;  // String, Status, Error
  std::vector<RedisReply> elements;

  bool is_error() const noexcept { return type == Type::Error; }
  bool is_nil() const noexcept { return type == Type::Nil; }
  // The error's first word ("MOVED", "NOSCRIPT", ...), empty if not an error.
  std::string_view error_code() const noexcept;
};

// The Redis Cluster slot of `key`: CRC16 (XMODEM) of its hash tag (the
// part between the first '{' and the next '}', if not empty) or of the
// whole key, modulo 16384.
std::uint16_t redis_key_slot(std::string_view key) noexcept;

inline constexpr std::uint16_t kRedisSlots = 16384;

// A Lua script. A RedisCluster loads it on a node once (SCRIPT LOAD) and
// then runs it by its SHA-1.
class RedisScript {
 public:
  explicit RedisScript(std::string source) : source_(std::move(source)) {}
  const std::string& source() const noexcept { return source_; }

 private:
  std::string source_;
};

struct RedisClusterOptions {
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds command_timeout{2000};
  // How long one command may keep retrying through redirections, a
  // cluster that is down, and nodes that fail, before Error(Io).
  std::chrono::milliseconds retry_budget{15000};
  std::string password;  // AUTH before anything else, if not empty
};

// What the client did beyond plain commands (for tests and shmctl).
struct RedisClusterStats {
  std::uint64_t commands = 0;
  std::uint64_t moved = 0;
  std::uint64_t asked = 0;
  std::uint64_t retried = 0;        // TRYAGAIN, CLUSTERDOWN, LOADING, a failed node
  std::uint64_t map_refreshes = 0;  // CLUSTER SLOTS read again
  std::uint64_t noscript = 0;
};

// Runs one command on one node, without routing (its own connection, closed
// after): for tools and tests that must talk to a given node. Throws
// Error(Io) if the node does not answer; a Redis error is returned.
RedisReply redis_node_command(const RedisAddress& node, const std::vector<std::string>& args,
                              const RedisClusterOptions& options = {});

// A subscription to one channel on one node. Classic pub/sub (SUBSCRIBE):
// a Redis Cluster delivers a PUBLISH on any node to the subscribers on
// every node, over its cluster bus. Sharded pub/sub (`sharded`,
// SSUBSCRIBE, Redis 7): the channel lives in its slot like a key; a
// SPUBLISH (RedisCluster::command routes it by the channel) reaches the
// subscribers of the slot's master directly, with no broadcast between
// nodes; subscribe on the master of redis_key_slot(channel).
class RedisSubscription {
 public:
  // Connects, subscribes and waits for Redis to confirm: a message
  // published after this returns is received. Throws Error(Io) (also
  // when a sharded channel's slot is not the node's: MOVED).
  RedisSubscription(const RedisAddress& node, std::string channel, const RedisClusterOptions& options = {},
                    bool sharded = false);
  ~RedisSubscription();
  RedisSubscription(RedisSubscription&&) noexcept;
  RedisSubscription& operator=(RedisSubscription&&) noexcept;
  RedisSubscription(const RedisSubscription&) = delete;
  RedisSubscription& operator=(const RedisSubscription&) = delete;

  // The next message's payload, or nullopt if none came within `timeout`.
  // Throws Error(Io) if the connection failed, or the node gave up a
  // sharded channel's slot (subscribe again).
  std::optional<std::string> next(std::chrono::milliseconds timeout);
  // The connection's descriptor, readable when a message may be there (for
  // an event loop); next(0) then takes it.
  int fd() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class RedisCluster {
 public:
  // Connects to the first seed that answers and reads the slot map.
  // Throws Error(Io) if none answers.
  explicit RedisCluster(std::vector<RedisAddress> seeds, RedisClusterOptions options = {});
  ~RedisCluster();
  RedisCluster(RedisCluster&&) noexcept;
  RedisCluster& operator=(RedisCluster&&) noexcept;
  RedisCluster(const RedisCluster&) = delete;
  RedisCluster& operator=(const RedisCluster&) = delete;

  // Runs `args` (the command and its arguments) on the master of `key`'s slot.
  RedisReply command(std::string_view key, const std::vector<std::string>& args);
  // Runs `script` with `keys` (all of one slot: Error(InvalidArgument)
  // otherwise) and `args`.
  RedisReply eval(const RedisScript& script, const std::vector<std::string>& keys,
                  const std::vector<std::string>& args);
  // Runs `args` on some master (for commands without a key: PUBLISH).
  RedisReply any_node(const std::vector<std::string>& args);

  bool is_cluster() const noexcept;
  // The master serving `slot` in the map as last read.
  RedisAddress master_of(std::uint16_t slot) const;
  // The masters of the map as last read, ascending.
  std::vector<RedisAddress> masters() const;
  const RedisClusterStats& stats() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace shmsession::hosts
