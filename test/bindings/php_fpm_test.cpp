// The PHP extension as PHP sites run it: a real php-fpm8.2 pool of 4
// workers behind a real nginx, both started by the test (nginx on a free
// loopback port, php-fpm on a socket in the test's private directory) and
// stopped by pid, driven over HTTP by this process's threads. The page
// (test/bindings/fpm/session.php) does one session operation per request;
// the checks read the store itself (Store::peek) beside the replies.
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "shm/store.hpp"
#include "test/support/test_support.hpp"
#include "tools/common/http_get.hpp"
#include "tools/common/loopback_port.hpp"
#include "tools/common/php_site.hpp"
#include "tools/common/temp_dir.hpp"

using namespace shmsession;
using namespace shmsession::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kFailAfter = 60s;  // every wait below fails instead of hanging past this

using tools::read_file;
using tools::TempDir;
using tools::write_file;

// A server process (its own process group, so its workers go with it):
// `stop_signal` at the end (SIGQUIT: graceful for nginx and php-fpm),
// SIGKILL to the whole group if it does not stop, and always reaped.
class Server {
 public:
  Server(const std::vector<std::string>& argv, const std::string& log, int stop_signal = SIGQUIT)
      : stop_signal_(stop_signal), pid_(test::spawn_logged(argv, log, true)) {}
  ~Server() { stop(); }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // True while the master has not exited.
  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      ::kill(-pid_, SIGKILL);
      pid_ = -1;
      return false;
    }
    return true;
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, stop_signal_);
    int status = 0;
    bool reaped = false;
    for (const auto end = Clock::now() + 10s; Clock::now() < end;) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        reaped = true;
        break;
      }
      std::this_thread::sleep_for(10ms);
    }
    ::kill(-pid_, SIGKILL);  // workers left behind, or the master itself
    if (!reaped) ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  int stop_signal_;
  pid_t pid_ = -1;
};

struct Reply {
  int status = 0;
  std::string set_cookie;  // the session cookie's value, if the reply sets one
  std::string body;
  json::object doc;  // the body as JSON, when it is
};

// GET /session.php?<query> with the session cookie `session` if not empty.
Reply http_get(std::uint16_t port, const std::string& query, const std::string& session = {}) {
  const tools::HttpReply raw =
      tools::http_get(port, "/session.php?" + query, session.empty() ? "" : "PHPSESSID=" + session, kFailAfter);
  Reply r;
  r.status = raw.status;
  r.set_cookie = raw.set_cookie("PHPSESSID");
  r.body = raw.body;
  if (!r.body.empty() && r.body.front() == '{') {
    boost::system::error_code ec;
    const json::value v = json::parse(r.body, ec);
    if (!ec && v.is_object()) r.doc = v.as_object();
  }
  return r;
}

std::int64_t number(const json::object& doc, const char* name) {
  const json::value* v = doc.if_contains(name);
  return v != nullptr && v->is_int64() ? v->as_int64() : -1;
}

