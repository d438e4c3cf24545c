// shmctl locks / unlock --force against real lock holders and waiters in
// other processes.
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <thread>

#include <boost/json.hpp>

#include "shm/store.hpp"
#include "test/support/test_support.hpp"
#include "test/tools/shmctl_harness.hpp"

using namespace shmsession;
using namespace std::chrono_literals;
using namespace shmsession::test;
namespace json = boost::json;

BOOST_AUTO_TEST_CASE(locks_shows_holder_queue_and_release_request_and_unlock_revokes) {
  SegmentGuard g("ctl_locks");
  BOOST_TEST_REQUIRE(shmctl({"create", g.name(), "--size", "16M", "--lock-lease", "0"}).exit_code == 0);
  BOOST_TEST_REQUIRE(shmctl({"put", g.name(), "cart-1", "items", "3"}).exit_code == 0);
  BOOST_TEST(shmctl_json({"locks", g.name()}).as_array().empty());

  Signal holding, revoked, waiter_got;
  ChildProcess holder([&] {
    Store mine = Store::attach(g.name());
    LockToken t = mine.acquire("cart-1", 60s);
    holding.notify();
    if (!revoked.wait(120s)) return 1;
    try {
      mine.commit("cart-1", t, CommitBatch{}.put("items", "stale"));
    } catch (const Error& e) {
      return e.code() == Errc::StaleToken ? 0 : 2;
    }
    return 3;
  });
  BOOST_TEST_REQUIRE(holding.wait(60s));
  ChildProcess waiter([&] {
    Store mine = Store::attach(g.name());
    LockToken t = mine.acquire("cart-1", 120s);
    mine.commit("cart-1", t, CommitBatch{}.put("items", "4"));
    waiter_got.notify();
    for (;;) ::pause();
    return 0;
  });

  // Wait until the waiter shows in the queue.
  json::array locks;
  for (int i = 0; i < 2000; ++i) {
    locks = shmctl_json({"locks", g.name()}).as_array();
    if (!locks.empty() && !locks[0].at("queue").as_array().empty()) break;
    std::this_thread::sleep_for(5ms);
  }
  BOOST_REQUIRE(locks.size() == 1u);
  const json::object& l = locks[0].as_object();
  BOOST_TEST(l.at("session").as_string() == "cart-1");
  BOOST_TEST(l.at("holder_pid").to_number<pid_t>() == holder.pid());
  std::uint64_t old_token = l.at("token").to_number<std::uint64_t>();
  BOOST_TEST(old_token > 0u);
  BOOST_TEST(l.at("release_requested").as_bool());
  BOOST_REQUIRE(l.at("queue").as_array().size() == 1u);
  BOOST_TEST(l.at("queue").as_array()[0].to_number<pid_t>() == waiter.pid());

  CommandResult text = shmctl({"locks", g.name()});
  BOOST_TEST(text.out.find("SESSION") != std::string::npos);
  BOOST_TEST(text.out.find(std::to_string(holder.pid())) != std::string::npos);

  // Without --force: refused. With it: revoked and handed to the waiter.
  BOOST_TEST(shmctl({"unlock", g.name(), "cart-1"}).exit_code == 2);
  BOOST_TEST(shmctl_json({"unlock", g.name(), "cart-1", "--force"}).at("revoked").as_bool());
  BOOST_TEST(waiter_got.wait(60s));
  revoked.notify();
  BOOST_TEST(holder.wait() == 0);

  json::array after = shmctl_json({"locks", g.name()}).as_array();
  BOOST_REQUIRE(after.size() == 1u);
  BOOST_TEST(after[0].at("holder_pid").to_number<pid_t>() == waiter.pid());
  BOOST_TEST(after[0].at("token").to_number<std::uint64_t>() > old_token);
  BOOST_TEST(!after[0].at("release_requested").as_bool());
  CommandResult value = shmctl({"get", g.name(), "cart-1", "items"});
  BOOST_TEST(value.out == "4");
  BOOST_TEST(shmctl_json({"info", g.name()}).at("lock_revocations").to_number<int>() == 1);
}

BOOST_AUTO_TEST_CASE(unlock_errors_are_one_line) {
  SegmentGuard g("ctl_unlock");
  BOOST_TEST_REQUIRE(shmctl({"create", g.name(), "--size", "16M"}).exit_code == 0);
  BOOST_TEST_REQUIRE(shmctl({"put", g.name(), "s", "a", "1"}).exit_code == 0);
  check_one_line_error(shmctl({"unlock", g.name(), "s", "--force"}), 1);
  check_one_line_error(shmctl({"unlock", g.name(), "nope", "--force"}), 1);
  check_one_line_error(shmctl({"locks", g.name() + "x"}), 1);
  CommandResult bad_lease = shmctl({"create", g.name() + "y", "--lock-lease", "99999999"});
  BOOST_TEST(bad_lease.exit_code != 0);
  BOOST_TEST(is_one_line_error(bad_lease), bad_lease.err);
}
