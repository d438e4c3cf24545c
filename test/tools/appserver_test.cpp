// The demo app server as people run it: the built shmsession-appserver with
// two worker processes on one store, the sync agent and the backup daemon
// beside it (forked children, real TCP on 127.0.0.1), and requests of ONE
// session sent alternately to each worker.
//
// SO_REUSEPORT lets no client choose the worker that accepts its connection,
// so the server is started with --worker-ports: worker k also listens alone
// on BASE+k. The test talks to those ports (and once to the shared one); the
// workers are the same processes either way, so what is checked is what a
// session sees when the kernel spreads its requests over workers: every
// request sees the previous one's change, whichever worker made it.
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>

#include "sync/attribute_codec.hpp"
#include "test/support/test_support.hpp"
#include "test/sync/replication_fixture.hpp"
#include "tools/appserver/catalog.hpp"
#include "tools/appserver/request_params.hpp"
#include "tools/appserver/shop_model.hpp"
#include "tools/common/temp_dir.hpp"

using namespace shmsession;
using namespace shmsession::test;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;

namespace {

struct Reply {
  unsigned status = 0;
  std::string body;
  std::string set_cookie;  // "sid=..." without attributes
  std::string worker;      // X-Worker header
};

// One keep-alive connection to one port.
class HttpConnection {
 public:
  explicit HttpConnection(std::uint16_t port) : socket_(io_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }

  Reply send(http::verb verb, const std::string& target, const std::string& cookie = {}, const std::string& form = {}) {
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "127.0.0.1");
    if (!cookie.empty()) req.set(http::field::cookie, cookie);
    if (!form.empty()) {
      req.set(http::field::content_type, "application/x-www-form-urlencoded");
      req.body() = form;
    }
    req.keep_alive(true);
    req.prepare_payload();
    http::write(socket_, req);
    http::response<http::string_body> res;
    http::read(socket_, buffer_, res);
    Reply r;
    r.status = res.result_int();
    r.body = res.body();
    if (auto it = res.find(http::field::set_cookie); it != res.end()) {
      const std::string value(it->value());
      r.set_cookie = value.substr(0, value.find(';'));
    }
    if (auto it = res.find("X-Worker"); it != res.end()) r.worker = std::string(it->value());
    BOOST_TEST(res.keep_alive(), "the server kept the connection for " << target);
    return r;
  }

 private:
  asio::io_context io_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
};

// Two consecutive free ports (for --worker-ports BASE with 2 workers).
std::uint16_t free_port_pair() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    const std::uint16_t base = free_port();
    if (base < 65535 && tools::loopback_port_is_free(static_cast<std::uint16_t>(base + 1))) return base;
  }
  BOOST_FAIL("no two consecutive free ports");
  return 0;
}

