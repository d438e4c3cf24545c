// RedisSessions: the demo shop's sessions kept in Redis instead of a
// shmsession store, for `shmsession-appserver serve --sessions redis`, the
// peer the demo's summary sets beside the store. Each session is a hash,
// "session:<id>", with one field per attribute holding the same bytes a
// sync::Client writes (sync/attribute_codec.hpp), so the two shops differ
// only in where the session is kept, plus a field "#version" (no shop
// attribute name starts with '#').
//
// One request is the cycle a PHP site with phpredis runs on every request
// (redis_session.c, with session.use_strict_mode and session.lazy_write on,
// its defaults in php.ini-production):
//   live()    EXISTS session:<id>                 (strict mode's validate_sid)
//   open()    SET lock:<id> <secret> NX PX 30000, retried after sleeping 20 ms
//             up to 100 times (tools/shmbench/redis_session_lock.hpp), then
//             HGETALL session:<id>
//   commit()  HSET of the attributes put or edited + HINCRBY #version +
//             EXPIRE (one pipelined round trip)
//   the end   EXPIRE if nothing was committed (lazy_write's update_timestamp),
//             then the compare-and-delete unlock script (EVALSHA)
// Unlike phpredis, a commit writes only the attributes the request put or
// edited (fields of a hash), never the whole session.
//
// Thread safety: a RedisSessions and its handles belong to one thread (one
// connection). Cross-process safety: Redis's part, through the lock above;
// each worker process makes its own RedisSessions after fork(). A worker that
// dies holding a lock leaves it until its 30 s expiry, as with phpredis.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "shm/error.hpp"
#include "sync/attribute_codec.hpp"
#include "tools/shmbench/redis_peer.hpp"
#include "tools/shmbench/redis_session_lock.hpp"

namespace shmsession::appserver {

// The idle timeout a session gets (EXPIRE), as the shop's store gives it.
inline constexpr std::chrono::seconds kRedisSessionTimeout{1800};

class RedisSessions;

// One request's session: the lock held from open() until destruction.
class RedisSessionHandle {
 public:
  struct CommitOutcome {
    std::uint64_t version = 0;
  };

  RedisSessionHandle(RedisSessionHandle&& other) noexcept;
  RedisSessionHandle& operator=(RedisSessionHandle&&) = delete;
  // Refreshes the expiry if nothing was committed, then unlocks; a failure
  // (the connection lost, the lock expired) is logged, not thrown.
  ~RedisSessionHandle();

  const std::string& id() const noexcept { return id_; }
  std::uint64_t version() const noexcept { return version_; }
  bool contains(std::string_view name) const { return attributes_.contains(name); }

  // The attribute decoded (once per request). Throws: Error(NotFound) if the
  // session has no such attribute, Error(InvalidArgument/Corrupt) as
  // sync::decode_attribute.
  template <class T>
  const T* get(std::string_view name) {
    Attribute& a = existing(name);
    if (!a.object) a.object = std::make_shared<T>(sync::decode_attribute<T>(a.bytes));
    return static_cast<const T*>(a.object.get());
  }
  // The same, and written back by the next commit.
  template <class T>
  T* edit(std::string_view name) {
    get<T>(name);
    Attribute& a = existing(name);
    a.encode = &encode<T>;
    a.dirty = true;
    return static_cast<T*>(a.object.get());
  }
  template <class T>
  void put(std::string_view name, T value) {
    Attribute& a = attributes_[std::string(name)];
    a.object = std::make_shared<T>(std::move(value));
    a.encode = &encode<T>;
    a.dirty = true;
  }

  // Writes the put and edited attributes and bumps the version, in one
  // round trip. Throws: std::runtime_error from the connection.
  CommitOutcome commit();

 private:
  friend class RedisSessions;
  struct Attribute {
    std::string bytes;  // as read; empty once put
    std::shared_ptr<void> object;
    std::string (*encode)(const void*) = nullptr;
    bool dirty = false;
  };
  template <class T>
  static std::string encode(const void* object) {
    return sync::encode_attribute(*static_cast<const T*>(object));
  }
  RedisSessionHandle(RedisSessions& owner, std::string id, bench::RedisSessionLock lock)
      : owner_(&owner), id_(std::move(id)), lock_(std::move(lock)) {}
  Attribute& existing(std::string_view name);

  RedisSessions* owner_;
  std::string id_;
  std::optional<bench::RedisSessionLock> lock_;  // empty once moved from
  std::map<std::string, Attribute, std::less<>> attributes_;
  std::uint64_t version_ = 0;
  bool committed_ = false;
};

class RedisSessions {
 public:
  using Handle = RedisSessionHandle;

  // Connects to the redis-server on 127.0.0.1:port and loads the unlock
  // script. Throws: std::runtime_error if it cannot.
  explicit RedisSessions(int port);

  // Whether the session exists (EXISTS).
  bool live(const std::string& id);
  // Takes the session's lock and reads it (an absent session reads empty).
  // Throws: Error(LockTimeout) if another client kept the lock through
  // phpredis's retries (~2 s); std::runtime_error from the connection.
  Handle open(const std::string& id);
  std::uint64_t version(Handle& s) { return s.version(); }

 private:
  friend class RedisSessionHandle;
  // The connection, made again if the last command on it failed (hiredis
  // leaves a failed context unusable).
  bench::RedisConnection& connection();
  void mark_failed() noexcept { failed_ = true; }

  int port_;
  std::optional<bench::RedisConnection> redis_;
  bool failed_ = false;
};

}  // namespace shmsession::appserver
