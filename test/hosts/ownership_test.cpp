// Ownership of sessions by hosts in a real 3-master Redis Cluster: grants
// and fencing tokens, the FIFO queue among hosts, waiters that stop
// waiting, lease expiry, fenced shipping, loading, and how sessions spread
// over the masters.
#include <boost/test/unit_test.hpp>

#include <map>
#include <set>

#include "shm/error.hpp"
#include "sync/hosts/ownership.hpp"
#include "test/hosts/test_redis_cluster.hpp"
#include "test/support/test_support.hpp"

using namespace shmsession;
using namespace shmsession::hosts;
using shmsession::test::TestRedis;

namespace {

using Kind = Acquired::Kind;

// One cluster for the whole program (making one takes ~2 s); each test
// case starts from empty masters.
TestRedis& shared_redis() {
  static TestRedis redis(3, 0);
  return redis;
}

struct EmptyMasters {
  explicit EmptyMasters(const TestRedis& redis) {
    for (std::size_t i = 0; i < 3; ++i) BOOST_TEST_REQUIRE(redis.on(redis.nodes()[i], {"FLUSHALL"}).str == "OK");
  }
};

struct Hosts {
  TestRedis& redis = shared_redis();
  EmptyMasters empty{redis};
  RedisCluster cluster{parse_redis_addresses(redis.seeds())};
  Ownership a{cluster, "host-a"};
  Ownership b{cluster, "host-b"};
  Ownership c{cluster, "host-c"};
  Ownership d{cluster, "host-d"};
};

// Waits (polling Redis, bounded) until `key` no longer exists: how a test
// lets a short lease run out without deciding anything by a sleep.
void wait_gone(RedisCluster& cluster, const std::string& key) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (cluster.command(key, {"EXISTS", key}).integer != 0)
    BOOST_TEST_REQUIRE((std::chrono::steady_clock::now() < deadline), key << " never expired");
}

}  // namespace

BOOST_FIXTURE_TEST_CASE(a_free_session_is_granted_with_a_token_that_only_grows, Hosts) {
  Acquired first = a.acquire("s1");
  BOOST_TEST((first.kind == Kind::Granted));
  BOOST_TEST(first.token == 1u);
  BOOST_TEST(first.version == 0u);
  BOOST_TEST(!first.again);
  Acquired same = a.acquire("s1");
  BOOST_TEST((same.kind == Kind::Granted));
  BOOST_TEST(same.again);
  BOOST_TEST(same.token == 1u, "asking again keeps the grant and its token");
  Acquired other = b.acquire("s1");
  BOOST_TEST((other.kind == Kind::Owned));
  BOOST_TEST(other.owner == "host-a");
  BOOST_TEST(other.position == 1u);
  BOOST_TEST(a.release("s1", first.token).released);
  Acquired next = b.acquire("s1");
  BOOST_TEST((next.kind == Kind::Granted));
  BOOST_TEST(next.token == 2u);
  BOOST_TEST(b.owner("s1").queue.empty(), "the grant took b out of the queue");
  BOOST_TEST(b.release("s1", next.token).released);
  BOOST_TEST(a.acquire("s1").token == 3u);
  BOOST_TEST(a.owner("s1").last_token == 3u);
}

BOOST_FIXTURE_TEST_CASE(hosts_are_granted_in_the_order_they_queued, Hosts) {
  const std::uint64_t held = a.acquire("q").token;
  BOOST_TEST(b.acquire("q").position == 1u);
  BOOST_TEST(c.acquire("q").position == 2u);
  BOOST_TEST(d.acquire("q").position == 3u);
  BOOST_TEST(c.acquire("q").position == 2u, "asking again keeps the place");
  BOOST_TEST((a.owner("q").queue == std::vector<std::string>{"host-b", "host-c", "host-d"}));
  Ownership::Released r = a.release("q", held);
  BOOST_TEST(r.released);
  BOOST_TEST(r.next == "host-b");
  // c and d ask before b comes back: b is still first.
  Acquired early = c.acquire("q");
  BOOST_TEST((early.kind == Kind::Queued));
  BOOST_TEST(early.owner == "host-b");
  BOOST_TEST((d.acquire("q").kind == Kind::Queued));
  std::vector<std::string> order;
  std::uint64_t last_token = held;
  for (Ownership* h : {&b, &c, &d}) {
    Acquired g = h->acquire("q");
    BOOST_TEST_REQUIRE((g.kind == Kind::Granted), h->host());
    BOOST_TEST(g.token > last_token);
    last_token = g.token;
    order.push_back(h->host());
    BOOST_TEST(h->release("q", g.token).released);
  }
  BOOST_TEST((order == std::vector<std::string>{"host-b", "host-c", "host-d"}));
  BOOST_TEST(a.owner("q").queue.empty());
}

