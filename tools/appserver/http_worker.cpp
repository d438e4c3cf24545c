#include "tools/appserver/http_worker.hpp"

#include <signal.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include "shm/store.hpp"
#include "sync/client.hpp"
#include "tools/appserver/server_log.hpp"
#include "tools/appserver/shop.hpp"

namespace shmsession::appserver {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);

constexpr std::uint64_t kMaxBodyBytes = std::uint64_t{64} * 1024;
constexpr std::uint32_t kMaxHeaderBytes = 16 * 1024;
constexpr auto kSweepPeriod = std::chrono::seconds(10);

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

// What the worker counts, for its last log line.
struct WorkerCounters {
  std::uint64_t connections = 0;
  std::uint64_t requests = 0;
};

Response to_http(ShopResponse shop, unsigned version, bool keep_alive, int index) {
  Response res{static_cast<http::status>(shop.status), version};
  res.set(http::field::server, "shmsession-appserver");
  res.set(http::field::content_type, shop.content_type);
  res.set("X-Worker", std::to_string(index));
  if (!shop.set_cookie.empty())
    res.set(http::field::set_cookie,
            std::string(kSessionCookie) + "=" + shop.set_cookie + "; Path=/; HttpOnly; SameSite=Lax");
  if (!shop.location.empty()) res.set(http::field::location, shop.location);
  res.body() = std::move(shop.body);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  return res;
}

Response serve_request(RequestHandler& shop, const Request& req, int index) {
  ShopRequest r;
  r.method = req.method_string();
  r.target = req.target();
  if (auto it = req.find(http::field::cookie); it != req.end()) r.cookie = it->value();
  if (auto it = req.find(http::field::content_type); it != req.end()) r.content_type = it->value();
  if (auto it = req.find(http::field::accept); it != req.end())
    r.wants_html = it->value().find("text/html") != beast::string_view::npos;
  r.body = req.body();
  return to_http(shop.handle(r), req.version(), req.keep_alive(), index);
}

// One connection: requests in sequence until the client closes, asks to
// close, stays silent for idle_timeout, or sends something that is not HTTP.
asio::awaitable<void> serve_connection(tcp::socket socket, RequestHandler& shop, const WorkerOptions& options,
                                       WorkerCounters& counters) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  ++counters.connections;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(kMaxBodyBytes);
    parser.header_limit(kMaxHeaderBytes);
    stream.expires_after(options.idle_timeout);
    auto [read_error, read_bytes] = co_await http::async_read(stream, buffer, parser, kAsTuple);
    if (read_error) {
      // Not HTTP, or too large: one line and close (a closed or idle
      // connection needs no answer).
      if (read_error.category() == http::make_error_code(http::error::end_of_stream).category() &&
          read_error != http::error::end_of_stream && read_error != http::error::partial_message) {
        ShopResponse bad;
        bad.status = read_error == http::error::body_limit ? 413 : 400;
        bad.body = "malformed HTTP request: " + read_error.message() + "\n";
        Response res = to_http(std::move(bad), 11, false, options.index);
        co_await http::async_write(stream, res, kAsTuple);
      }
      break;
    }
    Request req = parser.release();
    ++counters.requests;
    Response res = serve_request(shop, req, options.index);
    const bool keep_alive = res.keep_alive();
    stream.expires_after(options.idle_timeout);
    auto [write_error, written] = co_await http::async_write(stream, res, kAsTuple);
    if (write_error || !keep_alive) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, RequestHandler& shop, const WorkerOptions& options,
                                  WorkerCounters& counters) {
  for (;;) {
    auto [error, socket] = co_await acceptor.async_accept(kAsTuple);
    if (error == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (error) continue;  // e.g. the peer reset before we accepted; EMFILE passes too
    asio::co_spawn(acceptor.get_executor(), serve_connection(std::move(socket), shop, options, counters),
                   asio::detached);
  }
}

// Throws: std::runtime_error naming the address and the reason.
tcp::acceptor listen_on(asio::io_context& io, const std::string& address, std::uint16_t port, bool shared) {
  beast::error_code ec;
  const asio::ip::address ip = asio::ip::make_address(address, ec);
  if (ec) throw std::runtime_error("bad address '" + address + "': " + ec.message());
  const tcp::endpoint endpoint(ip, port);
  tcp::acceptor acceptor(io);
  const std::string where = address + ":" + std::to_string(port);
  if (acceptor.open(endpoint.protocol(), ec) || acceptor.set_option(asio::socket_base::reuse_address(true), ec) ||
      (shared && acceptor.set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true), ec)) ||
      acceptor.bind(endpoint, ec) || acceptor.listen(asio::socket_base::max_listen_connections, ec))
    throw std::runtime_error("cannot listen on " + where + ": " + ec.message());
  return acceptor;
}