bool accepts(std::uint16_t port) {
  try {
    asio::io_context io;
    tcp::socket s(io);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

// The server binary with 2 workers; SIGKILLed by ~ChildProcess if the test
// fails before stopping it (its workers then get SIGTERM: PR_SET_PDEATHSIG).
ChildProcess start_server(const std::string& store, std::uint16_t port, std::uint16_t worker_ports) {
  const std::string p = std::to_string(port), w = std::to_string(worker_ports);
  return ChildProcess([=] {
    ::execl(APPSERVER_PATH, "shmsession-appserver", "serve", "--store", store.c_str(), "--port", p.c_str(), "--workers",
            "2", "--worker-ports", w.c_str(), static_cast<char*>(nullptr));
    std::perror("exec shmsession-appserver");
    return 127;
  });
}

void wait_listening(ChildProcess& server, std::initializer_list<std::uint16_t> ports) {
  const auto end = std::chrono::steady_clock::now() + 60s;
  for (std::uint16_t port : ports) {
    while (!accepts(port)) {
      BOOST_REQUIRE_MESSAGE(server.wait_for(0ms) == -1, "the server exited at start");
      BOOST_REQUIRE_MESSAGE(std::chrono::steady_clock::now() < end, "port " << port << " never accepted");
      std::this_thread::sleep_for(20ms);
    }
  }
}

json::object session_doc(const Reply& r) {
  BOOST_REQUIRE_MESSAGE(r.status == 200, "status " << r.status << ": " << r.body);
  return json::parse(r.body).as_object();
}

std::int64_t field(const json::object& doc, const char* name) { return doc.at(name).to_number<std::int64_t>(); }

}  // namespace

BOOST_AUTO_TEST_CASE(one_session_alternating_between_two_workers_is_consistent_and_replicated) {
  SegmentGuard pg("app_p"), sg("app_s");
  Store primary = make_store(pg.name());
  const std::uint16_t backup_port = free_port();
  ChildProcess backup = start_backup(sg.name(), backup_port);
  // The daemon creates the standby store as it starts (a store appears
  // under its name only once ready); the end of the test attaches it.
  for (const auto end = std::chrono::steady_clock::now() + 60s; !Store::exists(sg.name());) {
    BOOST_REQUIRE_MESSAGE(backup.wait_for(0ms) == -1, "the backup daemon exited at start");
    BOOST_REQUIRE_MESSAGE(std::chrono::steady_clock::now() < end, "the backup daemon never created its standby");
    std::this_thread::sleep_for(20ms);
  }
  ChildProcess agent = start_agent(pg.name(), backup_port);
  const std::uint16_t port = free_port(), base = free_port_pair();
  ChildProcess server = start_server(pg.name(), port, base);
  wait_listening(server, {static_cast<std::uint16_t>(base), static_cast<std::uint16_t>(base + 1), port});
  HttpConnection worker[2] = {HttpConnection(base), HttpConnection(static_cast<std::uint16_t>(base + 1))};

  // A request without a cookie starts a session and sets the cookie.
  const Reply first = worker[0].send(http::verb::get, "/api/session");
  json::object doc = session_doc(first);
  BOOST_REQUIRE(first.set_cookie.starts_with("sid="));
  const std::string cookie = first.set_cookie, sid = cookie.substr(4);
  BOOST_TEST(doc.at("session").as_string() == sid);
  BOOST_TEST(doc.at("new_session").as_bool());
  BOOST_TEST(field(doc, "worker") == 0);
  std::int64_t version = field(doc, "version");
  std::int64_t pid[2] = {field(doc, "pid"), 0};

  // Ten adds, alternating workers: each sees the previous one's line.
  for (int i = 0; i < 10; ++i) {
    const int w = (i + 1) % 2;
    char target[64];
    std::snprintf(target, sizeof target, "/cart/items?sku=SKU-%04d&qty=%d", i + 1, i + 1);
    const Reply r = worker[w].send(http::verb::post, target, cookie);
    doc = session_doc(r);
    BOOST_TEST(r.set_cookie.empty(), "a known session gets no new cookie");
    BOOST_TEST(field(doc, "worker") == w);
    BOOST_TEST(r.worker == std::to_string(w));
    if (pid[w] == 0) pid[w] = field(doc, "pid");
    BOOST_TEST(field(doc, "pid") == pid[w]);
    BOOST_TEST(doc.at("session").as_string() == sid);
    BOOST_TEST(field(doc, "version") == version + 1, "request " << i << " sees the previous commit");
    version = field(doc, "version");
    const json::array& lines = doc.at("lines").as_array();
    BOOST_REQUIRE_EQUAL(lines.size(), static_cast<std::size_t>(i + 1));
    BOOST_TEST(field(lines.back().as_object(), "qty") == i + 1);
  }
  BOOST_TEST(pid[0] != pid[1], "two worker processes served the session");

  // Change a quantity on one worker, remove a line on the other (form body).
  doc = session_doc(worker[0].send(http::verb::post, "/cart/items/SKU-0001?qty=7", cookie));
  BOOST_TEST(field(doc, "version") == ++version);
  BOOST_TEST(field(doc.at("lines").as_array()[0].as_object(), "qty") == 7);
  doc = session_doc(worker[1].send(http::verb::post, "/cart/items/SKU-0002", cookie, "qty=0"));
  BOOST_TEST(field(doc, "version") == ++version);
  BOOST_TEST(doc.at("lines").as_array().size() == 9u);

  // A product view on worker 0 is the first recently viewed one on worker 1.
  const Reply view = worker[0].send(http::verb::get, "/view/SKU-0042", cookie);
  BOOST_TEST(view.status == 200u);
  doc = session_doc(worker[1].send(http::verb::get, "/api/session", cookie));
  BOOST_TEST(field(doc, "version") == ++version);
  BOOST_TEST(doc.at("recently_viewed").as_array().at(0).as_string() == "SKU-0042");
  BOOST_TEST(field(doc, "worker") == 1);

  // Reads commit nothing; the shared port serves the same session.
  const Reply cart = worker[0].send(http::verb::get, "/cart", cookie);
  BOOST_TEST(cart.status == 200u);
  BOOST_TEST(cart.body.find("SKU-0010") != std::string::npos, cart.body);
  BOOST_TEST(cart.body.find("SKU-0002") == std::string::npos, cart.body);
  HttpConnection shared(port);
  doc = session_doc(shared.send(http::verb::get, "/api/session", cookie));
  BOOST_TEST(field(doc, "version") == version);
  BOOST_TEST(doc.at("session").as_string() == sid);

  // Bad requests: one line and 400; unknown paths and lines: 404.
  const auto one_line = [](const Reply& r) { return !r.body.empty() && r.body.find('\n') == r.body.size() - 1; };
  for (const char* target : {"/cart/items?sku=NOPE", "/cart/items?qty=1", "/cart/items?sku=SKU-0001&qty=abc",
                             "/cart/items?sku=SKU-0001&qty=0", "/cart/items?sku=%zz"}) {
    const Reply r = worker[0].send(http::verb::post, target, cookie);
    BOOST_TEST(r.status == 400u, target);
    BOOST_TEST(one_line(r), target << ": " << r.body);
  }
  BOOST_TEST(worker[1].send(http::verb::post, "/cart/items/SKU-0003?qty=-1", cookie).status == 400u);
  BOOST_TEST(worker[1].send(http::verb::post, "/cart/items/SKU-0150?qty=1", cookie).status == 404u);
  BOOST_TEST(worker[1].send(http::verb::get, "/view/SKU-9999", cookie).status == 404u);
  const Reply missing = worker[1].send(http::verb::get, "/no/such/path", cookie);
  BOOST_TEST(missing.status == 404u);
  BOOST_TEST(one_line(missing));
  // A made-up session id is not adopted: a new session and cookie.
  const Reply forged = worker[0].send(http::verb::get, "/api/session", "sid=0123456789abcdef0123456789abcdef");
  BOOST_TEST(forged.set_cookie.starts_with("sid="));
  BOOST_TEST(forged.set_cookie != "sid=0123456789abcdef0123456789abcdef");
  doc = session_doc(worker[0].send(http::verb::get, "/api/session", cookie));
  BOOST_TEST(field(doc, "version") == version, "refused requests changed nothing");

  // The standby holds the final cart once the agent has caught up.
  Store standby = Store::attach(sg.name());
  BOOST_REQUIRE(wait_caught_up(primary, standby));
  std::optional<SessionSnapshot> copy = standby.peek(sid);
  BOOST_REQUIRE(copy.has_value());
  BOOST_TEST(copy->version == static_cast<std::uint64_t>(version));
  const Attribute* bytes = copy->find(appserver::kCartAttribute);
  BOOST_REQUIRE(bytes != nullptr);
  const appserver::Cart final_cart = sync::decode_attribute<appserver::Cart>(bytes->value);
  BOOST_REQUIRE_EQUAL(final_cart.items.size(), 9u);
  BOOST_TEST(final_cart.items[0].sku == "SKU-0001");
  BOOST_TEST(final_cart.items[0].qty == 7);
  BOOST_TEST(final_cart.items[1].sku == "SKU-0003");
  BOOST_TEST(final_cart.items.back().sku == "SKU-0010");
  BOOST_TEST(final_cart.items.back().qty == 10);

  // SIGTERM: workers stop and release every process lock they held.
  server.kill(SIGTERM);
  BOOST_TEST(server.wait() == 0);
  for (const LockInfo& lock : primary.locks())
    BOOST_TEST(lock.holder_pid == 0, "lock of " << lock.session << " still held");
  BOOST_TEST(!accepts(base));
  agent.kill(SIGTERM);
  BOOST_TEST(agent.wait() == 0);
}

// bfc5f82: `shmctl reset --all` every 50 ms under load gave HTTP 500s
// ("store error: session ... does not exist"): a worker's client state kept
// the vanished sessions and every later open threw NotFound. Now a request
// whose session vanished is served on a fresh one: 4xx may answer a cart
// line the reset took away, a 5xx never.
BOOST_AUTO_TEST_CASE(sessions_reset_every_50_ms_under_load_never_give_a_server_error) {
  SegmentGuard pg("app_reset");
  Store primary = make_store(pg.name());
  const std::uint16_t port = free_port(), base = free_port_pair();
  ChildProcess server = start_server(pg.name(), port, base);
  wait_listening(server, {static_cast<std::uint16_t>(base), static_cast<std::uint16_t>(base + 1), port});
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> resets{0}, removed{0};
  std::thread resetter([&] {
    Store mine = Store::attach(pg.name());
    while (!stop) {
      removed += mine.remove_all_sessions();
      ++resets;
      std::this_thread::sleep_for(50ms);  // the pace of the reported workload, not a decision
    }
  });
  // Load runs until at least 40 resets fell inside them.
  std::uint64_t requests = 0, resets_under_load = 0;
  for (int run = 0; run < 10 && resets_under_load < 40; ++run) {
    const std::uint64_t before = resets;
    const CommandResult load = run_command({APPSERVER_PATH, "load", "--port", std::to_string(port), "--connections",
                                            "8", "--sessions", "64", "--seconds", "2", "--json", "--quiet"},
                                           {}, 120s);
    resets_under_load += resets - before;
    BOOST_TEST_REQUIRE(!load.out.empty(), load.err);
    const json::object doc = json::parse(load.out).as_object();
    BOOST_TEST_MESSAGE("load " << run << ": " << load.out);
    BOOST_TEST(field(doc, "requests") > 0);
    BOOST_TEST(field(doc, "transport_errors") == 0);
    BOOST_TEST(field(doc, "server_errors") == 0, doc.at("last_server_error").as_string());
    requests += static_cast<std::uint64_t>(field(doc, "requests"));
  }
  stop = true;
  resetter.join();
  BOOST_TEST_MESSAGE(requests << " requests under " << resets_under_load << " resets (" << removed
                              << " sessions removed)");
  BOOST_TEST(resets_under_load >= 40u);
  BOOST_TEST(removed > 0u);
  server.kill(SIGTERM);
  BOOST_TEST(server.wait() == 0);
  for (const LockInfo& lock : primary.locks())
    BOOST_TEST(lock.holder_pid == 0, "lock of " << lock.session << " still held");
}

namespace {

using tools::read_file;
using tools::TempDir;

// The shop with `--sessions redis` (2 workers, --worker-ports), its log in
// `log_path` (where it names its redis-server's pid).
ChildProcess start_redis_server(std::uint16_t port, std::uint16_t worker_ports, const std::string& log_path) {
  const std::string p = std::to_string(port), w = std::to_string(worker_ports);
  return ChildProcess([=] {
    const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ::dup2(fd, 2) < 0) return 127;
    ::execl(APPSERVER_PATH, "shmsession-appserver", "serve", "--sessions", "redis", "--port", p.c_str(), "--workers",
            "2", "--worker-ports", w.c_str(), static_cast<char*>(nullptr));
    std::perror("exec shmsession-appserver");
    return 127;
  });
}

// The pid in the server's "serving sessions in Redis (redis-server pid N"
// line, once it logged it (it does once every worker listens).
pid_t logged_redis_pid(ChildProcess& server, const std::string& log_path) {
  const std::string mark = "redis-server pid ";
  const auto end = std::chrono::steady_clock::now() + 60s;
  for (;;) {
    const std::string log = read_file(log_path);
    if (const std::size_t at = log.find(mark); at != std::string::npos)
      return static_cast<pid_t>(std::stol(log.substr(at + mark.size())));
    BOOST_REQUIRE_MESSAGE(server.wait_for(0ms) == -1, "the server exited at start: " << log);
    BOOST_REQUIRE_MESSAGE(std::chrono::steady_clock::now() < end, "the server never named its redis-server: " << log);
    std::this_thread::sleep_for(20ms);
  }
}

// Running, not a zombie (an orphan's zombie may wait for a reaper).
bool process_running(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(stat, text)) return false;
  const std::size_t close = text.rfind(')');
  return close != std::string::npos && close + 2 < text.size() && text[close + 2] != 'Z';
}