// Waits until `path` exists; false after kFailAfter.
bool wait_for_file(const std::string& path) {
  for (const auto end = Clock::now() + kFailAfter; !fs::exists(path);) {
    if (Clock::now() > end) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// The PHP value of key `name` in the store's copy of session `id` (PHP's
// own serialization, "i:3;"), or "" if the session or key is missing.
std::string stored(Store& store, const std::string& id, std::string_view name) {
  const std::optional<SessionSnapshot> s = store.peek(id);
  if (!s) return {};
  const Attribute* a = s->find(name);
  return a == nullptr ? std::string() : std::string(a->value.begin(), a->value.end());
}

// nginx + a php-fpm pool of 4 workers on store `store` (created here).
class Site {
 public:
  explicit Site(const std::string& tag) : guard_(tag) {
    CreateOptions o;
    o.size_bytes = std::uint64_t{64} << 20;
    o.shards = 16;
    store_.emplace(Store::create(guard_.name(), o));
    const std::string& d = dir_.path();
    if (::mkfifo((d + "/hold.fifo").c_str(), 0600) != 0 || ::mkfifo((d + "/hold_incr.fifo").c_str(), 0600) != 0)
      throw std::runtime_error("mkfifo failed");
    write_file(
        d + "/fpm.conf",
        tools::fpm_conf(
            {d,
             "www",
             d + "/fpm.sock",
             4,
             {"php_value[session.save_handler] = shmsession", "php_value[session.serialize_handler] = shmsession",
              "php_value[session.save_path] = " + guard_.name(), "php_value[session.use_strict_mode] = 1",
              "php_value[session.gc_probability] = 0", "php_value[shmsession.lock_wait_ms] = 30000"}}));
    // -n: no php.ini of this machine; -R: the pool may run as root (CI does).
    fpm_.emplace(
        std::vector<std::string>{PHP_FPM_PATH, "-n", "-d", std::string("extension=") + SHMSESSION_PHP_EXTENSION, "-y",
                                 d + "/fpm.conf", "-F", "-R"},
        d + "/fpm.out");
    for (const auto end = Clock::now() + kFailAfter; !fs::exists(d + "/fpm.sock");) {
      BOOST_REQUIRE_MESSAGE(fpm_->running(), "php-fpm exited at start: " << read_file(d + "/fpm.out"));
      BOOST_REQUIRE_MESSAGE(Clock::now() < end, "php-fpm never listened");
      std::this_thread::sleep_for(5ms);
    }
    // The port is free when chosen; if another process takes it before
    // nginx binds it, nginx exits and the next attempt takes another.
    for (int attempt = 0; attempt < 5 && !nginx_.has_value(); ++attempt) {
      port_ = tools::free_loopback_port();
      write_file(
          d + "/nginx.conf",
          tools::nginx_conf(
              {d, "site", port_, PHP_PAGES_DIR, "/session.php", "unix:" + d + "/fpm.sock", {"SHM_TEST_DIR " + d}}));
      nginx_.emplace(
          std::vector<std::string>{NGINX_PATH, "-p", d, "-e", d + "/nginx-site.log", "-c", d + "/nginx.conf"},
          d + "/nginx.out");
      for (const auto end = Clock::now() + kFailAfter; nginx_->running() && !tools::loopback_accepts(port_);) {
        BOOST_REQUIRE_MESSAGE(Clock::now() < end, "nginx never listened on " << port_);
        std::this_thread::sleep_for(5ms);
      }
      if (!nginx_->running()) nginx_.reset();
    }
    BOOST_REQUIRE_MESSAGE(nginx_.has_value(), "nginx did not start: " << logs());
  }

  Store& store() { return *store_; }
  const std::string& dir() const noexcept { return dir_.path(); }
  Reply get(const std::string& query, const std::string& session = {}) { return http_get(port_, query, session); }
  std::string logs() const {
    return "php-fpm: " + read_file(dir_.path() + "/fpm-www.log") + read_file(dir_.path() + "/fpm.out") +
           "nginx: " + read_file(dir_.path() + "/nginx-site.log");
  }

 private:
  SegmentGuard guard_;
  TempDir dir_{"php_fpm_test"};
  std::optional<Store> store_;
  std::optional<Server> fpm_;
  std::optional<Server> nginx_;
  std::uint16_t port_ = 0;
};

// Opens the fifo a holding request waits on, so it goes on; false if no
// request waits on it within kFailAfter.
bool release(const std::string& fifo) {
  for (const auto end = Clock::now() + kFailAfter; Clock::now() < end; std::this_thread::sleep_for(5ms)) {
    const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) {
      ::close(fd);
      return true;
    }
    if (errno != ENXIO) return false;  // ENXIO: no reader yet
  }
  return false;
}

// Sends ?op=<op> on session `id` from a thread of its own (a request that
// holds the session until the test releases it or kills its worker); the
// reply, or what went wrong, lands in `reply` by the time the thread ends.
std::jthread in_background(Site& site, const std::string& op, const std::string& id, Reply& reply) {
  return std::jthread([&site, &reply, op, id] {
    try {
      reply = site.get("op=" + op, id);
    } catch (const std::exception& e) {
      reply.body = e.what();
    }
  });
}

// The pid a holding request wrote once it held its session.
pid_t holder_pid(const Site& site, const std::string& name) {
  const std::string path = site.dir() + "/" + name + ".pid";
  BOOST_REQUIRE_MESSAGE(wait_for_file(path), "no request held the session");
  return static_cast<pid_t>(std::stol(read_file(path)));
}

// A new session with key k = v; returns its id.
std::string new_session(Site& site, const std::string& k, int v) {
  const Reply r = site.get("op=set&k=" + k + "&v=" + std::to_string(v));
  BOOST_REQUIRE_MESSAGE(r.status == 200 && !r.set_cookie.empty(), "status " << r.status << ": " << r.body);
  return r.set_cookie;
}

// `threads` threads each sending `each` requests `query(thread)` on session
// `id`; returns how many replies were 200 (the others are printed).
int concurrent(Site& site, int threads, int each, const std::function<std::string(int)>& query, const std::string& id) {
  std::atomic<int> good{0};
  std::mutex mutex;
  std::vector<std::string> bad;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (int i = 0; i < each; ++i) {
        try {
          const Reply r = site.get(query(t), id);
          if (r.status == 200) {
            ++good;
            continue;
          }
          const std::lock_guard lock(mutex);
          bad.push_back(std::to_string(r.status) + ": " + r.body);
        } catch (const std::exception& e) {
          const std::lock_guard lock(mutex);
          bad.emplace_back(e.what());
        }
      }
    });
  }
  for (std::thread& t : pool) t.join();
  for (const std::string& b : bad) BOOST_TEST_MESSAGE("failed request: " << b);
  return good;
}

}  // namespace

