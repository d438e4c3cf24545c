#include "sync/hosts/redis_cluster.hpp"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <sys/time.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <map>
#include <optional>
#include <thread>

#include "shm/error.hpp"

namespace shmsession::hosts {

// Named (not anonymous): the Impls' fields have these types.
namespace link_detail {
struct ContextDeleter {
  void operator()(redisContext* c) const noexcept { redisFree(c); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;
}  // namespace link_detail
using link_detail::ContextPtr;

namespace {

struct ReplyDeleter {
  void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

RedisReply copy_reply(const redisReply& r) {
  RedisReply out;
  switch (r.type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      out.type = r.type == REDIS_REPLY_STRING   ? RedisReply::Type::String
                 : r.type == REDIS_REPLY_STATUS ? RedisReply::Type::Status
                                                : RedisReply::Type::Error;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::Integer;
      out.integer = r.integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::Array;
      out.elements.reserve(r.elements);
      for (std::size_t i = 0; i < r.elements; ++i) out.elements.push_back(copy_reply(*r.element[i]));
      break;
    default:
      out.type = RedisReply::Type::Nil;
  }
  return out;
}

// A node that did not answer (connection refused, reset, timed out).
struct NodeFailed {
  std::string why;
};

// "host:port" of a MOVED/ASK error: "MOVED 3999 127.0.0.1:6381".
std::optional<std::pair<std::uint16_t, RedisAddress>> redirection(const std::string& error) {
  const std::size_t first = error.find(' ');
  if (first == std::string::npos) return std::nullopt;
  const std::size_t second = error.find(' ', first + 1);
  if (second == std::string::npos) return std::nullopt;
  const std::string_view slot_text(error.data() + first + 1, second - first - 1);
  const std::string_view address(error.data() + second + 1, error.size() - second - 1);
  const std::size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  unsigned slot = 0;
  unsigned port = 0;
  if (std::from_chars(slot_text.data(), slot_text.data() + slot_text.size(), slot).ec != std::errc{} ||
      slot >= kRedisSlots)
    return std::nullopt;
  const std::string_view port_text = address.substr(colon + 1);
  if (std::from_chars(port_text.data(), port_text.data() + port_text.size(), port).ec != std::errc{} || port == 0 ||
      port > 65535)
    return std::nullopt;
  return std::make_pair(static_cast<std::uint16_t>(slot),
                        RedisAddress{std::string(address.substr(0, colon)), static_cast<std::uint16_t>(port)});
}

bool retry_later(std::string_view code) {
  return code == "TRYAGAIN" || code == "CLUSTERDOWN" || code == "LOADING" || code == "MASTERDOWN";
}

}  // namespace

std::vector<RedisAddress> parse_redis_addresses(std::string_view text) {
  std::vector<RedisAddress> out;
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    const std::string_view part = text.substr(0, comma);
    const std::size_t colon = part.rfind(':');
    unsigned port = 0;
    if (colon == std::string_view::npos || colon == 0 ||
        std::from_chars(part.data() + colon + 1, part.data() + part.size(), port).ec != std::errc{} || port == 0 ||
        port > 65535 || part.data() + colon + 1 == part.data() + part.size())
      throw Error(Errc::InvalidArgument,
                  "'" + std::string(part) + "' is not a Redis address (HOST:PORT, port 1 to 65535)");
    std::string_view host = part.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);  // IPv6
    out.push_back({std::string(host), static_cast<std::uint16_t>(port)});
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
    if (text.empty()) throw Error(Errc::InvalidArgument, "a Redis address list ends with ','");
  }
  if (out.empty()) throw Error(Errc::InvalidArgument, "no Redis address given (HOST:PORT[,HOST:PORT...])");
  return out;
}

std::string_view RedisReply::error_code() const noexcept {
  if (type != Type::Error) return {};
  const std::string_view s(str);
  return s.substr(0, s.find(' '));
}

std::uint16_t redis_key_slot(std::string_view key) noexcept {
  const std::size_t open = key.find('{');
  if (open != std::string_view::npos) {
    const std::size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
  }
  std::uint16_t crc = 0;  // CRC16-CCITT (XMODEM): polynomial 0x1021, initial 0
  for (const char c : key) {
    crc = static_cast<std::uint16_t>(crc ^ (static_cast<std::uint16_t>(static_cast<unsigned char>(c)) << 8));
    for (int bit = 0; bit < 8; ++bit)
      crc =
          (crc & 0x8000) != 0 ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021) : static_cast<std::uint16_t>(crc << 1);
  }
  return static_cast<std::uint16_t>(crc % kRedisSlots);
}

namespace link_detail {

// The connections to the nodes, one each, made when first needed and
// dropped when they fail.
struct NodeLinks {
  RedisClusterOptions options;
  std::map<RedisAddress, ContextPtr> connections;
  std::uint64_t commands = 0;
  redisContext& connect(const RedisAddress& address) {
    auto it = connections.find(address);
    if (it != connections.end()) return *it->second;
    ContextPtr c(redisConnectWithTimeout(address.host.c_str(), address.port, to_timeval(options.connect_timeout)));
    if (!c) throw NodeFailed{"cannot allocate a connection to " + address.text()};
    if (c->err != 0) throw NodeFailed{"cannot connect to " + address.text() + ": " + c->errstr};
    if (redisSetTimeout(c.get(), to_timeval(options.command_timeout)) != REDIS_OK)
      throw NodeFailed{"cannot set the timeout of " + address.text()};
    if (!options.password.empty()) {
      const char* argv[] = {"AUTH", options.password.c_str()};
      const std::size_t lengths[] = {4, options.password.size()};
      ReplyPtr r(static_cast<redisReply*>(redisCommandArgv(c.get(), 2, argv, lengths)));
      if (!r) throw NodeFailed{"AUTH on " + address.text() + ": " + c->errstr};
      if (r->type == REDIS_REPLY_ERROR)
        throw Error(Errc::InvalidArgument,
                    "Redis at " + address.text() + " refused AUTH: " + std::string(r->str, r->len));
    }
    return *connections.emplace(address, std::move(c)).first->second;
  }