void wait_gone(pid_t pid, const char* what) {
  const auto end = std::chrono::steady_clock::now() + 30s;
  while (process_running(pid)) {
    BOOST_REQUIRE_MESSAGE(std::chrono::steady_clock::now() < end, what << " (pid " << pid << ") still runs");
    std::this_thread::sleep_for(20ms);
  }
}

// The cart of an /api/session document priced from the catalog: its lines
// (sku -> qty) and total must agree with what the test put in.
void check_cart(const json::object& doc, const std::map<std::string, int>& expected) {
  const json::array& lines = doc.at("lines").as_array();
  BOOST_TEST(lines.size() == expected.size());
  std::int64_t total = 0, items = 0;
  for (const json::value& v : lines) {
    const json::object& line = v.as_object();
    const std::string sku(line.at("sku").as_string());
    const appserver::Product* product = appserver::find_product(sku);
    BOOST_REQUIRE_MESSAGE(product != nullptr, sku);
    BOOST_TEST(field(line, "unit_price_cents") == product->price_cents, sku);
    auto it = expected.find(sku);
    BOOST_REQUIRE_MESSAGE(it != expected.end(), sku << " is in the cart");
    BOOST_TEST(field(line, "qty") == it->second, sku);
    total += it->second * product->price_cents;
    items += it->second;
  }
  BOOST_TEST(field(doc, "total_cents") == total);
  BOOST_TEST(field(doc, "items") == items);
}

}  // namespace

