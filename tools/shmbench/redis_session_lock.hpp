// RedisSessionLock: the usual session lock on Redis, done the way phpredis's
// session handler does it (redis_session.c, lock_acquire / lock_release), so
// shmbench can set shmsession's process lock beside what PHP sites run:
//   acquire  SET <lock key> <secret> NX PX <expire>, retried after sleeping
//            lock_wait_time whenever another client holds the key
//   release  EVALSHA of a compare-and-delete script (EVAL if the server does
//            not know the script), so only the holder's secret deletes the key
// The secret is "<hostname>|<pid>" as in phpredis: one per process.
//
// Thread safety: one RedisSessionLock per thread, like its RedisConnection.
// Cross-process safety: that is Redis's part; each process uses its own
// connection (redis_peer.hpp). A holder that dies keeps the key until PX.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "tools/shmbench/redis_peer.hpp"

namespace shmsession::bench {

// phpredis's defaults: the INI entries in redis.c and the session-locking
// section of its README (redis.session.lock_wait_time "Defaults to: 20000"
// microseconds, redis.session.lock_retries "Defaults to: 100"), in force
// since phpredis pull request #1908 (2021). Before it the defaults were
// 2000 us and 10 retries; lock_acquire still falls back to those when an
// INI value is 0.
inline constexpr std::chrono::microseconds kPhpredisLockWaitTime{20'000};
inline constexpr std::uint64_t kPhpredisLockRetries = 100;  // attempts = retries + 1
// redis.session.lock_expire 0 (default) means max_execution_time, which PHP
// sets to 30 s for web requests.
inline constexpr std::uint64_t kLockExpireMs = 30'000;

// phpredis's LOCK_RELEASE_LUA_STR, byte for byte, and its SHA1
// (LOCK_RELEASE_SHA_STR).
inline constexpr std::string_view kReleaseScript =
    "if redis.call(\"get\",KEYS[1]) == ARGV[1] then return redis.call(\"del\",KEYS[1]) else return 0 end";
inline constexpr std::string_view kReleaseScriptSha = "b70c2384248f88e6b75b9f89241a180f856ad852";

class RedisSessionLock {
 public:
  // The lock of `session` is the key "lock:<session>".
  RedisSessionLock(RedisConnection& redis, std::string_view session);

  // SCRIPT LOAD of the release script, as the first EVAL fallback of a
  // phpredis process leaves it. Throws std::runtime_error if the server
  // hashes it differently from phpredis.
  static void load_release_script(RedisConnection& redis);

  // One SET NX PX; true if this client now holds the lock.
  bool try_acquire();
  // Tries until granted, sleeping kPhpredisLockWaitTime after each refusal
  // (no retry limit: a benchmark must not proceed unlocked). If `waiting` is
  // given it is set to 1 after the first refusal and to 0 once granted, so a
  // holder can see that someone waits. Returns the number of attempts.
  std::uint64_t acquire(std::atomic<int>* waiting = nullptr);
  // Compare-and-delete. Throws std::runtime_error if the key did not hold
  // this client's secret (the lock had expired or was never held).
  void release();

 private:
  RedisConnection& redis_;
  std::string key_;
  std::string secret_;
  std::string expire_ms_;
};

}  // namespace shmsession::bench