BOOST_AUTO_TEST_CASE(two_hundred_requests_eight_at_a_time_on_one_session_lose_no_increment) {
  Site site("fpm_n");
  const std::string id = new_session(site, "n", 0);
  BOOST_TEST(concurrent(
                 site, 8, 25, [](int) { return std::string("op=incr"); }, id) == 200);
  const Reply r = site.get("op=get", id);
  BOOST_TEST(r.status == 200);
  BOOST_TEST(number(r.doc.at("session").as_object(), "n") == 200, r.body);
  BOOST_TEST(stored(site.store(), id, "n") == "i:200;");
}

BOOST_AUTO_TEST_CASE(locked_and_read_and_close_requests_on_two_keys_lose_no_update) {
  Site site("fpm_ab");
  const std::string id = new_session(site, "a", 0);
  BOOST_REQUIRE(site.get("op=set&k=b&v=0", id).status == 200);
  // Even threads lock and change a; odd ones read with read_and_close, then
  // take the lock to change b.
  const int good = concurrent(
      site, 8, 25, [](int t) { return std::string(t % 2 == 0 ? "op=a" : "op=b"); }, id);
  BOOST_TEST(good == 200);
  const Reply r = site.get("op=get", id);
  const json::object& session = r.doc.at("session").as_object();
  BOOST_TEST(number(session, "a") == 100, r.body);
  BOOST_TEST(number(session, "b") == 100, r.body);
}