// The shop's peer in the demo's summary: the same shop with its sessions in
// a redis-server it starts (phpredis's lock recipe), the same requests.
BOOST_AUTO_TEST_CASE(sessions_in_redis_serve_requests_whose_cart_totals_check_out) {
  TempDir dir("appserver_test");
  const std::string log_path = dir.path() + "/appserver.log";
  const std::uint16_t port = free_port(), base = free_port_pair();
  ChildProcess server = start_redis_server(port, base, log_path);
  wait_listening(server, {static_cast<std::uint16_t>(base), static_cast<std::uint16_t>(base + 1), port});
  const pid_t redis = logged_redis_pid(server, log_path);
  BOOST_TEST(process_running(redis));
  HttpConnection worker[2] = {HttpConnection(base), HttpConnection(static_cast<std::uint16_t>(base + 1))};

  const Reply first = worker[0].send(http::verb::get, "/api/session");
  json::object doc = session_doc(first);
  BOOST_REQUIRE(first.set_cookie.starts_with("sid="));
  const std::string cookie = first.set_cookie;
  BOOST_TEST(doc.at("new_session").as_bool());
  std::int64_t version = field(doc, "version");
  std::map<std::string, int> cart;
  // Adds, a second add of one line, a quantity change and a removal,
  // alternating workers: each sees the previous one's change.
  for (int i = 0; i < 6; ++i) {
    const int w = (i + 1) % 2, qty = i % 3 + 1;
    char sku[16];
    std::snprintf(sku, sizeof sku, "SKU-%04d", i % 5 + 1);
    doc = session_doc(worker[w].send(http::verb::post,
                                     std::string("/cart/items?sku=") + sku + "&qty=" + std::to_string(qty), cookie));
    cart[sku] += qty;
    BOOST_TEST(field(doc, "worker") == w);
    BOOST_TEST(field(doc, "version") == ++version, "request " << i << " sees the previous commit");
    check_cart(doc, cart);
  }
  doc = session_doc(worker[0].send(http::verb::post, "/cart/items/SKU-0002?qty=9", cookie));
  cart["SKU-0002"] = 9;
  BOOST_TEST(field(doc, "version") == ++version);
  check_cart(doc, cart);
  doc = session_doc(worker[1].send(http::verb::post, "/cart/items/SKU-0003", cookie, "qty=0"));
  cart.erase("SKU-0003");
  BOOST_TEST(field(doc, "version") == ++version);
  check_cart(doc, cart);
  BOOST_TEST(worker[0].send(http::verb::get, "/view/SKU-0042", cookie).status == 200u);
  doc = session_doc(worker[1].send(http::verb::get, "/api/session", cookie));
  BOOST_TEST(field(doc, "version") == ++version);
  BOOST_TEST(doc.at("recently_viewed").as_array().at(0).as_string() == "SKU-0042");
  check_cart(doc, cart);
  BOOST_TEST(worker[0].send(http::verb::post, "/cart/items?sku=NOPE", cookie).status == 400u);

  // The load client's mix on the shared port: served, no error of any kind.
  const CommandResult load = run_command({APPSERVER_PATH, "load", "--port", std::to_string(port), "--connections", "4",
                                          "--sessions", "32", "--seconds", "1", "--json", "--quiet"},
                                         {}, 120s);
  BOOST_TEST_REQUIRE(!load.out.empty(), load.err);
  const json::object summary = json::parse(load.out).as_object();
  BOOST_TEST(field(summary, "requests") > 0);
  BOOST_TEST(field(summary, "errors") == 0, load.out);
  // The first session kept its cart through the load on other sessions.
  doc = session_doc(worker[0].send(http::verb::get, "/api/session", cookie));
  BOOST_TEST(field(doc, "version") == version);
  check_cart(doc, cart);

  // SIGTERM: workers and the redis-server stop.
  server.kill(SIGTERM);
  BOOST_TEST(server.wait() == 0);
  BOOST_TEST(!process_running(redis));
}

