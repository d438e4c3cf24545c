#include "tools/appserver/load_client.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "tools/appserver/catalog.hpp"
#include "tools/appserver/request_params.hpp"

namespace shmsession::appserver {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto kLoadAsTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kCartLinesKept = 8;  // past this many lines an add becomes a removal

enum Action { kView, kAdd, kQty, kCart, kApi, kActions };
constexpr std::array<const char*, kActions> kActionNames{"view", "add", "qty", "cart", "api"};
constexpr std::array<int, kActions> kWeights{35, 20, 15, 20, 10};

struct SessionState {
  std::string cookie;             // "sid=..." once the server gave one
  std::vector<std::string> cart;  // skus in the cart, as this client put them
};

struct Totals {
  std::vector<std::uint32_t> latency_us;  // every answered request
  std::uint64_t status_errors = 0;        // answers other than 2xx/3xx
  std::uint64_t server_errors = 0;        // of which 5xx
  std::string last_server_error;
  std::uint64_t transport_errors = 0;  // connect, read or write failures
  std::array<std::uint64_t, kActions> by_action{};
  std::string last_error;
};

double percentile_ms(std::vector<std::uint32_t> samples, double p) {
  if (samples.empty()) return 0;
  const std::size_t k = std::min(samples.size() - 1, static_cast<std::size_t>(p * static_cast<double>(samples.size())));
  std::nth_element(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(k), samples.end());
  return samples[k] / 1000.0;
}

class Load {
 public:
  Load(const LoadOptions& options, asio::io_context& io)
      : options_(options), io_(io), rng_(options.seed), running_(options.connections) {
    sessions_.resize(static_cast<std::size_t>(std::max(options.sessions, options.connections)));
  }

  void start() {
    start_ = Clock::now();
    end_ = start_ + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options_.seconds));
    for (int c = 0; c < options_.connections; ++c) asio::co_spawn(io_, drive(c), asio::detached);
    if (!options_.quiet) asio::co_spawn(io_, progress(), asio::detached);
  }

  const Totals& totals() const { return totals_; }
  double elapsed_s() const { return std::chrono::duration<double>(stopped_ - start_).count(); }
  std::size_t sessions_started() const {
    return static_cast<std::size_t>(
        std::count_if(sessions_.begin(), sessions_.end(), [](const SessionState& s) { return !s.cookie.empty(); }));
  }

 private:
  // Connection c serves sessions c, c + C, c + 2C, ...
  asio::awaitable<void> drive(int c) {
    const std::size_t stride = static_cast<std::size_t>(options_.connections);
    std::size_t next = static_cast<std::size_t>(c);
    std::optional<beast::tcp_stream> stream;
    beast::flat_buffer buffer;
    while (Clock::now() < end_) {
      if (!stream) {
        stream.emplace(co_await asio::this_coro::executor);
        auto [error] = co_await stream->async_connect(
            tcp::endpoint(asio::ip::make_address(options_.host), options_.port), kLoadAsTuple);
        if (error) {
          fail_transport("connect: " + error.message());
          stream.reset();
          asio::steady_timer pause(io_, std::chrono::milliseconds(100));
          co_await pause.async_wait(kLoadAsTuple);
          continue;
        }
        buffer.clear();
      }
      SessionState& session = sessions_[next];
      next += stride;
      if (next >= sessions_.size()) next = static_cast<std::size_t>(c);
      auto [action, request] = make_request(session);
      const Clock::time_point sent = Clock::now();
      stream->expires_after(std::chrono::seconds(10));
      auto [write_error, w] = co_await http::async_write(*stream, request, kLoadAsTuple);
      http::response_parser<http::string_body> parser;
      parser.body_limit(1 << 20);
      beast::error_code read_error = write_error;
      if (!write_error)
        std::tie(read_error, std::ignore) = co_await http::async_read(*stream, buffer, parser, kLoadAsTuple);
      if (read_error) {
        fail_transport(std::string(kActionNames[action]) + ": " + read_error.message());
        stream.reset();
        continue;
      }
      const auto& response = parser.get();
      record(action, Clock::now() - sent, response.result_int(), response.body());
      if (auto it = response.find(http::field::set_cookie); it != response.end()) {
        const std::string_view value(it->value().data(), it->value().size());
        session.cookie = std::string(value.substr(0, value.find(';')));
        session.cart.clear();  // a new session
      }
      if (!response.keep_alive()) stream.reset();
    }
    if (--running_ == 0) {
      stopped_ = Clock::now();
      io_.stop();
    }
  }

  // The next request of `session`; updates the cart mirror as if it succeeds.
  std::pair<Action, http::request<http::string_body>> make_request(SessionState& session) {
    Action action = kApi;  // a session without a cookie yet starts with /api/session
    if (!session.cookie.empty()) {
      std::discrete_distribution<int> pick(kWeights.begin(), kWeights.end());
      action = static_cast<Action>(pick(rng_));
    }
    std::string target = "/api/session";
    http::verb verb = http::verb::get;
    const std::string& sku = product_sku(rng_());
    if (action == kAdd && session.cart.size() >= kCartLinesKept) action = kQty;
    if (action == kQty && session.cart.empty()) action = kAdd;
    switch (action) {
      case kView:
        target = "/view/" + sku;
        break;
      case kAdd:
        verb = http::verb::post;
        target = "/cart/items?sku=" + sku + "&qty=" + std::to_string(1 + rng_() % 3);
        if (std::find(session.cart.begin(), session.cart.end(), sku) == session.cart.end()) session.cart.push_back(sku);
        break;
      case kQty: {
        verb = http::verb::post;
        const std::size_t line = rng_() % session.cart.size();
        // Carts that reached kCartLinesKept lines shrink; the others change a qty.
        const int qty = session.cart.size() >= kCartLinesKept ? 0 : static_cast<int>(rng_() % 6);
        target = "/cart/items/" + session.cart[line] + "?qty=" + std::to_string(qty);
        if (qty == 0) session.cart.erase(session.cart.begin() + static_cast<std::ptrdiff_t>(line));
        break;
      }
      case kCart:
        target = "/cart";
        break;
      default:
        break;
    }
    http::request<http::string_body> request{verb, target, 11};
    request.set(http::field::host, options_.host);
    request.set(http::field::user_agent, "shmsession-appserver-load");
    if (!session.cookie.empty()) request.set(http::field::cookie, session.cookie);
    request.keep_alive(true);
    request.prepare_payload();
    return {action, std::move(request)};
  }

  void record(Action action, Clock::duration took, unsigned status, const std::string& body) {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(took).count();
    totals_.latency_us.push_back(static_cast<std::uint32_t>(std::min<long long>(us, UINT32_MAX)));
    ++totals_.by_action[action];
    if (status >= 400) {
      ++totals_.status_errors;
      totals_.last_error =
          std::to_string(status) + " on " + kActionNames[action] + ": " + body.substr(0, body.find('\n'));
      if (status >= 500) {
        ++totals_.server_errors;
        totals_.last_server_error = totals_.last_error;
      }
    }
  }

  void fail_transport(const std::string& what) {
    ++totals_.transport_errors;
    totals_.last_error = what;
  }

  asio::awaitable<void> progress() {
    asio::steady_timer timer(io_);
    std::size_t from = 0;
    for (int second = 1;; ++second) {
      timer.expires_at(start_ + std::chrono::seconds(second));
      auto [error] = co_await timer.async_wait(kLoadAsTuple);
      if (error || Clock::now() > end_ + std::chrono::milliseconds(500)) co_return;
      std::vector<std::uint32_t> window(totals_.latency_us.begin() + static_cast<std::ptrdiff_t>(from),
                                        totals_.latency_us.end());
      from = totals_.latency_us.size();
      std::fprintf(stderr, "load: %3ds  %7zu req/s  p50 %6.2f ms  p99 %6.2f ms  sessions %zu  errors %llu\n", second,
                   window.size(), percentile_ms(window, 0.50), percentile_ms(window, 0.99), sessions_started(),
                   static_cast<unsigned long long>(totals_.status_errors) + totals_.transport_errors);
    }
  }

  const LoadOptions& options_;
  asio::io_context& io_;
  std::mt19937_64 rng_;
  std::vector<SessionState> sessions_;
  Totals totals_;
  Clock::time_point start_, end_, stopped_;
  int running_;  // connections still driving
};

