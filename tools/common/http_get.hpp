// One HTTP/1.0 GET to a server on 127.0.0.1, on a connection of its own
// (the reply ends when the server closes it): how the PHP tests and the
// `php` benchmark talk to nginx. Small on purpose: no keep-alive, no
// chunked replies (an HTTP/1.0 request gets none), one cookie.
//
// Thread safety: free functions; any number of threads may call them.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <system_error>

namespace shmsession::tools {

struct HttpReply {
  int status = 0;
  std::string head;  // status line and headers
  std::string body;

  // The value the reply sets for cookie `name` ("" if it sets none; the
  // last one if several).
  std::string set_cookie(const std::string& name) const {
    const std::string key = "\r\nSet-Cookie: " + name + "=";
    std::string value;
    for (std::size_t at = head.find(key); at != std::string::npos; at = head.find(key, at + 1)) {
      const std::size_t from = at + key.size();
      value = head.substr(from, head.find_first_of(";\r", from) - from);
    }
    return value;
  }
};

// GET `target` from 127.0.0.1:port with "Cookie: <cookie>" if not empty.
// Throws std::system_error when it cannot connect, std::runtime_error when
// no whole reply comes within `timeout` (both are std::runtime_errors).
inline HttpReply http_get(std::uint16_t port, const std::string& target, const std::string& cookie = {},
                          std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
    throw std::system_error(errno, std::generic_category(), "connect to 127.0.0.1:" + std::to_string(port));
  std::string request = "GET " + target + " HTTP/1.0\r\nHost: 127.0.0.1\r\n";
  if (!cookie.empty()) request += "Cookie: " + cookie + "\r\n";
  request += "\r\n";
  for (std::size_t sent = 0; sent < request.size();) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) throw std::runtime_error("send to 127.0.0.1:" + std::to_string(port) + " failed");
    sent += static_cast<std::size_t>(n);
  }
  std::string raw;
  char buf[4096];
  const auto end = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now()).count();
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0)
      throw std::runtime_error("no whole reply to GET " + target + " within " + std::to_string(timeout.count()) +
                               " ms");
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) throw std::system_error(errno, std::generic_category(), "recv");
    if (n == 0) break;
    raw.append(buf, static_cast<std::size_t>(n));
  }
  const std::size_t head_end = raw.find("\r\n\r\n");
  if (!raw.starts_with("HTTP/1.") || raw.size() < 12 || head_end == std::string::npos)
    throw std::runtime_error("not an HTTP reply to GET " + target + ": " + raw.substr(0, 200));
  HttpReply reply;
  reply.status = std::stoi(raw.substr(9, 3));
  reply.head = raw.substr(0, head_end);
  reply.body = raw.substr(head_end + 4);
  return reply;
}

// Whether something accepts TCP connections on 127.0.0.1:port.
inline bool loopback_accepts(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

}  // namespace shmsession::tools
