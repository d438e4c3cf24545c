// The `php` workload: PHP's session handlers as sites run them, nginx in
// front of a php-fpm pool, one pool per handler, all started by this run
// on 127.0.0.1 and stopped by pid: PHP's own `files`, phpredis's `redis`
// (with its locking on), php-memcached's `memcached` (its locking is on by
// default) and ours, `shmsession` (bindings/php).
//
// Thread safety: run_php runs on one thread; it starts the servers and the
// load (wrk, and threads of its own for the one-session phase).
#pragma once

#include <string_view>

#include "tools/shmbench/workload.hpp"

namespace shmsession::bench {

inline constexpr std::string_view kPhpDetails =
    "For each session handler, a php-fpm8.2 pool of 4 workers (static, opcache on,\n"
    "no php.ini but the handler's settings) behind nginx, both started by this run on\n"
    "127.0.0.1, serving one page: session_start(), read three keys (a profile, a\n"
    "5-line cart, preferences), add 1 to a fourth (n), write back. Handlers: files\n"
    "(PHP's default, flock, files in this run's temporary directory), redis (phpredis,\n"
    "redis.session.locking_enabled=1, its lock wait settings left at their defaults),\n"
    "memcached (php-memcached, its locking on by default), shmsession (this\n"
    "repository's extension, serialize_handler shmsession); redis-server and memcached\n"
    "are started by the run too. Two phases per handler:\n"
    "  many sessions:  wrk (Debian's) -t2 -c16 for 10 s (--quick: 1 s) after a 1 s\n"
    "                  warm-up, each wrk thread's requests spread over 256 sessions of\n"
    "                  its own: requests/s, latency p50/p99, failed requests\n"
    "  one session:    8 threads of this process send 100 requests each (--quick: 20)\n"
    "                  on ONE session, one at a time per thread: requests answered 200,\n"
    "                  requests refused (any other status), n at the end and lost\n"
    "                  updates: answered increments that n does not hold\n"
    "A handler whose extension or server is missing is reported n/a. A lost update or\n"
    "a refused request of shmsession fails the run (exit 1) after the report.\n"
    "The extension is the build's bindings/php/shmsession.so, or the file named by\n"
    "the environment variable SHMSESSION_PHP_EXTENSION.";

// Throws std::runtime_error if php-fpm8.2 or nginx cannot be run. Every
// process and segment it started is gone when it returns or throws.
BenchReport run_php(const RunOptions& options);

}  // namespace shmsession::bench