BOOST_AUTO_TEST_CASE(strict_mode_regenerate_destroy_gc_and_lazy_write) {
  Site site("fpm_api");
  Store& store = site.store();

  // Strict mode: a made-up id gets a new session, and never becomes one.
  const std::string made_up = "0123456789abcdef0123456789abcdef";
  Reply r = site.get("op=incr", made_up);
  BOOST_TEST(r.status == 200);
  const std::string given = r.set_cookie;
  BOOST_TEST(!given.empty());
  BOOST_TEST(given != made_up);
  BOOST_TEST(r.doc.at("id").as_string() == given);
  BOOST_TEST(!store.peek(made_up).has_value(), "the made-up id became a session");
  BOOST_TEST(stored(store, given, "n") == "i:1;");
  r = site.get("op=incr", given);  // a known id is kept
  BOOST_TEST(r.set_cookie.empty());
  BOOST_TEST(number(r.doc, "n") == 2);

  // session_regenerate_id(true) moves the data to the new id.
  const std::string old_id = new_session(site, "cart", 3);
  r = site.get("op=regenerate", old_id);
  BOOST_TEST(r.status == 200, r.body);
  const std::string new_id = r.set_cookie;
  BOOST_TEST(!new_id.empty());
  BOOST_TEST(new_id != old_id);
  BOOST_TEST(!store.peek(old_id).has_value(), "the old session is still there");
  BOOST_TEST(stored(store, new_id, "cart") == "i:3;");
  r = site.get("op=get", new_id);
  BOOST_TEST(number(r.doc.at("session").as_object(), "cart") == 3, r.body);

  // session_destroy() removes it.
  const std::string doomed = new_session(site, "x", 1);
  BOOST_REQUIRE(store.peek(doomed).has_value());
  r = site.get("op=destroy", doomed);
  BOOST_TEST(r.status == 200);
  BOOST_TEST(r.doc.at("destroyed").as_bool());
  BOOST_TEST(!store.peek(doomed).has_value());

  // lazy_write: a request that changes nothing writes nothing; its last
  // access moves.
  const std::string lazy = new_session(site, "n", 4);
  const SessionSnapshot before = *store.peek(lazy);
  // Until a later access can show (+5: a snapshot shows the store's
  // boot-time clock converted to wall time as it is read, which moves a
  // shown time by a millisecond or two).
  while (static_cast<std::uint64_t>(
             std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                 .count()) <= before.last_access_unix_ms + 5)
    std::this_thread::sleep_for(1ms);
  r = site.get("op=touch", lazy);
  BOOST_TEST(number(r.doc, "n") == 4);
  const SessionSnapshot after = *store.peek(lazy);
  BOOST_TEST(after.version == before.version, "an unchanged session was written");
  BOOST_TEST(after.last_access_unix_ms > before.last_access_unix_ms);

  // gc frees a session idle past its timeout (session.gc_maxlifetime = 1
  // when it was written), through session_gc() in another session.
  r = site.get("op=expiring");
  const std::string expiring = r.set_cookie;
  BOOST_REQUIRE(!expiring.empty());
  BOOST_REQUIRE(store.peek(expiring).has_value());
  // (peek already hides an expired session; the store's count of sessions
  // shows when gc has freed it.)
  const std::uint64_t sessions = store.stats().sessions;
  std::int64_t freed = 0;
  for (const auto end = Clock::now() + kFailAfter; freed < 1 && Clock::now() < end;) {
    std::this_thread::sleep_for(50ms);
    r = site.get("op=gc", given);
    BOOST_REQUIRE(r.status == 200);
    freed += number(r.doc, "freed");
  }
  BOOST_TEST(freed == 1, "session_gc() counted " << freed);
  BOOST_TEST(store.stats().sessions == sessions - 1);
  BOOST_TEST(!store.peek(expiring).has_value());
  BOOST_TEST(store.peek(given).has_value(), "gc freed a live session");
}

BOOST_AUTO_TEST_CASE(a_worker_killed_while_holding_a_session_does_not_block_it) {
  Site site("fpm_kill");
  const std::string id = new_session(site, "n", 5);
  Reply held;
  std::jthread holder = in_background(site, "hold", id, held);
  const pid_t worker = holder_pid(site, "hold");
  BOOST_TEST_MESSAGE("killing php-fpm worker " << worker << ", which holds the session");
  BOOST_REQUIRE(::kill(worker, SIGKILL) == 0);
  const auto killed = Clock::now();
  const Reply r = site.get("op=incr", id);
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - killed);
  holder.join();
  BOOST_TEST_MESSAGE("the next request was served " << waited.count() << " ms after the kill");
  BOOST_TEST(held.status != 200, "the killed request answered: " << held.body);
  BOOST_TEST(r.status == 200, r.body << site.logs());
  BOOST_TEST(number(r.doc, "n") == 6, "the killed worker's n = 99 must not stand: " << r.body);
  for (const LockInfo& lock : site.store().locks())
    BOOST_TEST(lock.holder_pid != worker, "the dead worker still holds " << lock.session);
}

