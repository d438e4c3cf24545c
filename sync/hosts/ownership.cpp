#include "sync/hosts/ownership.hpp"

#include <algorithm>
#include <charconv>

#include "shm/error.hpp"

namespace shmsession::hosts {

namespace {

// The time in ms, from Redis (every host reads one clock).
constexpr std::string_view kNow = R"lua(
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
)lua";

// KEYS: queue, waiting. Puts `host` at the end of the queue unless it is
// there, notes that it waits now; returns its place (from 1). The queue
// and its times expire if nobody waits for `keep` ms.
constexpr std::string_view kEnqueue = R"lua(
local function enqueue(queue, waiting, host, now, keep)
  if redis.call('HEXISTS', waiting, host) == 0 then
    redis.call('RPUSH', queue, host)
  end
  redis.call('HSET', waiting, host, now)
  redis.call('PEXPIRE', queue, keep)
  redis.call('PEXPIRE', waiting, keep)
  local at = redis.call('LPOS', queue, host)
  if not at then  -- the two keys disagreed (one expired alone): queue it again
    redis.call('RPUSH', queue, host)
    at = redis.call('LPOS', queue, host)
  end
  return at + 1
end
)lua";

// Whether the owner hash `key` names `host` with `token`.
constexpr std::string_view kOwns = R"lua(
local function owns(key, host, token)
  local owner = redis.call('HMGET', key, 'host', 'token')
  return owner[1] == host and owner[2] == token
end
)lua";

// KEYS: fence, owner, queue, waiting, meta. ARGV: host, lease ms, stale ms, keep ms.
const RedisScript& acquire_script() {
  static const RedisScript script(std::string(kNow) + std::string(kEnqueue) + R"lua(
local host, lease, stale, keep = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local now = now_ms()
local owner = redis.call('HMGET', KEYS[2], 'host', 'token')
if owner[1] then
  if owner[1] == host then
    redis.call('PEXPIRE', KEYS[2], lease)
    return {'granted', owner[2], redis.call('HGET', KEYS[5], 'version') or '0', 'again'}
  end
  return {'owned', owner[1], tostring(enqueue(KEYS[3], KEYS[4], host, now, keep))}
end
while true do  -- skip the waiters that stopped confirming
  local head = redis.call('LINDEX', KEYS[3], 0)
  if not head or head == host then break end
  local seen = tonumber(redis.call('HGET', KEYS[4], head) or '0')
  if now - seen <= stale then break end
  redis.call('LPOP', KEYS[3])
  redis.call('HDEL', KEYS[4], head)
end
local head = redis.call('LINDEX', KEYS[3], 0)
if head and head ~= host then
  return {'queued', head, tostring(enqueue(KEYS[3], KEYS[4], host, now, keep))}
end
if head then
  redis.call('LPOP', KEYS[3])
  redis.call('HDEL', KEYS[4], host)
end
local token = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[2], 'host', host, 'token', token, 'since_ms', now)
redis.call('PEXPIRE', KEYS[2], lease)
return {'granted', tostring(token), redis.call('HGET', KEYS[5], 'version') or '0', 'new'}
)lua");
  return script;
}

// KEYS: fence, owner, queue, waiting, meta. ARGV: host, lease ms. An
// operator's take-over: this host owns the session from now, whoever did
// (their token is fenced by the new one), ahead of any queue.
const RedisScript& seize_script() {
  static const RedisScript script(std::string(kNow) + R"lua(
local before = redis.call('HGET', KEYS[2], 'host') or ''
redis.call('LREM', KEYS[3], 0, ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
local token = redis.call('INCR', KEYS[1])
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'host', ARGV[1], 'token', token, 'since_ms', now_ms())
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]))
return {'granted', tostring(token), redis.call('HGET', KEYS[5], 'version') or '0', before}
)lua");
  return script;
}

