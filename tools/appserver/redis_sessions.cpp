#include "tools/appserver/redis_sessions.hpp"

#include <hiredis/hiredis.h>
#include <unistd.h>

#include <stdexcept>
#include <vector>

#include "tools/appserver/server_log.hpp"

namespace shmsession::appserver {
namespace {

constexpr std::string_view kVersionField = "#version";

std::string hash_key(std::string_view id) { return "session:" + std::string(id); }

}  // namespace

RedisSessionHandle::RedisSessionHandle(RedisSessionHandle&& other) noexcept
    : owner_(other.owner_),
      id_(std::move(other.id_)),
      lock_(std::move(other.lock_)),
      attributes_(std::move(other.attributes_)),
      version_(other.version_),
      committed_(other.committed_) {
  other.lock_.reset();
}

RedisSessionHandle::~RedisSessionHandle() {
  if (!lock_) return;
  try {
    if (!committed_ && !attributes_.empty()) {
      const std::string key = hash_key(id_), seconds = std::to_string(kRedisSessionTimeout.count());
      owner_->connection().command({"EXPIRE", key, seconds});
    }
    lock_->release();
  } catch (const std::exception& e) {
    owner_->mark_failed();
    log_line("redis sessions: end of a request on " + id_ + ": " + e.what());
  }
}

RedisSessionHandle::Attribute& RedisSessionHandle::existing(std::string_view name) {
  auto it = attributes_.find(name);
  if (it == attributes_.end())
    throw Error(Errc::NotFound, "session " + id_ + " has no attribute '" + std::string(name) + "'");
  return it->second;
}

RedisSessionHandle::CommitOutcome RedisSessionHandle::commit() {
  const std::string key = hash_key(id_), seconds = std::to_string(kRedisSessionTimeout.count());
  std::vector<std::string> values;
  std::vector<std::string_view> hset{"HSET", key};
  for (auto& [name, a] : attributes_)
    if (a.dirty) values.push_back(a.encode(a.object.get()));
  std::size_t v = 0;
  for (auto& [name, a] : attributes_)
    if (a.dirty) {
      hset.push_back(name);
      hset.push_back(values[v++]);
    }
  try {
    bench::RedisConnection& redis = owner_->connection();
    auto append = [&](const std::vector<std::string_view>& args) {
      std::vector<const char*> argv;
      std::vector<std::size_t> lengths;
      for (std::string_view arg : args) {
        argv.push_back(arg.data());
        lengths.push_back(arg.size());
      }
      redis.append(static_cast<int>(args.size()), argv.data(), lengths.data());
    };
    const bool writes = hset.size() > 2;
    if (writes) append(hset);
    append({"HINCRBY", key, kVersionField, "1"});
    append({"EXPIRE", key, seconds});
    if (writes) redis.next_reply();
    const bench::RedisReplyPtr version = redis.next_reply();
    redis.next_reply();
    if (version->type != REDIS_REPLY_INTEGER) throw std::runtime_error("redis: HINCRBY answered no integer");
    version_ = static_cast<std::uint64_t>(version->integer);
  } catch (const std::exception&) {
    owner_->mark_failed();
    throw;
  }
  for (auto& [name, a] : attributes_) {
    if (!a.dirty) continue;
    a.dirty = false;
    a.bytes.clear();  // the object is the value now
  }
  committed_ = true;
  return CommitOutcome{version_};
}

RedisSessions::RedisSessions(int port) : port_(port) { connection(); }

bench::RedisConnection& RedisSessions::connection() {
  if (failed_ || !redis_) {
    redis_.reset();
    redis_.emplace(bench::RedisConnection::connect(port_));
    bench::RedisSessionLock::load_release_script(*redis_);
    failed_ = false;
  }
  return *redis_;
}

bool RedisSessions::live(const std::string& id) {
  try {
    const bench::RedisReplyPtr reply = connection().command({"EXISTS", hash_key(id)});
    return reply->type == REDIS_REPLY_INTEGER && reply->integer == 1;
  } catch (const std::exception&) {
    mark_failed();
    throw;
  }
}

RedisSessionHandle RedisSessions::open(const std::string& id) {
  try {
    bench::RedisSessionLock lock(connection(), id);
    // phpredis's lock_acquire: lock_retries + 1 attempts, lock_wait_time apart.
    for (std::uint64_t attempt = 0; !lock.try_acquire(); ++attempt) {
      if (attempt == bench::kPhpredisLockRetries)
        throw Error(Errc::LockTimeout, "session " + id + " stayed locked through phpredis's retries");
      ::usleep(static_cast<useconds_t>(bench::kPhpredisLockWaitTime.count()));
    }
    RedisSessionHandle s(*this, id, std::move(lock));
    const bench::RedisReplyPtr reply = connection().command({"HGETALL", hash_key(id)});
    if (reply->type != REDIS_REPLY_ARRAY) throw std::runtime_error("redis: HGETALL answered no array");
    for (std::size_t i = 0; i + 1 < reply->elements; i += 2) {
      const redisReply* field = reply->element[i];
      const redisReply* value = reply->element[i + 1];
      const std::string_view name(field->str, field->len);
      if (name == kVersionField)
        s.version_ = std::stoull(std::string(value->str, value->len));
      else
        s.attributes_[std::string(name)].bytes.assign(value->str, value->len);
    }
    return s;
  } catch (const Error&) {
    throw;
  } catch (const std::exception&) {
    mark_failed();
    throw;
  }
}

}  // namespace shmsession::appserver