BOOST_FIXTURE_TEST_CASE(a_waiter_that_stopped_waiting_is_skipped_and_one_that_left_is_gone, Hosts) {
  const std::uint64_t held = a.acquire("w").token;
  BOOST_TEST(b.acquire("w").position == 1u);
  BOOST_TEST(c.acquire("w").position == 2u);
  BOOST_TEST(d.acquire("w").position == 3u);
  d.leave_queue("w");
  BOOST_TEST((a.owner("w").queue == std::vector<std::string>{"host-b", "host-c"}));
  // b last confirmed it waits at time 0: long ago (as a dead host's entry ages).
  BOOST_TEST_REQUIRE(cluster.command(a.key("w", "waiting"), {"HSET", a.key("w", "waiting"), "host-b", "0"}).integer ==
                     0);
  BOOST_TEST(a.release("w", held).released);
  Acquired g = c.acquire("w");
  BOOST_TEST((g.kind == Kind::Granted), "b stopped confirming: c is next");
  BOOST_TEST(a.owner("w").queue.empty());
  Acquired late = b.acquire("w");
  BOOST_TEST((late.kind == Kind::Owned));
  BOOST_TEST(late.position == 1u, "b comes back at the end of the queue");
}

BOOST_FIXTURE_TEST_CASE(an_owner_whose_lease_ran_out_is_fenced_everywhere, Hosts) {
  OwnershipOptions short_lease;
  short_lease.lease = std::chrono::milliseconds(50);
  Ownership paused(cluster, "host-p", short_lease);
  const Acquired mine = paused.acquire("f");
  BOOST_TEST_REQUIRE((mine.kind == Kind::Granted));
  BOOST_TEST(paused.ship("f", mine.token, 0, {{"cart", "3 items"}}, {}, 0).version == 1u);
  BOOST_TEST((b.acquire("f").kind == Kind::Owned));
  wait_gone(cluster, a.key("f", "owner"));  // host-p did not renew
  const Acquired taken = b.acquire("f");
  BOOST_TEST_REQUIRE((taken.kind == Kind::Granted));
  BOOST_TEST(taken.token == mine.token + 1);
  BOOST_TEST(taken.version == 1u, "b is granted at the version host-p shipped");
  BOOST_TEST((b.ship("f", taken.token, 1, {{"cart", "4 items"}}, {}, 0).kind == ShipOutcome::Kind::Shipped));
  // host-p wakes up and writes with its old token: refused, nothing applied.
  BOOST_TEST((paused.ship("f", mine.token, 1, {{"cart", "stale"}}, {}, 0).kind == ShipOutcome::Kind::Fenced));
  BOOST_TEST((paused.ship("f", mine.token, 2, {}, {"cart"}, 0, true).kind == ShipOutcome::Kind::Fenced));
  BOOST_TEST(!paused.renew("f", mine.token));
  BOOST_TEST(!paused.release("f", mine.token).released);
  BOOST_TEST(b.renew("f", taken.token));
  const StoredSession now = b.load("f");
  BOOST_TEST(now.version == 2u);
  BOOST_TEST_REQUIRE(now.attributes.size() == 1u);
  BOOST_TEST(now.attributes[0].second == "4 items");
  BOOST_TEST(b.owner("f").host == "host-b");
}

BOOST_FIXTURE_TEST_CASE(a_ship_writes_only_what_changed_from_the_base_it_names, Hosts) {
  const std::uint64_t t = a.acquire("x").token;
  const std::string binary("v\0al\xff", 5);
  ShipOutcome s = a.ship("x", t, 0, {{"cart", "1"}, {"profile", binary}, {"recent", "r"}}, {}, 60000);
  BOOST_TEST((s.kind == ShipOutcome::Kind::Shipped));
  BOOST_TEST(s.version == 1u);
  s = a.ship("x", t, 1, {{"cart", "2"}}, {"recent"}, 60000);
  BOOST_TEST(s.version == 2u);
  const ShipOutcome stale = a.ship("x", t, 1, {{"cart", "lost"}}, {}, 60000);
  BOOST_TEST((stale.kind == ShipOutcome::Kind::Conflict));
  BOOST_TEST(stale.version == 2u);
  StoredSession got = a.load("x");
  BOOST_TEST(got.version == 2u);
  BOOST_TEST(got.idle_ms == 60000u);
  BOOST_TEST((got.attributes == std::vector<std::pair<std::string, std::string>>{{"cart", "2"}, {"profile", binary}}));
  const long long ttl = cluster.command(a.key("x", "data"), {"PTTL", a.key("x", "data")}).integer;
  BOOST_TEST(ttl > 0);
  BOOST_TEST(ttl <= 60000);
  // A whole session replaces what was there.
  s = a.ship("x", t, 2, {{"only", "this"}}, {}, 0, true);
  BOOST_TEST(s.version == 3u);
  got = a.load("x");
  BOOST_TEST((got.attributes == std::vector<std::pair<std::string, std::string>>{{"only", "this"}}));
  BOOST_TEST(cluster.command(a.key("x", "data"), {"PTTL", a.key("x", "data")}).integer == -1, "idle 0: no expiry");
  // Many attributes in one ship (the script writes them in batches).
  std::vector<std::pair<std::string, std::string>> many;
  for (int i = 0; i < 2500; ++i) many.emplace_back("a" + std::to_string(i), std::to_string(i));
  BOOST_TEST(a.ship("x", t, 3, many, {"only"}, 0).version == 4u);
  BOOST_TEST(a.load("x").attributes.size() == 2500u);
  const StoredSession none = a.load("never-shipped");
  BOOST_TEST(none.version == 0u);
  BOOST_TEST(none.attributes.empty());
}

