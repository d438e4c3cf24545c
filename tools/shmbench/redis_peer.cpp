#include "tools/shmbench/redis_peer.hpp"

#include <hiredis/hiredis.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "tools/shmbench/peer_process.hpp"

namespace shmsession::bench {

namespace {

bool answers_ping(int port) {
  const timeval timeout{0, 200'000};
  redisContext* context = redisConnectWithTimeout("127.0.0.1", port, timeout);
  bool ok = false;
  if (context != nullptr && context->err == 0) {
    auto* reply = static_cast<redisReply*>(redisCommand(context, "PING"));
    ok = reply != nullptr && reply->type == REDIS_REPLY_STATUS && std::string_view(reply->str) == "PONG";
    if (reply != nullptr) freeReplyObject(reply);
  }
  if (context != nullptr) redisFree(context);
  return ok;
}

}  // namespace

std::optional<RedisServer> RedisServer::start(const std::string& program, std::string* why,
                                              const std::vector<std::string>& extra_args, bool die_with_parent) {
  // The standard arguments: no persistence, loopback only, in the foreground.
  const auto args = [&](int port) {
    std::vector<std::string> args = {
        "--port", std::to_string(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
        "no",     "--daemonize",        "no",     "--dir",     "/tmp"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    return args;
  };
  std::optional<PeerProcess> process =
      PeerProcess::launch({program, args, &answers_ping, "answer PING", die_with_parent}, why);
  if (!process) return std::nullopt;
  return RedisServer(std::move(*process));
}

void RedisReplyDeleter::operator()(redisReply* reply) const noexcept {
  if (reply != nullptr) freeReplyObject(reply);
}

RedisConnection RedisConnection::connect(int port, std::chrono::milliseconds timeout) {
  const auto ms = timeout.count();
  const timeval limit{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
  redisContext* context = redisConnectWithTimeout("127.0.0.1", port, limit);
  if (context == nullptr) throw std::runtime_error("redis: cannot allocate a connection");
  if (context->err != 0) {
    const std::string why = context->errstr;
    redisFree(context);
    throw std::runtime_error("redis: connecting to 127.0.0.1:" + std::to_string(port) + ": " + why);
  }
  return RedisConnection(context);
}

RedisConnection::RedisConnection(RedisConnection&& other) noexcept : context_(other.context_) {
  other.context_ = nullptr;
}

RedisConnection::~RedisConnection() {
  if (context_ != nullptr) redisFree(context_);
}

RedisReplyPtr RedisConnection::checked(void* raw) {
  RedisReplyPtr reply(static_cast<redisReply*>(raw));
  if (!reply) throw std::runtime_error(std::string("redis: ") + context_->errstr);
  if (reply->type == REDIS_REPLY_ERROR) throw std::runtime_error(std::string("redis: ") + reply->str);
  return reply;
}

RedisReplyPtr RedisConnection::command(int count, const char** argv, const std::size_t* lengths) {
  return checked(redisCommandArgv(context_, count, argv, lengths));
}

RedisReplyPtr RedisConnection::command(const std::vector<std::string_view>& args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  for (auto arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  return command(static_cast<int>(args.size()), argv.data(), lengths.data());
}

void RedisConnection::append(int count, const char** argv, const std::size_t* lengths) {
  if (redisAppendCommandArgv(context_, count, argv, lengths) != REDIS_OK)
    throw std::runtime_error(std::string("redis: ") + context_->errstr);
}

RedisReplyPtr RedisConnection::next_reply() {
  void* raw = nullptr;
  if (redisGetReply(context_, &raw) != REDIS_OK) raw = nullptr;
  return checked(raw);
}

std::string RedisConnection::info_field(std::string_view section, std::string_view field) {
  const RedisReplyPtr reply = command({"INFO", section});
  if (reply->type != REDIS_REPLY_STRING) throw std::runtime_error("redis: INFO did not return text");
  const std::string_view text(reply->str, reply->len);
  const std::string key = std::string(field) + ":";
  for (std::size_t at = 0; at < text.size();) {
    std::size_t end = text.find("\r\n", at);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(at, end - at);
    if (line.starts_with(key)) return std::string(line.substr(key.size()));
    at = end + 2;
  }
  throw std::runtime_error("redis: INFO " + std::string(section) + " has no " + std::string(field));
}

std::uint64_t RedisConnection::info_integer(std::string_view section, std::string_view field) {
  return std::stoull(info_field(section, field));
}

}  // namespace shmsession::bench
