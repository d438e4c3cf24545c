// The Redis Cluster client of sync/hosts against real servers: a 3-master
// Redis Cluster made by redis-cli, one with a replica per master for a
// failover, and a standalone server.
#include <boost/test/unit_test.hpp>

#include <map>
#include <set>

#include "shm/error.hpp"
#include "sync/hosts/redis_cluster.hpp"
#include "test/hosts/test_redis_cluster.hpp"
#include "test/support/test_support.hpp"

using namespace shmsession;
using namespace shmsession::hosts;
using shmsession::test::TestRedis;

namespace shmsession::hosts {
std::ostream& operator<<(std::ostream& os, const RedisAddress& a) { return os << a.text(); }
}  // namespace shmsession::hosts

namespace {

std::string key_of(int i) { return "k:" + std::to_string(i); }

// The cluster of the test cases that change no slot and kill no node (making
// one takes ~2 s); each starts from empty masters.
TestRedis& shared_redis() {
  static TestRedis redis(3, 0);
  for (std::size_t i = 0; i < 3; ++i) BOOST_TEST_REQUIRE(redis.on(redis.nodes()[i], {"FLUSHALL"}).str == "OK");
  return redis;
}

// Moves `slot` from its master to `to` as redis-cli --cluster reshard
// does: IMPORTING on the target, MIGRATING on the source, MIGRATE of the
// keys (the first `migrate_keys` of them, all if negative), and, unless
// `leave_migrating`, the slot assigned to the target everywhere.
void move_slot(const TestRedis& redis, std::uint16_t slot, const RedisAddress& from, const RedisAddress& to,
               bool leave_migrating, int migrate_keys = -1) {
  const std::string s = std::to_string(slot);
  BOOST_TEST_REQUIRE(redis.on(to, {"CLUSTER", "SETSLOT", s, "IMPORTING", redis.id_of(from)}).str == "OK");
  BOOST_TEST_REQUIRE(redis.on(from, {"CLUSTER", "SETSLOT", s, "MIGRATING", redis.id_of(to)}).str == "OK");
  const RedisReply keys = redis.on(from, {"CLUSTER", "GETKEYSINSLOT", s, "1000"});
  int moved = 0;
  for (const RedisReply& k : keys.elements) {
    if (migrate_keys >= 0 && moved == migrate_keys) break;
    const RedisReply r = redis.on(from, {"MIGRATE", to.host, std::to_string(to.port), k.str, "0", "5000"});
    BOOST_TEST_REQUIRE(r.str == "OK", "MIGRATE " << k.str << ": " << r.str);
    ++moved;
  }
  if (leave_migrating) return;
  for (const RedisAddress& node : redis.nodes())
    BOOST_TEST_REQUIRE(redis.on(node, {"CLUSTER", "SETSLOT", s, "NODE", redis.id_of(to)}).str == "OK");
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_key_goes_to_the_slot_redis_computes_hash_tags_included) {
  TestRedis& redis = shared_redis();
  const RedisAddress node = redis.nodes().front();
  const std::vector<std::string> keys{"",
                                      "a",
                                      "session:12345678",
                                      "{user1000}.following",
                                      "foo{}{bar}",
                                      "foo{{bar}}zap",
                                      "{bar",
                                      "shms:{s-42}:owner",
                                      std::string("bin\0ary", 7)};
  for (const std::string& k : keys)
    BOOST_TEST(redis_key_slot(k) == redis.on(node, {"CLUSTER", "KEYSLOT", k}).integer, "key '" << k << "'");
  for (int i = 0; i < 2000; ++i)
    BOOST_TEST_REQUIRE(redis_key_slot(key_of(i)) == redis.on(node, {"CLUSTER", "KEYSLOT", key_of(i)}).integer);
  BOOST_TEST(redis_key_slot("shms:{abc}:owner") == redis_key_slot("shms:{abc}:data"));
}

BOOST_AUTO_TEST_CASE(commands_reach_the_master_of_their_slot_on_every_master) {
  TestRedis& redis = shared_redis();
  RedisCluster cluster(parse_redis_addresses(redis.seeds()));
  BOOST_TEST(cluster.is_cluster());
  BOOST_TEST(cluster.masters().size() == 3u);
  for (int i = 0; i < 3000; ++i) {
    const RedisReply r = cluster.command(key_of(i), {"SET", key_of(i), "v" + std::to_string(i)});
    BOOST_TEST_REQUIRE(r.str == "OK", key_of(i) << ": " << r.str);
  }
  BOOST_TEST(cluster.stats().moved == 0u);
  std::map<std::string, long long> per_master;
  long long total = 0;
  for (const RedisAddress& m : cluster.masters()) {
    per_master[m.text()] = redis.on(m, {"DBSIZE"}).integer;
    total += per_master[m.text()];
    BOOST_TEST(per_master[m.text()] > 500, m.text() << " holds " << per_master[m.text()] << " of 3000 keys");
  }
  BOOST_TEST(total == 3000);
  for (int i = 0; i < 3000; i += 7) {
    BOOST_TEST_REQUIRE(cluster.command(key_of(i), {"GET", key_of(i)}).str == "v" + std::to_string(i));
    const RedisAddress owner = cluster.master_of(redis_key_slot(key_of(i)));
    BOOST_TEST_REQUIRE(redis.on(owner, {"GET", key_of(i)}).str == "v" + std::to_string(i));
  }
}

BOOST_AUTO_TEST_CASE(a_moved_slot_is_followed_and_the_map_read_again) {
  TestRedis redis(3, 0);
  RedisCluster cluster(parse_redis_addresses(redis.seeds()));
  const std::string key = "{moving}:value";
  const std::uint16_t slot = redis_key_slot(key);
  BOOST_TEST_REQUIRE(cluster.command(key, {"SET", key, "before"}).str == "OK");
  const RedisAddress from = cluster.master_of(slot);
  RedisAddress to;
  for (const RedisAddress& m : cluster.masters())
    if (m != from) to = m;
  move_slot(redis, slot, from, to, false);  // behind the client's back
  BOOST_TEST(cluster.master_of(slot) == from);
  const std::uint64_t refreshes = cluster.stats().map_refreshes;
  BOOST_TEST(cluster.command(key, {"GET", key}).str == "before");
  BOOST_TEST(cluster.stats().moved == 1u);
  BOOST_TEST(cluster.stats().map_refreshes > refreshes);
  BOOST_TEST(cluster.master_of(slot) == to);
  BOOST_TEST(cluster.command(key, {"SET", key, "after"}).str == "OK");
  BOOST_TEST(redis.on(to, {"GET", key}).str == "after");
  BOOST_TEST(cluster.stats().moved == 1u);
}

BOOST_AUTO_TEST_CASE(a_key_of_a_migrating_slot_is_asked_for_on_the_importing_node) {
  TestRedis redis(3, 0);
  RedisCluster cluster(parse_redis_addresses(redis.seeds()));
  const std::string moved_key = "{half}:a";
  const std::string stayed_key = "{half}:b";
  BOOST_TEST_REQUIRE(cluster.command(moved_key, {"SET", moved_key, "1"}).str == "OK");
  BOOST_TEST_REQUIRE(cluster.command(stayed_key, {"SET", stayed_key, "2"}).str == "OK");
  const std::uint16_t slot = redis_key_slot(moved_key);
  const RedisAddress from = cluster.master_of(slot);
  RedisAddress to;
  for (const RedisAddress& m : cluster.masters())
    if (m != from) to = m;
  // Migrate one of the two keys and leave the slot migrating.
  const RedisReply keys = redis.on(from, {"CLUSTER", "GETKEYSINSLOT", std::to_string(slot), "10"});
  BOOST_TEST_REQUIRE(keys.elements.size() == 2u);
  move_slot(redis, slot, from, to, true, 1);
  const std::string gone = keys.elements[0].str;
  const std::string here = keys.elements[1].str;
  BOOST_TEST(cluster.command(gone, {"GET", gone}).str == (gone == moved_key ? "1" : "2"));
  BOOST_TEST(cluster.stats().asked == 1u);
  BOOST_TEST(cluster.command(here, {"GET", here}).str == (here == moved_key ? "1" : "2"));
  BOOST_TEST(cluster.stats().asked == 1u, "a key still on the migrating node is served there");
  BOOST_TEST(cluster.master_of(slot) == from, "ASK does not change the map");
}

BOOST_AUTO_TEST_CASE(a_killed_master_is_replaced_by_its_replica_and_commands_follow) {
  TestRedis redis(3, 1);
  RedisCluster cluster(parse_redis_addresses(redis.seeds()));
  BOOST_TEST_REQUIRE(cluster.masters().size() == 3u);
  for (int i = 0; i < 300; ++i) BOOST_TEST_REQUIRE(cluster.command(key_of(i), {"SET", key_of(i), "x"}).str == "OK");
  const RedisAddress victim = cluster.master_of(redis_key_slot(key_of(0)));
  // Every write reached the replicas before the kill: WAIT on the
  // connection that wrote to each master (WAIT counts that connection's
  // writes), until its replica acknowledged them.
  for (const RedisAddress& m : cluster.masters()) {
    int i = 0;
    while (cluster.master_of(redis_key_slot(key_of(i))) != m) ++i;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (cluster.command(key_of(i), {"WAIT", "1", "500"}).integer < 1)
      BOOST_TEST_REQUIRE((std::chrono::steady_clock::now() < deadline), m.text() << "'s replica never caught up");
  }
  redis.kill(victim);
  // The client retries (map re-read, short waits) until the replica has
  // taken the slots: within its retry budget, no sleep here.
  for (int i = 0; i < 300; ++i) {
    const RedisReply r = cluster.command("n:" + key_of(i), {"INCR", "n:" + key_of(i)});
    BOOST_TEST_REQUIRE((r.type == RedisReply::Type::Integer), key_of(i) << ": " << r.str);
    BOOST_TEST_REQUIRE(cluster.command(key_of(i), {"GET", key_of(i)}).str == "x", key_of(i));
  }
  BOOST_TEST(cluster.stats().retried >= 1u);
  const RedisAddress promoted = cluster.master_of(redis_key_slot(key_of(0)));
  BOOST_TEST(promoted != victim);
  BOOST_TEST(cluster.masters().size() == 3u);
  for (const RedisAddress& m : cluster.masters()) BOOST_TEST(m != victim);
}

BOOST_AUTO_TEST_CASE(scripts_run_by_sha_and_again_by_source_where_a_node_lost_them) {
  TestRedis& redis = shared_redis();
  RedisCluster cluster(parse_redis_addresses(redis.seeds()));
  const RedisScript script("redis.call('SET', KEYS[1], ARGV[1]); return redis.call('INCR', KEYS[2])");
  const std::vector<std::string> keys{"{s}:value", "{s}:count"};
  RedisReply r = cluster.eval(script, keys, {"a"});
  BOOST_TEST(r.integer == 1);
  r = cluster.eval(script, keys, {"b"});
  BOOST_TEST(r.integer == 2);
  BOOST_TEST(cluster.stats().noscript == 0u);
  BOOST_TEST(redis.on(cluster.master_of(redis_key_slot(keys[0])), {"SCRIPT", "FLUSH"}).str == "OK");
  r = cluster.eval(script, keys, {"c"});
  BOOST_TEST(r.integer == 3);
  BOOST_TEST(cluster.stats().noscript == 1u);
  BOOST_TEST(cluster.command(keys[0], {"GET", keys[0]}).str == "c");
  BOOST_TEST((test::code_of([&] { cluster.eval(script, {"{s}:a", "{t}:b"}, {}); }) == Errc::InvalidArgument));
  const RedisReply bad = cluster.eval(RedisScript("return redis.call('NOSUCHCOMMAND')"), {"{s}:x"}, {});
  BOOST_TEST(bad.is_error());
}

BOOST_AUTO_TEST_CASE(a_standalone_redis_is_one_node_holding_every_slot) {
  TestRedis redis(0, 0);
  RedisCluster one(parse_redis_addresses(redis.seeds()));
  BOOST_TEST(!one.is_cluster());
  BOOST_TEST(one.masters().size() == 1u);
  for (int i = 0; i < 100; ++i) BOOST_TEST_REQUIRE(one.command(key_of(i), {"SET", key_of(i), "1"}).str == "OK");
  BOOST_TEST(redis.on(redis.nodes().front(), {"DBSIZE"}).integer == 100);
  // Keys of different slots are refused even where one node holds them:
  // the same code must run on a cluster.
  BOOST_TEST((test::code_of([&] {
                one.eval(RedisScript("return redis.call('EXISTS', KEYS[1], KEYS[2])"), {"k:1", "k:2"}, {});
              }) == Errc::InvalidArgument));
  BOOST_TEST(one.eval(RedisScript("return redis.call('EXISTS', KEYS[1], KEYS[2])"), {"{k}:1", "{k}:2"}, {}).integer ==
             0);
}

BOOST_AUTO_TEST_CASE(bad_addresses_and_dead_servers_get_clear_errors) {
  BOOST_TEST((test::code_of([] { parse_redis_addresses(""); }) == Errc::InvalidArgument));
  BOOST_TEST((test::code_of([] { parse_redis_addresses("localhost"); }) == Errc::InvalidArgument));
  BOOST_TEST((test::code_of([] { parse_redis_addresses("h:0"); }) == Errc::InvalidArgument));
  BOOST_TEST((test::code_of([] { parse_redis_addresses("h:70000"); }) == Errc::InvalidArgument));
  BOOST_TEST((test::code_of([] { parse_redis_addresses("h:1,"); }) == Errc::InvalidArgument));
  BOOST_TEST((test::code_of([] { parse_redis_addresses("h:x1"); }) == Errc::InvalidArgument));
  const std::vector<RedisAddress> two = parse_redis_addresses("a:1,[::1]:6379");
  BOOST_TEST_REQUIRE(two.size() == 2u);
  BOOST_TEST(two[1].host == "::1");
  BOOST_TEST(two[1].port == 6379);

  std::uint16_t port = 0;
  {
    TestRedis gone(0, 0);
    port = gone.nodes().front().port;
  }  // killed: nothing listens there now
  RedisClusterOptions quick;
  quick.retry_budget = std::chrono::milliseconds(300);
  const std::string why = test::message_of([&] { RedisCluster dead({{"127.0.0.1", port}}, quick); });
  BOOST_TEST(why.find("127.0.0.1:" + std::to_string(port)) != std::string::npos, why);
  BOOST_TEST((test::code_of([&] { RedisCluster dead({{"127.0.0.1", port}}, quick); }) == Errc::Io));
}

BOOST_AUTO_TEST_CASE(a_cluster_that_loses_a_master_without_replica_fails_commands_of_its_slots_with_io) {
  TestRedis redis(3, 0);
  RedisClusterOptions quick;
  quick.retry_budget = std::chrono::milliseconds(500);
  RedisCluster cluster(parse_redis_addresses(redis.seeds()), quick);
  const RedisAddress victim = cluster.master_of(redis_key_slot(key_of(0)));
  redis.kill(victim);
  const std::string why = test::message_of([&] { cluster.command(key_of(0), {"GET", key_of(0)}); });
  BOOST_TEST((test::code_of([&] { cluster.command(key_of(0), {"GET", key_of(0)}); }) == Errc::Io));
  BOOST_TEST(why.find("GET") != std::string::npos, why);
}
