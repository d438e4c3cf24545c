#include "tools/shmbench/workload_php.hpp"

#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/json/parse.hpp>

#include "tools/common/http_get.hpp"
#include "tools/common/php_site.hpp"
#include "tools/common/temp_dir.hpp"
#include "tools/shmbench/memcached_peer.hpp"
#include "tools/shmbench/peer_process.hpp"
#include "tools/shmbench/redis_peer.hpp"
#include "tools/shmbench/scratch_store.hpp"

namespace shmsession::bench {

// The helpers in a namespace of their own: the other workloads, compiled in
// the same unity batch, have helpers of the same names.
namespace php_workload {
namespace {

constexpr std::string_view kName = "php";
constexpr int kPoolWorkers = 4;
constexpr int kOneSessionThreads = 8;

// The page every pool serves. ?op=read: n, read without a lock;
// ?op=check: 200 "ok" once a session starts; otherwise the visit.
constexpr const char* kPage = R"php(<?php
$warnings = [];
set_error_handler(function (int $no, string $message) use (&$warnings) { $warnings[] = $message; return true; });
function refuse(array $warnings): void {
    http_response_code(503);
    echo 'session_start() failed: ', implode(' | ', $warnings), "\n";
}
$op = $_GET['op'] ?? 'visit';
if ($op === 'read' || $op === 'check') {
    if (!session_start(['read_and_close' => true])) { refuse($warnings); return; }
    echo $op === 'read' ? (int)($_SESSION['n'] ?? 0) : 'ok', "\n";
    return;
}
if (!session_start()) { refuse($warnings); return; }
if (!isset($_SESSION['profile'])) {
    $_SESSION['profile'] = ['user_id' => 4217, 'name' => 'Ada Example', 'email' => 'ada@example.org',
                            'roles' => ['customer'], 'locale' => 'en_GB'];
    $cart = [];
    for ($k = 1; $k <= 5; $k++) $cart[] = ['sku' => sprintf('SKU-%04d', $k), 'qty' => $k, 'price_cents' => 1999 + $k];
    $_SESSION['cart'] = $cart;
    $_SESSION['prefs'] = ['currency' => 'EUR', 'theme' => 'dark', 'newsletter' => false];
}
$profile = $_SESSION['profile'];
$cart = $_SESSION['cart'];
$prefs = $_SESSION['prefs'];
$items = 0;
foreach ($cart as $line) $items += $line['qty'];
$_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
echo $profile['name'], ' ', $items, ' ', $prefs['currency'], ' ', $_SESSION['n'], "\n";
)php";

// wrk's script: each thread spreads its requests over 256 sessions of its
// own (ids PHP accepts as given: session.use_strict_mode is off), and the
// summary is one JSON line.
constexpr const char* kWrkScript = R"lua(
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
local counter = 0
function request()
  counter = counter + 1
  local id = string.format("w%03d%028d", tid, counter % 256)
  return wrk.format("GET", "/bench.php", {["Cookie"] = "PHPSESSID=" .. id})
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"duration_us":%d,"failures":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout + e.status,
    latency:percentile(50), latency:percentile(99)))
end
)lua";

struct Handler {
  std::string name;
  std::string missing;                  // why it cannot run here; empty if it can
  std::vector<std::string> extensions;  // -d extension=... (after opcache)
  std::vector<std::string> pool_lines;  // php_value[...] = ... of the pool
};

using tools::write_file;

bool accepts(int port) { return tools::loopback_accepts(static_cast<std::uint16_t>(port)); }

// php-fpm with `handler`'s pool on a free port.
PeerProcess start_fpm(const std::string& dir, const Handler& handler) {
  const std::string conf = dir + "/fpm-" + handler.name + ".conf";
  const auto args = [&](int port) {
    write_file(conf, tools::fpm_conf(
                         {dir, handler.name, "127.0.0.1:" + std::to_string(port), kPoolWorkers, handler.pool_lines}));
    std::vector<std::string> a = {"-n", "-d", "zend_extension=opcache.so"};
    for (const std::string& e : handler.extensions) a.insert(a.end(), {"-d", "extension=" + e});
    a.insert(a.end(), {"-y", conf, "-F", "-R"});
    return a;
  };
  std::string why;
  std::optional<PeerProcess> fpm =
      PeerProcess::launch({"php-fpm8.2", args, &accepts, "accept FastCGI connections"}, &why);
  if (!fpm) throw std::runtime_error("php-fpm8.2 cannot be run (php8.2-fpm): " + why);
  return std::move(*fpm);
}