BOOST_FIXTURE_TEST_CASE(sessions_spread_over_every_master_each_with_all_its_keys_in_one_slot, Hosts) {
  std::map<std::string, int> owners_per_master;
  for (int i = 0; i < 300; ++i) {
    const std::string sid = "sess-" + std::to_string(i);
    const Acquired g = a.acquire(sid);
    BOOST_TEST_REQUIRE((g.kind == Kind::Granted));
    BOOST_TEST_REQUIRE((a.ship(sid, g.token, 0, {{"n", std::to_string(i)}}, {}, 0).kind == ShipOutcome::Kind::Shipped));
    const std::uint16_t slot = redis_key_slot(a.key(sid, "owner"));
    for (const char* part : {"fence", "data", "meta", "queue", "waiting"})
      BOOST_TEST_REQUIRE(redis_key_slot(a.key(sid, part)) == slot);
    ++owners_per_master[cluster.master_of(slot).text()];
  }
  BOOST_TEST(owners_per_master.size() == 3u);
  for (const RedisAddress& m : cluster.masters()) {
    // What each master really holds: 4 keys (fence, owner, data, meta) per session.
    const long long keys = redis.on(m, {"DBSIZE"}).integer;
    BOOST_TEST(keys == 4 * owners_per_master[m.text()], m.text());
    BOOST_TEST(owners_per_master[m.text()] > 50, m.text() << " owns " << owners_per_master[m.text()] << " of 300");
  }
}

BOOST_FIXTURE_TEST_CASE(release_requests_and_grants_reach_the_hosts_channel, Hosts) {
  // A sharded channel: subscribed on the master of its slot, published
  // from anywhere (routed there like a key).
  const std::string channel = a.channel("host-a");
  const RedisAddress home = cluster.master_of(redis_key_slot(channel));
  for (const RedisAddress& m : cluster.masters())
    if (!(m == home))
      BOOST_TEST((test::code_of([&] { RedisSubscription wrong(m, channel, {}, true); }) == Errc::Io),
                 "a node without the channel's slot refuses it (MOVED)");
  RedisSubscription mine(home, channel, {}, true);
  BOOST_TEST(!mine.next(std::chrono::milliseconds(0)).has_value());
  BOOST_TEST(b.request_release("host-a", "s9") == 1, "one subscriber reached");
  BOOST_TEST(c.announce_grant("host-a", "s9") == 1);
  BOOST_TEST(d.request_release("host-z", "s9") == 0, "nobody listens for host-z");
  const auto wait = std::chrono::seconds(10);  // fails instead of hanging; the messages are sent already
  BOOST_TEST(mine.next(wait).value_or("") == "release s9");
  BOOST_TEST(mine.next(wait).value_or("") == "granted s9");
  BOOST_TEST(!mine.next(std::chrono::milliseconds(0)).has_value());
}

BOOST_FIXTURE_TEST_CASE(bad_ids_are_refused_before_redis_is_asked, Hosts) {
  BOOST_TEST((test::code_of([&] { a.acquire("bad{tag}"); }) == Errc::InvalidArgument));
  BOOST_TEST((test::code_of([&] { a.acquire("}x"); }) == Errc::InvalidArgument));
  BOOST_TEST((test::code_of([&] { a.acquire(""); }) == Errc::InvalidArgument));
  BOOST_TEST((test::code_of([&] { Ownership bad(cluster, "has space"); }) == Errc::InvalidArgument));
  BOOST_TEST((test::code_of([&] { Ownership bad(cluster, ""); }) == Errc::InvalidArgument));
  BOOST_TEST((test::code_of([&] { Ownership bad(cluster, std::string(65, 'h')); }) == Errc::InvalidArgument));
  OwnershipOptions braces;
  braces.prefix = "x{";
  BOOST_TEST((test::code_of([&] { Ownership bad(cluster, "h", braces); }) == Errc::InvalidArgument));
}
