// A loopback TCP port for a server that a test or a benchmark starts: one
// nobody listens on now, chosen below the kernel's ephemeral port range.
//
// Why below it: the port is found free here and bound later by another
// process (a forked daemon, a Redis server). Asking the kernel for port 0
// returns an ephemeral port, and in that gap any connect() on the machine
// may be given the same port as its local end; under a loaded test run
// that happened (a backup daemon: "cannot listen on 127.0.0.1:45609:
// Address already in use"). The kernel never hands out a port below the
// range on its own, so only another explicit choice can take it, and
// those are random over ~20,000 ports and checked.
//
// Header-only: shmbench and the tests include it; neither links the other.
// Thread safety: any thread. Throws std::runtime_error when no port is free.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <random>
#include <stdexcept>

namespace shmsession::tools {

// Whether 127.0.0.1:port can be bound now (as a server binds it: with
// SO_REUSEADDR, so a port in TIME_WAIT counts as free).
inline bool loopback_port_is_free(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  const bool free = ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return free;
}

inline std::uint16_t free_loopback_port() {
  int ephemeral_low = 32768;  // Linux's default, if /proc does not say
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> ephemeral_low;
  constexpr int kLowest = 10000;
  if (ephemeral_low <= kLowest + 1000)
    throw std::runtime_error("the ephemeral port range starts too low to choose a port below it");
  thread_local std::mt19937 rng{std::random_device{}()};
  std::uniform_int_distribution<int> pick(kLowest, ephemeral_low - 1);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const auto port = static_cast<std::uint16_t>(pick(rng));
    if (loopback_port_is_free(port)) return port;
  }
  throw std::runtime_error("no free loopback port below the ephemeral range after 1000 tries");
}

}  // namespace shmsession::tools
