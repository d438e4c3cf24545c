#include "tools/shmbench/redis_replica.hpp"

#include <hiredis/hiredis.h>

#include <map>
#include <stdexcept>
#include <thread>

namespace shmsession::bench {

namespace {

constexpr auto kSyncPause = std::chrono::milliseconds{2};

std::map<std::string, std::string, std::less<>> hash_of(RedisConnection& server, const std::string& key) {
  const RedisReplyPtr reply = server.command({"HGETALL", key});
  if (reply->type != REDIS_REPLY_ARRAY) throw std::runtime_error("redis: HGETALL " + key + " did not return a hash");
  std::map<std::string, std::string, std::less<>> hash;
  for (std::size_t i = 0; i + 1 < reply->elements; i += 2) {
    const redisReply* field = reply->element[i];
    const redisReply* value = reply->element[i + 1];
    hash.emplace(std::string(field->str, field->len), std::string(value->str, value->len));
  }
  return hash;
}

std::uint64_t dbsize(RedisConnection& server) {
  const RedisReplyPtr reply = server.command({"DBSIZE"});
  if (reply->type != REDIS_REPLY_INTEGER) throw std::runtime_error("redis: DBSIZE did not answer an integer");
  return static_cast<std::uint64_t>(reply->integer);
}

}  // namespace

RedisServer start_redis_replica(const std::string& program, RedisConnection& primary, int primary_port) {
  // Diskless on both ends: the primary streams its snapshot at once (the
  // default waits 5 s for more replicas) and the replica loads it from the
  // socket, so neither writes an RDB file.
  primary.command({"CONFIG", "SET", "repl-diskless-sync", "yes"});
  primary.command({"CONFIG", "SET", "repl-diskless-sync-delay", "0"});
  std::string why;
  std::optional<RedisServer> replica = RedisServer::start(
      program, &why, {"--replicaof", "127.0.0.1", std::to_string(primary_port), "--repl-diskless-load", "on-empty-db"});
  if (!replica) throw std::runtime_error("redis replica: " + why);
  return std::move(*replica);
}

std::chrono::nanoseconds wait_replica_synced(RedisConnection& primary, RedisConnection& replica,
                                             std::chrono::seconds timeout) {
  const auto started = std::chrono::steady_clock::now();
  for (;;) {
    const std::string link = replica.info_field("replication", "master_link_status");
    const std::uint64_t theirs = link == "up" ? replica.info_integer("replication", "slave_repl_offset") : 0;
    const std::uint64_t ours = replication_offset(primary);
    if (link == "up" && theirs == ours) return std::chrono::steady_clock::now() - started;
    if (std::chrono::steady_clock::now() - started > timeout)
      throw std::runtime_error("redis replica not in sync within " + std::to_string(timeout.count()) +
                               " s: master_link_status " + link + ", offset " + std::to_string(theirs) + " of " +
                               std::to_string(ours));
    std::this_thread::sleep_for(kSyncPause);
  }
}

std::uint64_t replication_offset(RedisConnection& primary) {
  return primary.info_integer("replication", "master_repl_offset");
}

std::uint64_t hset_calls(RedisConnection& server) {
  const RedisReplyPtr reply = server.command({"INFO", "commandstats"});
  if (reply->type != REDIS_REPLY_STRING) throw std::runtime_error("redis: INFO did not return text");
  const std::string_view text(reply->str, reply->len);
  constexpr std::string_view kKey = "cmdstat_hset:calls=";
  const std::size_t at = text.find(kKey);
  if (at == std::string_view::npos) return 0;
  return std::stoull(std::string(text.substr(at + kKey.size(), 20)));
}

ReplicaCheck compare_replica(RedisConnection& primary, RedisConnection& replica, const std::vector<std::string>& keys) {
  ReplicaCheck check;
  const std::uint64_t ours = dbsize(primary);
  const std::uint64_t theirs = dbsize(replica);
  if (ours != theirs)
    check.difference = "the replica holds " + std::to_string(theirs) + " keys, the primary " + std::to_string(ours);
  std::uint64_t payload = 0;
  for (const std::string& key : keys) {
    const auto hash = hash_of(primary, key);
    for (const auto& [field, value] : hash) payload += field.size() + value.size();
    if (check.difference.empty() && hash_of(replica, key) != hash) check.difference = key + " differs on the replica";
  }
  if (!keys.empty()) check.payload_per_key = static_cast<double>(payload) / static_cast<double>(keys.size());
  return check;
}

}  // namespace shmsession::bench