void print_summary(const LoadOptions& options, const Load& load) {
  const Totals& t = load.totals();
  const std::size_t requests = t.latency_us.size();
  const double rate = load.elapsed_s() > 0 ? static_cast<double>(requests) / load.elapsed_s() : 0;
  const std::uint64_t errors = t.status_errors + t.transport_errors;
  const double p50 = percentile_ms(t.latency_us, 0.50), p99 = percentile_ms(t.latency_us, 0.99);
  const double max = t.latency_us.empty() ? 0 : *std::max_element(t.latency_us.begin(), t.latency_us.end()) / 1000.0;
  if (options.json) {
    boost::json::object by_action;
    for (int a = 0; a < kActions; ++a) by_action[kActionNames[a]] = t.by_action[a];
    boost::json::object doc{{"requests", requests},
                            {"seconds", load.elapsed_s()},
                            {"requests_per_s", rate},
                            {"p50_ms", p50},
                            {"p99_ms", p99},
                            {"max_ms", max},
                            {"errors", errors},
                            {"status_errors", t.status_errors},
                            {"server_errors", t.server_errors},
                            {"last_server_error", t.last_server_error},
                            {"transport_errors", t.transport_errors},
                            {"last_error", t.last_error},
                            {"connections", options.connections},
                            {"sessions", load.sessions_started()},
                            {"by_action", std::move(by_action)}};
    std::cout << boost::json::serialize(doc) << '\n';
    return;
  }
  std::printf("requests      %zu in %.2f s (%d connections, %zu sessions)\n", requests, load.elapsed_s(),
              options.connections, load.sessions_started());
  std::printf("requests/s    %.0f\n", rate);
  std::printf("latency       p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", p50, p99, max);
  std::printf("mix           ");
  for (int a = 0; a < kActions; ++a)
    std::printf("%s %llu%s", kActionNames[a], static_cast<unsigned long long>(t.by_action[a]),
                a + 1 < kActions ? ", " : "\n");
  std::printf("errors        %llu", static_cast<unsigned long long>(errors));
  if (errors > 0) std::printf(" (last: %s)", t.last_error.c_str());
  std::printf("\n");
  std::printf("server errors %llu", static_cast<unsigned long long>(t.server_errors));
  if (t.server_errors > 0) std::printf(" (last: %s)", t.last_server_error.c_str());
  std::printf("\n");
}

}  // namespace

int run_load(const LoadOptions& options) {
  asio::io_context io(1);
  Load load(options, io);
  load.start();
  io.run();
  print_summary(options, load);
  const Totals& t = load.totals();
  if (t.latency_us.empty()) return 1;
  return t.status_errors + t.transport_errors == 0 ? 0 : 3;
}

}  // namespace shmsession::appserver
