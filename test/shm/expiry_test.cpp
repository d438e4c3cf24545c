// Idle expiry. Expiry is wall-clock by design (a session idles for seconds),
// so these tests wait real seconds; nothing here times an operation.
#include <boost/test/unit_test.hpp>

#include <thread>

#include "shm/store.hpp"
#include "test/support/test_support.hpp"

using namespace shmsession;
using shmsession::test::SegmentGuard;
using namespace std::chrono_literals;

namespace {
Store make(const SegmentGuard& g) {
  CreateOptions o;
  o.size_bytes = 8 << 20;
  o.shards = 8;
  o.default_idle_timeout_s = 1;
  return Store::create(g.name(), o);
}
}  // namespace

BOOST_AUTO_TEST_CASE(expired_session_reads_as_absent_and_sweep_frees_it) {
  SegmentGuard g("exp");
  Store s = make(g);
  s.create_session("short");
  s.create_session("forever", 0);
  s.commit("short", CommitBatch{}.put("a", std::string(1000, 'a')));
  s.commit("forever", CommitBatch{}.put("a", "b"));
  std::uint64_t used = s.stats().used_bytes;
  std::this_thread::sleep_for(2100ms);
  BOOST_TEST(!s.read("short"));
  BOOST_TEST(!s.describe("short"));
  BOOST_TEST(!s.touch("short"));
  BOOST_CHECK_THROW(s.commit("short", CommitBatch{}.put("a", "x")), Error);
  BOOST_TEST(s.read("forever").has_value());
  int listed = 0;
  s.for_each_session([&](const SessionInfo& i) {
    BOOST_TEST(i.id == "forever");
    ++listed;
    return true;
  });
  BOOST_TEST(listed == 1);
  BOOST_TEST(s.expire() == 1u);
  BOOST_TEST(s.expire() == 0u);
  StoreStats st = s.stats();
  BOOST_TEST(st.sessions == 1u);
  BOOST_TEST(st.expirations == 1u);
  BOOST_TEST(st.used_bytes < used);
}

BOOST_AUTO_TEST_CASE(access_keeps_a_session_alive) {
  SegmentGuard g("alive");
  Store s = make(g);
  s.create_session("busy");
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(500ms);
    BOOST_TEST(s.touch("busy"));
  }
  BOOST_TEST(s.expire() == 0u);
  BOOST_TEST(s.read("busy").has_value());
}

BOOST_AUTO_TEST_CASE(create_over_an_expired_session_starts_fresh) {
  SegmentGuard g("recreate");
  Store s = make(g);
  s.create_session("x");
  s.commit("x", CommitBatch{}.put("old", "1"));
  std::this_thread::sleep_for(2100ms);
  BOOST_TEST(s.create_session("x"));
  auto snap = s.read("x");
  BOOST_REQUIRE(snap);
  BOOST_TEST(snap->version == 0u);
  BOOST_TEST(snap->attributes.empty());
  BOOST_TEST(s.stats().sessions == 1u);
  BOOST_TEST(s.stats().expirations == 1u);
}

BOOST_AUTO_TEST_CASE(peek_and_describe_do_not_keep_a_session_alive) {
  SegmentGuard g("peek");
  Store s = make(g);
  s.create_session("watched");
  s.commit("watched", CommitBatch{}.put("a", "1"));
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(500ms);
    if (i < 1) {
      BOOST_TEST(s.peek("watched")->find("a")->value == "1");
      BOOST_TEST(s.describe("watched").has_value());
    } else {
      s.peek("watched");
      s.describe("watched");
    }
  }
  BOOST_TEST(!s.peek("watched"));
  BOOST_TEST(s.expire() == 1u);
}