  void drop(const RedisAddress& address) { connections.erase(address); }

  // Sends `args` to `address`, after ASKING when `asking`. Throws NodeFailed.
  RedisReply send(const RedisAddress& address, const std::vector<std::string>& args, bool asking) {
    redisContext& c = connect(address);
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    argv.reserve(args.size());
    lengths.reserve(args.size());
    for (const std::string& a : args) {
      argv.push_back(a.data());
      lengths.push_back(a.size());
    }
    const auto failed = [&](const char* what) {
      const std::string why = what + address.text() + ": " + c.errstr;
      drop(address);
      return NodeFailed{why};
    };
    if (asking) {
      static const char* kAsking[] = {"ASKING"};
      static const std::size_t kAskingLength[] = {6};
      if (redisAppendCommandArgv(&c, 1, kAsking, kAskingLength) != REDIS_OK) throw failed("ASKING to ");
    }
    if (redisAppendCommandArgv(&c, static_cast<int>(argv.size()), argv.data(), lengths.data()) != REDIS_OK)
      throw failed("sending to ");
    void* raw = nullptr;
    if (asking) {
      if (redisGetReply(&c, &raw) != REDIS_OK) throw failed("reading from ");
      ReplyPtr ignored(static_cast<redisReply*>(raw));
      raw = nullptr;
    }
    if (redisGetReply(&c, &raw) != REDIS_OK) throw failed("reading from ");
    ReplyPtr reply(static_cast<redisReply*>(raw));
    ++commands;
    return copy_reply(*reply);
  }
};

}  // namespace link_detail
using link_detail::NodeLinks;

struct RedisCluster::Impl {
  std::vector<RedisAddress> seeds;
  RedisClusterOptions options;
  NodeLinks links;
  std::vector<RedisAddress> nodes;  // the masters of the map
  std::vector<int> slot_node;       // slot -> index into nodes, -1: no master
  bool cluster = false;
  std::map<const RedisScript*, std::string> loaded;  // script -> its SHA-1 (the same on every node)
  RedisClusterStats stats;

  RedisReply send(const RedisAddress& address, const std::vector<std::string>& args, bool asking) {
    RedisReply reply = links.send(address, args, asking);
    stats.commands = links.commands;
    return reply;
  }

