// The memcached peer of a benchmark: a memcached this run starts on
// 127.0.0.1 at a free port and stops by pid (MemcachedServer), a
// libmemcached connection to it (MemcachedConnection), and loading it with
// sessions of the benchmark shape (session_shape.hpp).
//
// memcached has no hashes: a session's attribute is the item
// "<session id>:<attribute>", so a commit of one attribute is one set and a
// read of the 3 attributes is one multi-get (one round trip), the same
// work the Redis peer does with HSET and HMGET.
//
// Thread safety: neither class may be used by two threads at once.
// Cross-process safety: as RedisServer (redis_peer.hpp): only the starting
// process stops the server; a forked worker opens its own connection.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "tools/shmbench/peer_process.hpp"

struct memcached_st;

namespace shmsession::bench {

inline constexpr std::string_view kMemcachedSystem = "memcached";

class MemcachedServer {
 public:
  // Starts `program` (looked up in PATH): `-l 127.0.0.1 -p PORT -U 0
  // -m 2048 -t 2`, plus `-u root` when run as root (memcached refuses root
  // otherwise), and waits until it accepts connections (PeerProcess::launch:
  // retries on another port if one was taken). Returns nullopt and sets
  // *why if the program cannot be run at all; throws std::runtime_error if
  // it runs but never accepts.
  static std::optional<MemcachedServer> start(const std::string& program, std::string* why);

  int port() const noexcept { return process_.port(); }
  // SIGTERM, then SIGKILL after 5 s; does nothing outside the starting process.
  void stop() noexcept { process_.stop(); }

 private:
  explicit MemcachedServer(PeerProcess process) : process_(std::move(process)) {}

  PeerProcess process_;
};

class MemcachedConnection {
 public:
  // ASCII protocol, TCP_NODELAY (as hiredis). Throws std::runtime_error if
  // the server does not answer.
  static MemcachedConnection connect(int port);

  MemcachedConnection(MemcachedConnection&& other) noexcept;
  MemcachedConnection& operator=(MemcachedConnection&&) = delete;
  MemcachedConnection(const MemcachedConnection&) = delete;
  ~MemcachedConnection();

  // Throws std::runtime_error on a connection error or a refused store.
  void set(std::string_view key, std::string_view value);
  // One multi-get; returns how many of `keys` were found.
  std::size_t get_count(std::span<const std::string> keys);
  // Figures of `stats`: version and bytes (the items' sizes, headers included).
  std::string version();
  std::uint64_t stats_bytes();
  // What the items really occupy: the chunks in use times their slab
  // class's chunk size (`stats slabs`: used_chunks x chunk_size, summed over
  // the classes), so slab-class rounding is counted, plus the hash table
  // (`stats`: hash_bytes). stats_bytes leaves both out.
  std::uint64_t slab_footprint();

  // Sessions session:<first> .. session:<last - 1>, every attribute, as
  // pipelined sets on a connection of its own; returns when the server has
  // stored them all. Throws std::runtime_error if a set is not STORED.
  void load_sessions(std::uint64_t first, std::uint64_t last);

 private:
  MemcachedConnection(memcached_st* handle, int port) : handle_(handle), port_(port) {}

  memcached_st* handle_ = nullptr;
  int port_ = 0;
};

// "session:00000042:profile"
std::string memcached_key(std::string_view session, std::string_view attribute);

}  // namespace shmsession::bench