// Worker 0 sweeps sessions idle past their timeout (the store never expires
// them by itself); a swept session's next request gets a new one.
asio::awaitable<void> sweep_expired(Store& store, int index) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(kSweepPeriod);
    auto [error] = co_await timer.async_wait(kAsTuple);
    if (error) co_return;
    try {
      store.expire();
    } catch (const std::exception& e) {
      log_line("worker " + std::to_string(index) + ": expiry sweep: " + e.what());
    }
  }
}

void log_worker(int index, const std::string& line) {
  log_line("worker " + std::to_string(index) + " (pid " + std::to_string(::getpid()) + "): " + line);
}

}  // namespace

std::optional<std::string> probe_listen(const std::string& address, std::uint16_t port, bool shared) {
  try {
    asio::io_context io(1);
    tcp::acceptor probe = listen_on(io, address, port, shared);
    return std::nullopt;
  } catch (const std::exception& e) {
    return e.what();
  }
}

int run_worker(const WorkerOptions& options) {
  asio::io_context io(1);
  // The signal set first: the supervisor forked us with SIGINT/SIGTERM
  // blocked, so none is lost before it exists; unblocked once it does.
  asio::signal_set signals(io, SIGINT, SIGTERM);
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  std::optional<Store> store;
  std::optional<sync::Client> client;
  std::optional<ShmSessions> shm_sessions;
  std::optional<RedisSessions> redis_sessions;
  std::unique_ptr<RequestHandler> shop;
  std::vector<tcp::acceptor> acceptors;
  try {
    if (options.sessions == SessionsIn::Redis) {
      redis_sessions.emplace(options.redis_port);
      shop = std::make_unique<RedisShop>(*redis_sessions, options.index);
    } else {
      store.emplace(Store::attach(options.store));
      client.emplace(*store);
      shm_sessions.emplace(*store, *client);
      shop = std::make_unique<Shop>(*shm_sessions, options.index);
    }
    acceptors.push_back(listen_on(io, options.address, options.port, true));
    if (options.direct_port != 0) acceptors.push_back(listen_on(io, options.address, options.direct_port, false));
  } catch (const std::exception& e) {
    log_worker(options.index, std::string("cannot start: ") + e.what());
    return 1;
  }
  ::pthread_sigmask(SIG_UNBLOCK, &stop, nullptr);
  WorkerCounters counters;
  for (tcp::acceptor& a : acceptors) asio::co_spawn(io, accept_loop(a, *shop, options, counters), asio::detached);
  if (options.index == 0 && store) asio::co_spawn(io, sweep_expired(*store, options.index), asio::detached);
  signals.async_wait([&](const beast::error_code& error, int) {
    if (error) return;
    for (tcp::acceptor& a : acceptors) {
      beast::error_code ignored;
      a.close(ignored);
    }
    // Requests are served synchronously on this thread, so none is half
    // done here: stopping the loop leaves only idle or in-transfer sockets.
    io.stop();
  });
  if (options.ready_fd >= 0) {
    const char byte = 1;
    if (::write(options.ready_fd, &byte, 1) != 1) log_worker(options.index, "cannot report readiness");
    ::close(options.ready_fd);
  }
  io.run();
  shop.reset();
  client.reset();  // commits what is pending, releases every process lock
  log_worker(options.index, "stopped after " + std::to_string(counters.requests) + " requests on " +
                                std::to_string(counters.connections) + " connections");
  return 0;
}

}  // namespace shmsession::appserver