// A supervisor that dies without its cleanup (SIGKILL, as ~ChildProcess
// kills a server when a test fails) leaves no redis-server behind.
BOOST_AUTO_TEST_CASE(sessions_in_redis_server_dies_with_a_killed_supervisor) {
  TempDir dir("appserver_test");
  const std::string log_path = dir.path() + "/appserver.log";
  const std::uint16_t port = free_port(), base = free_port_pair();
  ChildProcess server = start_redis_server(port, base, log_path);
  const pid_t redis = logged_redis_pid(server, log_path);
  BOOST_TEST(process_running(redis));
  server.kill(SIGKILL);
  BOOST_TEST(server.wait() == 128 + SIGKILL);
  wait_gone(redis, "the redis-server of a killed supervisor");
}

BOOST_AUTO_TEST_CASE(request_parameters_refuse_malformed_input) {
  using appserver::cookie_value;
  using appserver::parse_form;
  using appserver::parse_target;
  BOOST_TEST(parse_form("sku=SKU-0001&qty=2")->at("qty") == "2");
  BOOST_TEST(parse_form("a=x+y%21&a=z")->at("a") == "z");  // a later duplicate wins
  BOOST_TEST(parse_form("b=x+y%21")->at("b") == "x y!");
  BOOST_TEST(!parse_form("a=%2"));
  BOOST_TEST(!parse_form("a=%zz"));
  BOOST_TEST(!parse_form("a=%00"));  // a decoded NUL
  BOOST_TEST(!parse_target("cart"));
  BOOST_TEST(!parse_target("/view/%"));
  BOOST_TEST(parse_target("/view/SKU%2D0001?x=1")->path == "/view/SKU-0001");
  BOOST_TEST(*cookie_value("a=1; sid=abc ;b=2", "sid") == "abc");
  BOOST_TEST(*cookie_value("sid=\"q\"", "sid") == "q");
  BOOST_TEST(!cookie_value("sidx=1; xsid=2", "sid"));
}