BOOST_AUTO_TEST_CASE(a_lock_not_granted_in_time_warns_and_loses_no_write) {
  Site site("fpm_wait");
  const std::string id = new_session(site, "n", 0);
  Reply held;
  std::jthread holder = in_background(site, "hold_incr", id, held);
  holder_pid(site, "hold_incr");
  // Waits at most 300 ms (shmsession.lock_wait_ms) behind the holder.
  const Reply refused = site.get("op=impatient", id);
  const bool released = release(site.dir() + "/hold_incr.fifo");
  holder.join();
  BOOST_REQUIRE(released);
  BOOST_TEST(refused.status == 503, refused.body);
  BOOST_TEST(!refused.doc.at("started").as_bool());
  const json::array& warnings = refused.doc.at("warnings").as_array();
  BOOST_TEST(std::any_of(warnings.begin(), warnings.end(),
                         [](const json::value& w) {
                           return std::string_view(w.as_string()).find("stays locked") != std::string_view::npos;
                         }),
             refused.body);
  BOOST_TEST(held.status == 200, held.body);
  BOOST_TEST(number(held.doc, "n") == 1);
  const Reply r = site.get("op=get", id);
  BOOST_TEST(number(r.doc.at("session").as_object(), "n") == 1, "the holder's write was lost: " << r.body);
}

BOOST_AUTO_TEST_CASE(a_php_session_reaches_the_standby_through_the_agent) {
  Site site("fpm_rep");
  SegmentGuard standby_guard("fpm_standby");
  const std::string key = site.dir() + "/backup.key";
  write_file(key, std::string(64, 'a') + "\n");
  BOOST_REQUIRE(::chmod(key.c_str(), 0600) == 0);
  const std::uint16_t backup_port = tools::free_loopback_port();
  Server backupd({BACKUPD_PATH, standby_guard.name(), "--key", key, "--listen",
                  "127.0.0.1:" + std::to_string(backup_port), "--size", "64M"},
                 site.dir() + "/backupd.out", SIGTERM);
  for (const auto end = Clock::now() + kFailAfter; !Store::exists(standby_guard.name());) {
    BOOST_REQUIRE_MESSAGE(backupd.running(), "the backup daemon exited: " << read_file(site.dir() + "/backupd.out"));
    BOOST_REQUIRE_MESSAGE(Clock::now() < end, "the backup daemon never created its standby");
    std::this_thread::sleep_for(5ms);
  }
  Server agent({AGENT_PATH, "run", std::string(site.store().name()), "--backup",
                "127.0.0.1:" + std::to_string(backup_port), "--key", key},
               site.dir() + "/agent.out", SIGTERM);
  const std::string id = new_session(site, "n", 7);
  BOOST_REQUIRE(site.get("op=incr", id).status == 200);
  BOOST_REQUIRE(site.get("op=set&k=other&v=9", id).status == 200);
  Store standby = Store::attach(standby_guard.name());
  for (const auto end = Clock::now() + kFailAfter;
       stored(standby, id, "n") != "i:8;" || stored(standby, id, "other") != "i:9;";) {
    BOOST_REQUIRE_MESSAGE(agent.running(), "the agent exited: " << read_file(site.dir() + "/agent.out"));
    BOOST_REQUIRE_MESSAGE(Clock::now() < end,
                          "the standby never got the session; agent: " << read_file(site.dir() + "/agent.out"));
    std::this_thread::sleep_for(5ms);
  }
  const std::optional<SessionSnapshot> copy = standby.peek(id);
  BOOST_REQUIRE(copy.has_value());
  BOOST_TEST(copy->version == site.store().peek(id)->version);
}
