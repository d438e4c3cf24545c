#include "tools/shmbench/redis_session_lock.hpp"

#include <hiredis/hiredis.h>
#include <limits.h>
#include <unistd.h>

#include <array>
#include <stdexcept>

namespace shmsession::bench {

namespace {

std::string lock_secret() {
  char host[HOST_NAME_MAX + 1] = {};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + "|" + std::to_string(::getpid());
}

}  // namespace

RedisSessionLock::RedisSessionLock(RedisConnection& redis, std::string_view session)
    : redis_(redis),
      key_("lock:" + std::string(session)),
      secret_(lock_secret()),
      expire_ms_(std::to_string(kLockExpireMs)) {}

void RedisSessionLock::load_release_script(RedisConnection& redis) {
  const RedisReplyPtr reply = redis.command({"SCRIPT", "LOAD", kReleaseScript});
  if (reply->type != REDIS_REPLY_STRING || std::string_view(reply->str, reply->len) != kReleaseScriptSha)
    throw std::runtime_error("redis: SCRIPT LOAD of the release script did not return phpredis's SHA1");
}

bool RedisSessionLock::try_acquire() {
  std::array<const char*, 6> argv{"SET", key_.data(), secret_.data(), "NX", "PX", expire_ms_.data()};
  std::array<std::size_t, 6> lengths{3, key_.size(), secret_.size(), 2, 2, expire_ms_.size()};
  const RedisReplyPtr reply = redis_.command(6, argv.data(), lengths.data());
  if (reply->type == REDIS_REPLY_STATUS) return true;  // +OK
  if (reply->type == REDIS_REPLY_NIL) return false;    // held by another client
  throw std::runtime_error("redis: SET NX PX answered neither OK nor nil");
}

std::uint64_t RedisSessionLock::acquire(std::atomic<int>* waiting) {
  for (std::uint64_t attempt = 1;; ++attempt) {
    if (try_acquire()) {
      if (waiting != nullptr) waiting->store(0, std::memory_order_release);
      return attempt;
    }
    if (waiting != nullptr) waiting->store(1, std::memory_order_release);
    ::usleep(static_cast<useconds_t>(kPhpredisLockWaitTime.count()));  // as phpredis does
  }
}

void RedisSessionLock::release() {
  std::array<const char*, 5> argv{"EVALSHA", kReleaseScriptSha.data(), "1", key_.data(), secret_.data()};
  std::array<std::size_t, 5> lengths{7, kReleaseScriptSha.size(), 1, key_.size(), secret_.size()};
  RedisReplyPtr reply;
  try {
    reply = redis_.command(5, argv.data(), lengths.data());
  } catch (const std::runtime_error& e) {
    if (std::string_view(e.what()).find("NOSCRIPT") == std::string_view::npos) throw;
    argv[0] = "EVAL";  // phpredis's fallback: the server then caches the script
    lengths[0] = 4;
    argv[1] = kReleaseScript.data();
    lengths[1] = kReleaseScript.size();
    reply = redis_.command(5, argv.data(), lengths.data());
  }
  if (reply->type != REDIS_REPLY_INTEGER || reply->integer != 1)
    throw std::runtime_error("redis: release of " + key_ + " found another secret (lock lost)");
}

}  // namespace shmsession::bench