BOOST_AUTO_TEST_CASE(server_refuses_a_missing_store_and_a_wrong_command_line) {
  SegmentGuard missing("app_missing");  // a name no store has
  const std::string port = std::to_string(free_port());
  CommandResult r = run_command({APPSERVER_PATH, "serve", "--store", missing.name(), "--port", port});
  BOOST_TEST(r.exit_code == 1);
  BOOST_TEST(r.err.find("cannot attach store '" + missing.name() + "'") != std::string::npos, r.err);
  r = run_command({APPSERVER_PATH, "serve", "--port", port});
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.err.find("--store is required") != std::string::npos, r.err);
  r = run_command({APPSERVER_PATH, "serve", "--sessions", "redis", "--store", missing.name(), "--port", port});
  BOOST_TEST(r.exit_code == 2);
  r = run_command({APPSERVER_PATH, "serve", "--sessions", "memcached", "--port", port});
  BOOST_TEST(r.exit_code == 2);
  r = run_command({APPSERVER_PATH, "serve", "--store", missing.name(), "--workers", "0"});
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.err.find("usage") != std::string::npos, r.err);
  // The load client against a port nobody listens on: it fails, it does not hang.
  r = run_command({APPSERVER_PATH, "load", "--port", port, "--seconds", "0.3", "--quiet"});
  BOOST_TEST(r.exit_code == 1);
}