  void point(std::uint16_t slot, const RedisAddress& address) {
    auto it = std::find(nodes.begin(), nodes.end(), address);
    if (it == nodes.end()) it = nodes.insert(nodes.end(), address);
    slot_node[slot] = static_cast<int>(it - nodes.begin());
  }

  // Reads the slot map from the first node that answers: the masters
  // known now, then the seeds. Returns the failures if none answered.
  std::optional<std::string> refresh_map() {
    ++stats.map_refreshes;
    std::vector<RedisAddress> candidates = nodes;
    for (const RedisAddress& seed : seeds)
      if (std::find(candidates.begin(), candidates.end(), seed) == candidates.end()) candidates.push_back(seed);
    std::string failures;
    for (const RedisAddress& address : candidates) {
      try {
        const RedisReply reply = send(address, {"CLUSTER", "SLOTS"}, false);
        if (reply.is_error()) {
          if (reply.str.find("cluster support disabled") != std::string::npos) {
            cluster = false;
            nodes = {address};
            slot_node.assign(kRedisSlots, 0);
            return std::nullopt;
          }
          failures += (failures.empty() ? "" : "; ") + address.text() + ": " + reply.str;
          continue;
        }
        if (reply.type != RedisReply::Type::Array) {
          failures += (failures.empty() ? "" : "; ") + address.text() + ": CLUSTER SLOTS gave no array";
          continue;
        }
        apply_slots(reply, address);
        return std::nullopt;
      } catch (const NodeFailed& f) {
        failures += (failures.empty() ? "" : "; ") + f.why;
      }
    }
    return failures;
  }

  void apply_slots(const RedisReply& reply, const RedisAddress& asked) {
    std::vector<RedisAddress> fresh;
    std::vector<int> map(kRedisSlots, -1);
    for (const RedisReply& range : reply.elements) {
      if (range.type != RedisReply::Type::Array || range.elements.size() < 3) continue;
      const RedisReply& master = range.elements[2];
      if (range.elements[0].type != RedisReply::Type::Integer || range.elements[1].type != RedisReply::Type::Integer ||
          master.type != RedisReply::Type::Array || master.elements.size() < 2 ||
          master.elements[1].type != RedisReply::Type::Integer)
        continue;
      const long long first = range.elements[0].integer;
      const long long last = range.elements[1].integer;
      if (first < 0 || last >= kRedisSlots || first > last) continue;
      // An empty host means "the address you asked" (a node that does not
      // know its own address).
      RedisAddress address{master.elements[0].str.empty() ? asked.host : master.elements[0].str,
                           static_cast<std::uint16_t>(master.elements[1].integer)};
      auto it = std::find(fresh.begin(), fresh.end(), address);
      const int index = static_cast<int>(it - fresh.begin());
      if (it == fresh.end()) fresh.push_back(address);
      for (long long s = first; s <= last; ++s) map[static_cast<std::size_t>(s)] = index;
    }
    cluster = true;
    nodes = std::move(fresh);
    slot_node = std::move(map);
  }

  [[noreturn]] void give_up(const std::string& what, const std::string& why) const {
    std::string tried;
    for (const RedisAddress& a : seeds) tried += (tried.empty() ? "" : ",") + a.text();
    throw Error(Errc::Io, "Redis (" + tried + "): " + what + ": " + why);
  }

