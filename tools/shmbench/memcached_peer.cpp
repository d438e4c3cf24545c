#include "tools/shmbench/memcached_peer.hpp"

#include <arpa/inet.h>
#include <libmemcached/memcached.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <stdexcept>
#include <vector>

#include "shm/error.hpp"
#include "tools/shmbench/session_shape.hpp"

namespace shmsession::bench {

namespace {

bool accepts_connections(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return ok;
}

std::runtime_error failure(memcached_st* handle, memcached_return_t rc, std::string_view what) {
  return std::runtime_error("memcached: " + std::string(what) + ": " + memcached_strerror(handle, rc));
}

}  // namespace

std::optional<MemcachedServer> MemcachedServer::start(const std::string& program, std::string* why) {
  const auto args = [](int port) {
    std::vector<std::string> args = {"-l", "127.0.0.1", "-p", std::to_string(port), "-U", "0", "-m", "2048", "-t", "2"};
    if (::geteuid() == 0) args.insert(args.end(), {"-u", "root"});
    return args;
  };
  std::optional<PeerProcess> process =
      PeerProcess::launch({program, args, &accepts_connections, "accept connections"}, why);
  if (!process) return std::nullopt;
  return MemcachedServer(std::move(*process));
}

MemcachedConnection MemcachedConnection::connect(int port) {
  memcached_st* handle = memcached_create(nullptr);
  if (handle == nullptr) throw std::runtime_error("memcached: cannot allocate a connection");
  MemcachedConnection connection(handle, port);
  memcached_behavior_set(handle, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
  memcached_behavior_set(handle, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, 2000);
  const memcached_return_t rc = memcached_server_add(handle, "127.0.0.1", static_cast<in_port_t>(port));
  if (rc != MEMCACHED_SUCCESS) throw failure(handle, rc, "adding 127.0.0.1:" + std::to_string(port));
  connection.version();  // connects now: a dead server fails here, not mid-measurement
  return connection;
}

MemcachedConnection::MemcachedConnection(MemcachedConnection&& other) noexcept
    : handle_(other.handle_), port_(other.port_) {
  other.handle_ = nullptr;
}

MemcachedConnection::~MemcachedConnection() {
  if (handle_ != nullptr) memcached_free(handle_);
}

void MemcachedConnection::set(std::string_view key, std::string_view value) {
  const memcached_return_t rc = memcached_set(handle_, key.data(), key.size(), value.data(), value.size(), 0, 0);
  if (rc != MEMCACHED_SUCCESS && rc != MEMCACHED_BUFFERED) throw failure(handle_, rc, "set " + std::string(key));
}

std::size_t MemcachedConnection::get_count(std::span<const std::string> keys) {
  constexpr std::size_t kMaxKeys = 8;
  if (keys.size() > kMaxKeys) throw std::runtime_error("memcached: multi-get of more than 8 keys");
  const char* names[kMaxKeys];
  std::size_t lengths[kMaxKeys];
  for (std::size_t k = 0; k < keys.size(); ++k) {
    names[k] = keys[k].data();
    lengths[k] = keys[k].size();
  }
  memcached_return_t rc = memcached_mget(handle_, names, lengths, keys.size());
  if (rc != MEMCACHED_SUCCESS) throw failure(handle_, rc, "get " + keys.front());
  std::size_t found = 0;
  char key[MEMCACHED_MAX_KEY];
  std::size_t key_length = 0;
  std::size_t value_length = 0;
  std::uint32_t flags = 0;
  for (;;) {
    char* value = memcached_fetch(handle_, key, &key_length, &value_length, &flags, &rc);
    if (value == nullptr) break;
    std::free(value);
    ++found;
  }
  if (rc != MEMCACHED_END && rc != MEMCACHED_SUCCESS && rc != MEMCACHED_NOTFOUND)
    throw failure(handle_, rc, "get " + keys.front());
  return found;
}

std::string MemcachedConnection::version() {
  memcached_return_t rc = MEMCACHED_SUCCESS;
  memcached_stat_st* stats = memcached_stat(handle_, nullptr, &rc);
  if (stats == nullptr || rc != MEMCACHED_SUCCESS) {
    if (stats != nullptr) memcached_stat_free(handle_, stats);
    throw failure(handle_, rc, "stats");
  }
  std::string text = stats->version;
  memcached_stat_free(handle_, stats);
  return text;
}

std::uint64_t MemcachedConnection::stats_bytes() {
  memcached_return_t rc = MEMCACHED_SUCCESS;
  memcached_stat_st* stats = memcached_stat(handle_, nullptr, &rc);
  if (stats == nullptr || rc != MEMCACHED_SUCCESS) {
    if (stats != nullptr) memcached_stat_free(handle_, stats);
    throw failure(handle_, rc, "stats");
  }
  const std::uint64_t bytes = stats->bytes;
  memcached_stat_free(handle_, stats);
  return bytes;
}

namespace {

// One `stats [args]` answer as name -> value (libmemcached calls back per line).
std::map<std::string, std::string> stats_lines(memcached_st* handle, const char* args, const std::string& what) {
  std::map<std::string, std::string> lines;
  const memcached_stat_fn collect = [](const memcached_instance_st*, const char* key, std::size_t key_length,
                                       const char* value, std::size_t value_length,
                                       void* context) -> memcached_return_t {
    (*static_cast<std::map<std::string, std::string>*>(context))[std::string(key, key_length)] =
        std::string(value, value_length);
    return MEMCACHED_SUCCESS;
  };
  const memcached_return_t rc = memcached_stat_execute(handle, args, collect, &lines);
  if (rc != MEMCACHED_SUCCESS) throw failure(handle, rc, what);
  return lines;
}

std::uint64_t number_of(const std::map<std::string, std::string>& lines, const std::string& key,
                        const std::string& what) {
  auto it = lines.find(key);
  if (it == lines.end()) throw std::runtime_error("memcached: " + what + " has no " + key);
  return std::stoull(it->second);
}

}  // namespace

std::uint64_t MemcachedConnection::slab_footprint() {
  const std::map<std::string, std::string> slabs = stats_lines(handle_, "slabs", "stats slabs");
  std::uint64_t bytes = 0;
  for (const auto& [key, value] : slabs) {
    // Per class: "<class>:used_chunks" beside "<class>:chunk_size".
    const std::size_t colon = key.find(':');
    if (colon == std::string::npos || key.compare(colon + 1, std::string::npos, "used_chunks") != 0) continue;
    bytes += std::stoull(value) * number_of(slabs, key.substr(0, colon) + ":chunk_size", "stats slabs");
  }
  return bytes + number_of(stats_lines(handle_, nullptr, "stats"), "hash_bytes", "stats");
}

void MemcachedConnection::load_sessions(std::uint64_t first, std::uint64_t last) {
  // libmemcached's noreply + buffered mode loses the tail of a batch now and
  // then (seen with libmemcached 1.1.4): the loader speaks the ASCII protocol
  // itself, pipelined, and checks every STORED.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error(std::string("memcached: socket: ") + shmsession::errno_text(errno));
  const struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<std::uint16_t>(port_));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
    throw std::runtime_error(std::string("memcached: loader connect: ") + shmsession::errno_text(errno));
  const CommitBatch batch = fill_batch();
  constexpr std::uint64_t kSessionsPerBatch = 500;
  std::string request;
  std::string replies;
  for (std::uint64_t s = first; s < last;) {
    const std::uint64_t end = std::min(last, s + kSessionsPerBatch);
    request.clear();
    std::size_t expected = 0;
    for (; s < end; ++s) {
      const std::string id = session_id(s);
      for (const auto& put : batch.puts) {
        request.append("set ").append(memcached_key(id, put.name)).append(" 0 0 ");
        request.append(std::to_string(put.value.size())).append("\r\n").append(put.value).append("\r\n");
        ++expected;
      }
    }
    for (std::size_t sent = 0; sent < request.size();) {
      const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw std::runtime_error(std::string("memcached: loader send: ") + shmsession::errno_text(errno));
      sent += static_cast<std::size_t>(n);
    }
    // Replies are small and in order: read until `expected` lines arrived.
    constexpr std::string_view kStored = "STORED\r\n";
    replies.clear();
    while (replies.size() < expected * kStored.size()) {
      char buffer[65536];
      const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw std::runtime_error("memcached: loader: connection closed while loading");
      replies.append(buffer, static_cast<std::size_t>(n));
      if (replies.find("ERROR") != std::string::npos)
        throw std::runtime_error("memcached: a set was refused while loading: " + replies.substr(0, 200));
    }
    if (replies.size() != expected * kStored.size())
      throw std::runtime_error("memcached: unexpected replies while loading: " + replies.substr(0, 200));
  }
}

std::string memcached_key(std::string_view session, std::string_view attribute) {
  std::string key;
  key.reserve(session.size() + 1 + attribute.size());
  key.append(session).append(1, ':').append(attribute);
  return key;
}

}  // namespace shmsession::bench