// KEYS: queue, waiting. ARGV: host.
const RedisScript& leave_script() {
  static const RedisScript script(R"lua(
redis.call('LREM', KEYS[1], 0, ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
)lua");
  return script;
}

// KEYS: owner, queue. ARGV: host, token.
const RedisScript& release_script() {
  static const RedisScript script(std::string(kOwns) + R"lua(
if not owns(KEYS[1], ARGV[1], ARGV[2]) then return {'not_owner'} end
redis.call('DEL', KEYS[1])
return {'released', redis.call('LINDEX', KEYS[2], 0) or ''}
)lua");
  return script;
}

// KEYS: owner, data, meta. ARGV: host, token, lease ms. The session's
// data lives on while a host owns it (its idle timeout counts from the
// last renewal or ship: the owner's requests may read without shipping).
const RedisScript& renew_script() {
  static const RedisScript script(std::string(kOwns) + R"lua(
if not owns(KEYS[1], ARGV[1], ARGV[2]) then return 0 end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
local idle = tonumber(redis.call('HGET', KEYS[3], 'idle_ms') or '0')
if idle > 0 then
  redis.call('PEXPIRE', KEYS[2], idle)
  redis.call('PEXPIRE', KEYS[3], idle)
end
return 1
)lua");
  return script;
}

// KEYS: owner, data, meta. ARGV: host, token, base, idle ms, replace (0/1),
// puts, removes, then puts x (name, value), then the removed names.
const RedisScript& ship_script() {
  static const RedisScript script(std::string(kOwns) + R"lua(
if not owns(KEYS[1], ARGV[1], ARGV[2]) then return {'fenced'} end
local version = tonumber(redis.call('HGET', KEYS[3], 'version') or '0')
if version ~= tonumber(ARGV[3]) then return {'conflict', tostring(version)} end
local idle, replace, puts, removes = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
if replace == '1' then redis.call('DEL', KEYS[2]) end
local at = 8
local batch = {}
for k = 1, puts do  -- in batches: unpack has a bound on its arguments
  batch[#batch + 1] = ARGV[at]
  batch[#batch + 1] = ARGV[at + 1]
  at = at + 2
  if #batch >= 1000 or k == puts then
    redis.call('HSET', KEYS[2], unpack(batch))
    batch = {}
  end
end
for k = 1, removes do
  batch[#batch + 1] = ARGV[at]
  at = at + 1
  if #batch >= 1000 or k == removes then
    redis.call('HDEL', KEYS[2], unpack(batch))
    batch = {}
  end
end
redis.call('HSET', KEYS[3], 'version', version + 1, 'idle_ms', idle)
for _, key in ipairs({KEYS[2], KEYS[3]}) do
  if idle > 0 then redis.call('PEXPIRE', key, idle) else redis.call('PERSIST', key) end
end
return {'shipped', tostring(version + 1)}
)lua");
  return script;
}

// KEYS: data, meta.
const RedisScript& load_script() {
  static const RedisScript script(R"lua(
local meta = redis.call('HMGET', KEYS[2], 'version', 'idle_ms')
return {meta[1] or '0', meta[2] or '0', redis.call('HGETALL', KEYS[1])}
)lua");
  return script;
}

// KEYS: owner, fence, queue, meta.
const RedisScript& owner_script() {
  static const RedisScript script(R"lua(
local owner = redis.call('HMGET', KEYS[1], 'host', 'token')
return {owner[1] or '', owner[2] or '0', redis.call('PTTL', KEYS[1]), redis.call('GET', KEYS[2]) or '0',
        redis.call('LRANGE', KEYS[3], 0, -1), redis.call('HGET', KEYS[4], 'version') or '0'}
)lua");
  return script;
}

[[noreturn]] void unexpected(std::string_view what, std::string_view sid, const RedisReply& reply) {
  std::string text = reply.str;
  if (reply.type == RedisReply::Type::Array)
    for (const RedisReply& e : reply.elements) text += (text.empty() ? "" : " ") + e.str;
  throw Error(Errc::Io, std::string(what) + " of session '" + std::string(sid) + "': Redis answered '" + text + "'");
}

std::uint64_t number(std::string_view what, std::string_view sid, const RedisReply& reply) {
  std::uint64_t n = 0;
  const std::string& s = reply.str;
  if (reply.type == RedisReply::Type::Integer && reply.integer >= 0) return static_cast<std::uint64_t>(reply.integer);
  if (reply.type != RedisReply::Type::String || std::from_chars(s.data(), s.data() + s.size(), n).ec != std::errc{})
    unexpected(what, sid, reply);
  return n;
}

// The first element of a script's array answer, or the whole answer.
const std::string& status_of(const RedisReply& reply) {
  static const std::string none;
  return reply.type == RedisReply::Type::Array && !reply.elements.empty() ? reply.elements[0].str : none;
}

void validate_sid(std::string_view sid) {
  if (sid.empty()) throw Error(Errc::InvalidArgument, "an empty session id");
  if (sid.find_first_of("{}") != std::string_view::npos)
    throw Error(Errc::InvalidArgument,
                "session id '" + std::string(sid) + "' has '{' or '}': it is the hash tag of the session's Redis keys");
}

}  // namespace

void validate_host_id(std::string_view host) {
  const bool ok = !host.empty() && host.size() <= 64 &&
                  host.find_first_not_of(
                      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                      "0123456789._-") == std::string_view::npos;
  if (!ok)
    throw Error(Errc::InvalidArgument,
                "host id '" + std::string(host) + "' is not 1 to 64 of the characters A-Z a-z 0-9 . _ -");
}

Ownership::Ownership(RedisCluster& redis, std::string host, OwnershipOptions options)
    : redis_(redis), host_(std::move(host)), options_(std::move(options)) {
  validate_host_id(host_);
  if (options_.prefix.find_first_of("{}") != std::string::npos)
    throw Error(Errc::InvalidArgument, "the Redis key prefix '" + options_.prefix + "' has '{' or '}'");
  if (options_.lease.count() <= 0 || options_.waiter_stale.count() <= 0)
    throw Error(Errc::InvalidArgument, "the lease and the waiter bound must be positive");
}

std::string Ownership::key(std::string_view sid, std::string_view part) const {
  return options_.prefix + "{" + std::string(sid) + "}:" + std::string(part);
}

std::string Ownership::channel(std::string_view host) const { return options_.prefix + "host:" + std::string(host); }

Acquired Ownership::acquire(std::string_view sid) {
  validate_sid(sid);
  const std::string keep = std::to_string(std::max(options_.lease, options_.waiter_stale * 10).count());
  const RedisReply r =
      redis_.eval(acquire_script(),
                  {key(sid, "fence"), key(sid, "owner"), key(sid, "queue"), key(sid, "waiting"), key(sid, "meta")},
                  {host_, std::to_string(options_.lease.count()), std::to_string(options_.waiter_stale.count()), keep});
  const std::string& status = status_of(r);
  Acquired a;
  if (status == "granted" && r.elements.size() == 4) {
    a.kind = Acquired::Kind::Granted;
    a.token = number("acquire", sid, r.elements[1]);
    a.version = number("acquire", sid, r.elements[2]);
    a.again = r.elements[3].str == "again";
    a.owner = host_;
  } else if ((status == "owned" || status == "queued") && r.elements.size() == 3) {
    a.kind = status == "owned" ? Acquired::Kind::Owned : Acquired::Kind::Queued;
    a.owner = r.elements[1].str;
    a.position = number("acquire", sid, r.elements[2]);
  } else {
    unexpected("acquire", sid, r);
  }
  return a;
}

Acquired Ownership::seize(std::string_view sid) {
  validate_sid(sid);
  const RedisReply r = redis_.eval(
      seize_script(), {key(sid, "fence"), key(sid, "owner"), key(sid, "queue"), key(sid, "waiting"), key(sid, "meta")},
      {host_, std::to_string(options_.lease.count())});
  if (status_of(r) != "granted" || r.elements.size() != 4) unexpected("seize", sid, r);
  Acquired a;
  a.kind = Acquired::Kind::Granted;
  a.token = number("seize", sid, r.elements[1]);
  a.version = number("seize", sid, r.elements[2]);
  a.again = r.elements[3].str == host_;
  a.owner = r.elements[3].str;  // the owner it was taken from (empty: nobody)
  return a;
}

void Ownership::leave_queue(std::string_view sid) {
  validate_sid(sid);
  const RedisReply r = redis_.eval(leave_script(), {key(sid, "queue"), key(sid, "waiting")}, {host_});
  if (r.type != RedisReply::Type::Integer) unexpected("leaving the queue", sid, r);
}

Ownership::Released Ownership::release(std::string_view sid, std::uint64_t token) {
  validate_sid(sid);
  const RedisReply r =
      redis_.eval(release_script(), {key(sid, "owner"), key(sid, "queue")}, {host_, std::to_string(token)});
  const std::string& status = status_of(r);
  if (status == "not_owner") return {};
  if (status != "released" || r.elements.size() != 2) unexpected("release", sid, r);
  return {true, r.elements[1].str};
}

bool Ownership::renew(std::string_view sid, std::uint64_t token) {
  validate_sid(sid);
  const RedisReply r = redis_.eval(renew_script(), {key(sid, "owner"), key(sid, "data"), key(sid, "meta")},
                                   {host_, std::to_string(token), std::to_string(options_.lease.count())});
  if (r.type != RedisReply::Type::Integer) unexpected("renew", sid, r);
  return r.integer == 1;
}

ShipOutcome Ownership::ship(std::string_view sid, std::uint64_t token, std::uint64_t base,
                            const std::vector<std::pair<std::string, std::string>>& puts,
                            const std::vector<std::string>& removes, std::uint64_t idle_ms, bool replace) {
  validate_sid(sid);
  std::vector<std::string> args{host_,
                                std::to_string(token),
                                std::to_string(base),
                                std::to_string(idle_ms),
                                replace ? "1" : "0",
                                std::to_string(puts.size()),
                                std::to_string(removes.size())};
  args.reserve(args.size() + 2 * puts.size() + removes.size());
  for (const auto& [name, value] : puts) {
    args.push_back(name);
    args.push_back(value);
  }
  args.insert(args.end(), removes.begin(), removes.end());
  const RedisReply r = redis_.eval(ship_script(), {key(sid, "owner"), key(sid, "data"), key(sid, "meta")}, args);
  const std::string& status = status_of(r);
  if (status == "fenced") return {ShipOutcome::Kind::Fenced, 0};
  if (status == "conflict" && r.elements.size() == 2)
    return {ShipOutcome::Kind::Conflict, number("ship", sid, r.elements[1])};
  if (status == "shipped" && r.elements.size() == 2)
    return {ShipOutcome::Kind::Shipped, number("ship", sid, r.elements[1])};
  unexpected("ship", sid, r);
}

StoredSession Ownership::load(std::string_view sid) {
  validate_sid(sid);
  const RedisReply r = redis_.eval(load_script(), {key(sid, "data"), key(sid, "meta")}, {});
  if (r.type != RedisReply::Type::Array || r.elements.size() != 3 || r.elements[2].type != RedisReply::Type::Array ||
      r.elements[2].elements.size() % 2 != 0)
    unexpected("load", sid, r);
  StoredSession s;
  s.version = number("load", sid, r.elements[0]);
  s.idle_ms = number("load", sid, r.elements[1]);
  const std::vector<RedisReply>& flat = r.elements[2].elements;
  for (std::size_t i = 0; i < flat.size(); i += 2) s.attributes.emplace_back(flat[i].str, flat[i + 1].str);
  std::sort(s.attributes.begin(), s.attributes.end());
  return s;
}

OwnerInfo Ownership::owner(std::string_view sid) {
  validate_sid(sid);
  const RedisReply r =
      redis_.eval(owner_script(), {key(sid, "owner"), key(sid, "fence"), key(sid, "queue"), key(sid, "meta")}, {});
  if (r.type != RedisReply::Type::Array || r.elements.size() != 6 || r.elements[2].type != RedisReply::Type::Integer ||
      r.elements[4].type != RedisReply::Type::Array)
    unexpected("owner", sid, r);
  OwnerInfo info;
  info.host = r.elements[0].str;
  info.token = number("owner", sid, r.elements[1]);
  info.lease_left_ms = r.elements[2].integer;
  info.last_token = number("owner", sid, r.elements[3]);
  for (const RedisReply& h : r.elements[4].elements) info.queue.push_back(h.str);
  info.version = number("owner", sid, r.elements[5]);
  return info;
}

std::int64_t Ownership::request_release(std::string_view owner, std::string_view sid) {
  validate_sid(sid);
  const std::string to = channel(owner);
  const RedisReply r = redis_.command(to, {"SPUBLISH", to, "release " + std::string(sid)});
  if (r.type != RedisReply::Type::Integer) unexpected("a release request", sid, r);
  return r.integer;
}

std::int64_t Ownership::announce_grant(std::string_view host, std::string_view sid) {
  validate_sid(sid);
  const std::string to = channel(host);
  const RedisReply r = redis_.command(to, {"SPUBLISH", to, "granted " + std::string(sid)});
  if (r.type != RedisReply::Type::Integer) unexpected("a grant", sid, r);
  return r.integer;
}

}  // namespace shmsession::hosts