  // Runs `args` for `slot` until an answer that is not a redirection or a
  // wait, within the retry budget.
  RedisReply routed(std::uint16_t slot, const std::vector<std::string>& args) {
    const auto deadline = std::chrono::steady_clock::now() + options.retry_budget;
    std::chrono::milliseconds wait{5};
    std::optional<RedisAddress> ask;    // ASK: that node, after ASKING, once
    std::optional<RedisAddress> moved;  // MOVED: that node next (it named the slot it serves)
    std::string last;
    for (;;) {
      std::optional<RedisAddress> target = ask ? ask : moved;
      if (!target && slot_node[slot] >= 0) target = nodes[static_cast<std::size_t>(slot_node[slot])];
      if (target) {
        try {
          const bool asking = ask.has_value();
          ask.reset();
          moved.reset();
          RedisReply reply = send(*target, args, asking);
          const std::string_view code = reply.error_code();
          if (code == "MOVED") {
            ++stats.moved;
            if (const auto r = redirection(reply.str)) {
              refresh_map();               // more slots moved with it, as a rule
              point(r->first, r->second);  // the node that answered knows best
              moved = r->second;
              if (std::chrono::steady_clock::now() < deadline) continue;
            }
            last = reply.str;
          } else if (code == "ASK") {
            ++stats.asked;
            if (const auto r = redirection(reply.str)) {
              ask = r->second;
              if (std::chrono::steady_clock::now() < deadline) continue;
            }
            last = reply.str;
          } else if (retry_later(code)) {
            ++stats.retried;
            last = reply.str;
          } else {
            return reply;
          }
        } catch (const NodeFailed& f) {
          ++stats.retried;
          last = f.why;
        }
      } else {
        last = "no master serves slot " + std::to_string(slot);
      }
      if (std::chrono::steady_clock::now() + wait > deadline) give_up(args.front(), last);
      std::this_thread::sleep_for(wait);  // a failover or a migration in progress
      wait = std::min(wait * 2, std::chrono::milliseconds{200});
      if (const std::optional<std::string> failures = refresh_map()) last += "; reading the slot map: " + *failures;
    }
  }
};

RedisReply redis_node_command(const RedisAddress& node, const std::vector<std::string>& args,
                              const RedisClusterOptions& options) {
  if (args.empty()) throw Error(Errc::InvalidArgument, "an empty Redis command");
  NodeLinks one;
  one.options = options;
  try {
    return one.send(node, args, false);
  } catch (const NodeFailed& f) {
    throw Error(Errc::Io, "Redis " + node.text() + ": " + f.why);
  }
}

struct RedisSubscription::Impl {
  NodeLinks links;
  RedisAddress node;
  std::string channel;
  bool sharded = false;
};

RedisSubscription::RedisSubscription(const RedisAddress& node, std::string channel, const RedisClusterOptions& options,
                                     bool sharded)
    : impl_(std::make_unique<Impl>()) {
  impl_->links.options = options;
  impl_->node = node;
  impl_->channel = std::move(channel);
  impl_->sharded = sharded;
  const std::string command = sharded ? "SSUBSCRIBE" : "SUBSCRIBE";
  try {
    const RedisReply r = impl_->links.send(node, {command, impl_->channel}, false);
    if (r.type != RedisReply::Type::Array || r.elements.size() != 3 ||
        r.elements[0].str != (sharded ? "ssubscribe" : "subscribe"))
      throw Error(Errc::Io,
                  "Redis " + node.text() + " did not confirm " + command + " " + impl_->channel + ": " + r.str);
  } catch (const NodeFailed& f) {
    throw Error(Errc::Io, "Redis " + node.text() + ": " + f.why);
  }
}

RedisSubscription::~RedisSubscription() = default;
RedisSubscription::RedisSubscription(RedisSubscription&&) noexcept = default;
RedisSubscription& RedisSubscription::operator=(RedisSubscription&&) noexcept = default;

int RedisSubscription::fd() const noexcept {
  auto it = impl_->links.connections.find(impl_->node);
  return it == impl_->links.connections.end() ? -1 : it->second->fd;
}

std::optional<std::string> RedisSubscription::next(std::chrono::milliseconds timeout) {
  auto it = impl_->links.connections.find(impl_->node);
  if (it == impl_->links.connections.end())
    throw Error(Errc::Io, "the subscription to " + impl_->channel + " on " + impl_->node.text() + " was lost");
  redisContext* c = it->second.get();
  const auto fail = [&](const std::string& why) {
    impl_->links.drop(impl_->node);
    return Error(Errc::Io, "the subscription to " + impl_->channel + " on " + impl_->node.text() + ": " + why);
  };
  for (;;) {
    void* raw = nullptr;
    if (redisGetReplyFromReader(c, &raw) != REDIS_OK) throw fail(c->errstr);
    if (raw == nullptr) {  // nothing buffered: wait for the socket, then read
      pollfd p{c->fd, POLLIN, 0};
      const int ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
      if (ready < 0 && errno != EINTR) throw fail("poll failed");
      if (ready <= 0) return std::nullopt;
      if (redisBufferRead(c) != REDIS_OK) throw fail(c->errstr);
      if (redisGetReplyFromReader(c, &raw) != REDIS_OK) throw fail(c->errstr);
      if (raw == nullptr) continue;  // part of a message only
    }
    ReplyPtr owned(static_cast<redisReply*>(raw));
    const RedisReply r = copy_reply(*owned);
    if (r.type == RedisReply::Type::Array && r.elements.size() == 3 &&
        r.elements[0].str == (impl_->sharded ? "smessage" : "message"))
      return r.elements[2].str;
    // A node that gives up the channel's slot (a failover, a migration)
    // ends the subscription: subscribe again where the slot went.
    if (r.type == RedisReply::Type::Array && !r.elements.empty() && r.elements[0].str == "sunsubscribe")
      throw fail("the node no longer serves the channel's slot");
    // Anything else (a confirmation of a later SUBSCRIBE) is not a message.
  }
}

RedisCluster::RedisCluster(std::vector<RedisAddress> seeds, RedisClusterOptions options)
    : impl_(std::make_unique<Impl>()) {
  if (seeds.empty()) throw Error(Errc::InvalidArgument, "no Redis address given");
  impl_->seeds = std::move(seeds);
  impl_->links.options = options;
  impl_->options = std::move(options);
  impl_->slot_node.assign(kRedisSlots, -1);
  if (const std::optional<std::string> failures = impl_->refresh_map())
    impl_->give_up("reading the slot map", *failures);
}

RedisCluster::~RedisCluster() = default;
RedisCluster::RedisCluster(RedisCluster&&) noexcept = default;
RedisCluster& RedisCluster::operator=(RedisCluster&&) noexcept = default;

RedisReply RedisCluster::command(std::string_view key, const std::vector<std::string>& args) {
  if (args.empty()) throw Error(Errc::InvalidArgument, "an empty Redis command");
  return impl_->routed(redis_key_slot(key), args);
}

RedisReply RedisCluster::eval(const RedisScript& script, const std::vector<std::string>& keys,
                              const std::vector<std::string>& args) {
  if (keys.empty()) throw Error(Errc::InvalidArgument, "a script needs a key to be routed by");
  const std::uint16_t slot = redis_key_slot(keys.front());
  for (const std::string& k : keys)
    if (redis_key_slot(k) != slot)
      throw Error(Errc::InvalidArgument, "keys '" + keys.front() + "' and '" + k + "' are in different slots");
  std::string& sha = impl_->loaded[&script];
  if (sha.empty()) {
    RedisReply loaded = impl_->routed(slot, {"SCRIPT", "LOAD", script.source()});
    if (loaded.type != RedisReply::Type::String) return loaded;  // a script Redis refuses: the error
    sha = loaded.str;
  }
  std::vector<std::string> command{"EVALSHA", sha, std::to_string(keys.size())};
  command.insert(command.end(), keys.begin(), keys.end());
  command.insert(command.end(), args.begin(), args.end());
  RedisReply reply = impl_->routed(slot, command);
  if (reply.error_code() == "NOSCRIPT") {  // a node that never loaded it (a promoted replica, a restart)
    ++impl_->stats.noscript;
    command[0] = "EVAL";
    command[1] = script.source();
    reply = impl_->routed(slot, command);
  }
  return reply;
}

RedisReply RedisCluster::any_node(const std::vector<std::string>& args) {
  if (args.empty()) throw Error(Errc::InvalidArgument, "an empty Redis command");
  // Any slot's master will do; slot 0's is as good as another.
  return impl_->routed(0, args);
}

bool RedisCluster::is_cluster() const noexcept { return impl_->cluster; }

RedisAddress RedisCluster::master_of(std::uint16_t slot) const {
  const int index = slot < kRedisSlots ? impl_->slot_node[slot] : -1;
  if (index < 0) throw Error(Errc::NotFound, "no master serves slot " + std::to_string(slot));
  return impl_->nodes[static_cast<std::size_t>(index)];
}

std::vector<RedisAddress> RedisCluster::masters() const {
  std::vector<RedisAddress> out = impl_->nodes;
  std::sort(out.begin(), out.end());
  return out;
}

const RedisClusterStats& RedisCluster::stats() const noexcept { return impl_->stats; }

}  // namespace shmsession::hosts