// nginx on a free port, passing /bench.php to php-fpm on fpm_port.
PeerProcess start_nginx(const std::string& dir, const std::string& handler, int fpm_port) {
  const std::string conf = dir + "/nginx-" + handler + ".conf";
  const auto args = [=](int port) {
    write_file(conf,
               tools::nginx_conf(
                   {dir, handler, port, dir + "/www", "/bench.php", "127.0.0.1:" + std::to_string(fpm_port), {}}));
    return std::vector<std::string>{"-p", dir, "-e", dir + "/nginx-" + handler + ".log", "-c", conf};
  };
  std::string why;
  std::optional<PeerProcess> nginx = PeerProcess::launch({"nginx", args, &accepts, "accept HTTP connections"}, &why);
  if (!nginx) throw std::runtime_error("nginx cannot be run (nginx): " + why);
  return std::move(*nginx);
}

// Runs wrk for `seconds` against the page; fills the row's load figures.
// Returns false (and why) if wrk cannot run or prints no summary.
bool run_wrk(const std::string& dir, int port, int seconds, PhpHandlerRow* row, std::string* why) {
  const std::string command = "wrk -t2 -c16 -d" + std::to_string(seconds) + "s -s " + dir + "/bench.lua " +
                              "http://127.0.0.1:" + std::to_string(port) + "/bench.php 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    *why = "popen failed";
    return false;
  }
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) out.append(buf, n);
  const int status = ::pclose(pipe);
  const std::size_t at = out.rfind("{\"requests\"");
  if (status != 0 || at == std::string::npos) {
    *why = "wrk (Debian's wrk) gave no summary: " + out.substr(0, 300);
    return false;
  }
  if (row == nullptr) return true;
  const boost::json::object doc = boost::json::parse(out.substr(at, out.find('\n', at) - at)).as_object();
  row->requests = static_cast<std::uint64_t>(doc.at("requests").to_number<std::int64_t>());
  const double duration_s = static_cast<double>(doc.at("duration_us").to_number<std::int64_t>()) / 1e6;
  row->requests_per_s = duration_s > 0 ? static_cast<double>(row->requests) / duration_s : 0;
  row->p50_us = doc.at("p50_us").to_number<double>();
  row->p99_us = doc.at("p99_us").to_number<double>();
  row->load_failures = static_cast<std::uint64_t>(doc.at("failures").to_number<std::int64_t>());
  row->load_measured = true;
  return true;
}

// 8 threads, `each` requests each, on one session; then reads n.
void one_session(int nginx_port, const std::string& handler, int each, PhpHandlerRow& row) {
  const auto port = static_cast<std::uint16_t>(nginx_port);
  const std::string cookie =
      "PHPSESSID=one" + handler + std::string(29 - std::min<std::size_t>(handler.size(), 28), '0');
  const tools::HttpReply first = tools::http_get(port, "/bench.php", cookie);
  if (first.status != 200) throw std::runtime_error(handler + ": the one session's first request: " + first.body);
  std::atomic<std::uint64_t> answered{0}, refused{0};
  std::vector<std::thread> threads;
  threads.reserve(kOneSessionThreads);
  for (int t = 0; t < kOneSessionThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < each; ++i) {
        try {
          if (tools::http_get(port, "/bench.php", cookie).status == 200)
            ++answered;
          else
            ++refused;
        } catch (const std::exception&) {
          ++refused;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const tools::HttpReply last = tools::http_get(port, "/bench.php?op=read", cookie);
  if (last.status != 200) throw std::runtime_error(handler + ": reading the one session: " + last.body);
  row.one_sent = static_cast<std::uint64_t>(kOneSessionThreads) * static_cast<std::uint64_t>(each);
  row.one_answered = answered;
  row.one_refused = refused;
  row.one_final_n = std::stoll(last.body);
  const std::int64_t expected = 1 + static_cast<std::int64_t>(row.one_answered);  // the first request's too
  row.one_lost = row.one_final_n < expected ? static_cast<std::uint64_t>(expected - row.one_final_n) : 0;
}

std::string extension_path() {
  if (const char* env = std::getenv("SHMSESSION_PHP_EXTENSION"); env != nullptr && *env != '\0') return env;
#ifdef SHMBENCH_PHP_EXTENSION
  return SHMBENCH_PHP_EXTENSION;
#else
  return {};
#endif
}

}  // namespace
}  // namespace php_workload

BenchReport run_php(const RunOptions& options) {
  using namespace php_workload;
  BenchReport report = start_report(kName, options);
  report.description = "PHP sessions behind nginx + php-fpm: a page reading 3 keys and changing 1, per handler";
  const int seconds = options.quick ? 1 : 10;
  const int each = options.quick ? 20 : 100;
  report.parameters["pool_workers"] = kPoolWorkers;
  report.parameters["wrk"] = "-t2 -c16, 256 sessions per thread";
  report.parameters["load_seconds"] = seconds;
  report.parameters["one_session_requests"] = kOneSessionThreads * each;
  report.parameters["one_session_threads"] = kOneSessionThreads;

  tools::TempDir dir("shmbench_php");
  std::filesystem::create_directories(dir.path() + "/www");
  std::filesystem::create_directories(dir.path() + "/files");
  write_file(dir.path() + "/www/bench.php", kPage);
  write_file(dir.path() + "/bench.lua", kWrkScript);

  std::string why;
  std::optional<RedisServer> redis = RedisServer::start(options.redis_program, &why);
  const std::string redis_why = why;
  std::optional<MemcachedServer> memcached = MemcachedServer::start(options.memcached_program, &why);
  const std::string memcached_why = why;
  ScratchStore store("php", std::uint64_t{256} << 20);
  const std::string extension = extension_path();

  std::vector<Handler> handlers;
  handlers.push_back(
      {"shmsession",
       {},
       {extension},
       {"php_value[session.save_handler] = shmsession", "php_value[session.serialize_handler] = shmsession",
        "php_value[session.save_path] = " + store.name()}});
  if (!std::filesystem::exists(extension))
    handlers.back().missing = "the extension is not built here (" + (extension.empty() ? "no path" : extension) + ")";
  handlers.push_back(
      {"files",
       {},
       {},
       {"php_value[session.save_handler] = files", "php_value[session.save_path] = " + dir.path() + "/files"}});
  handlers.push_back({"redis",
                      redis ? "" : "redis-server: " + redis_why,
                      {"igbinary.so", "redis.so"},
                      {"php_value[session.save_handler] = redis",
                       "php_value[session.save_path] = tcp://127.0.0.1:" + std::to_string(redis ? redis->port() : 0),
                       "php_value[redis.session.locking_enabled] = 1"}});
  handlers.push_back(
      {"memcached",
       memcached ? "" : "memcached: " + memcached_why,
       {"igbinary.so", "msgpack.so", "memcached.so"},
       {"php_value[session.save_handler] = memcached",
        "php_value[session.save_path] = 127.0.0.1:" + std::to_string(memcached ? memcached->port() : 0)}});
  for (Handler& h : handlers) h.pool_lines.emplace_back("php_value[session.gc_probability] = 0");

  for (const Handler& handler : handlers) {
    PhpHandlerRow row;
    row.system = handler.name;
    if (!handler.missing.empty()) {
      row.why_not = handler.missing;
      report.php.push_back(row);
      continue;
    }
    progress(options, kName, handler.name + ": starting php-fpm and nginx");
    PeerProcess fpm = start_fpm(dir.path(), handler);
    PeerProcess nginx = start_nginx(dir.path(), handler.name, fpm.port());
    const tools::HttpReply check = tools::http_get(static_cast<std::uint16_t>(nginx.port()), "/bench.php?op=check",
                                                   "PHPSESSID=checkcheckcheckcheckcheckcheck00");
    if (check.status != 200) {
      row.why_not = "its pool does not start sessions: " + check.body.substr(0, 300);
      report.php.push_back(row);
      continue;
    }
    row.measured = true;
    progress(options, kName, handler.name + ": many sessions (wrk)");
    std::string wrk_why;
    if (run_wrk(dir.path(), nginx.port(), 1, nullptr, &wrk_why))  // warm-up: every session created
      run_wrk(dir.path(), nginx.port(), seconds, &row, &wrk_why);
    if (!row.load_measured) report.notes.push_back(handler.name + ": " + wrk_why);
    progress(options, kName, handler.name + ": one session, 8 requests at a time");
    one_session(nginx.port(), handler.name, each, row);
    if (handler.name == "shmsession" && (row.one_lost > 0 || row.one_refused > 0))
      report.failures.push_back("shmsession lost " + std::to_string(row.one_lost) + " updates and refused " +
                                std::to_string(row.one_refused) + " requests on one session");
    report.php.push_back(row);
    nginx.stop();
    fpm.stop();
  }
  report.peer = "files, redis (phpredis), memcached (php-memcached)";
  return report;
}

}  // namespace shmsession::bench
