// Idle expiry. Time passes through the segment clock's test seam
// (shm/detail/clock.hpp), so a session idles for a minute in no time and a
// slow or loaded machine cannot make a test fail: the real time that passes
// meanwhile is far below every margin here (seconds against a 60 s timeout).
#include <boost/test/unit_test.hpp>

#include <cstdint>

#include "shm/detail/clock.hpp"
#include "shm/store.hpp"
#include "test/support/test_support.hpp"

using namespace shmsession;
using shm::detail::set_test_clock_offset_ms;
using shm::detail::TestClock;
using shmsession::test::SegmentGuard;

namespace {

constexpr std::uint32_t kIdleTimeoutS = 60;

Store make(const SegmentGuard& g) {
  return make_store(g, {.size_bytes = 8 << 20, .shards = 8, .default_idle_timeout_s = kIdleTimeoutS});
}

// Moves this process's segment clock forward; back to the real clock when
// the test ends (the offset is per process, and the tests share one).
struct SegmentTime {
  std::int64_t offset_ms = 0;
  void pass_seconds(std::int64_t s) {
    offset_ms += s * 1000;
    set_test_clock_offset_ms(TestClock::kSegment, offset_ms);
  }
  ~SegmentTime() { set_test_clock_offset_ms(TestClock::kSegment, 0); }
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(expired_session_reads_as_absent_and_sweep_frees_it, SegmentTime) {
  SegmentGuard g("exp");
  Store s = make(g);
  s.create_session("short");
  s.create_session("forever", 0);
  s.commit("short", CommitBatch{}.put("a", std::string(1000, 'a')));
  s.commit("forever", CommitBatch{}.put("a", "b"));
  std::uint64_t used = s.stats().used_bytes;
  pass_seconds(kIdleTimeoutS + 1);
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

// Five touches 40 s apart: 200 s in all, more than three idle timeouts; the
// untouched session beside it shows that the time really passed.
BOOST_FIXTURE_TEST_CASE(access_keeps_a_session_alive, SegmentTime) {
  SegmentGuard g("alive");
  Store s = make(g);
  s.create_session("busy");
  s.create_session("idle");
  for (int i = 0; i < 5; ++i) {
    pass_seconds(40);
    BOOST_TEST(s.touch("busy"));
  }
  BOOST_TEST(s.expire() == 1u);  // "idle"
  BOOST_TEST(s.read("busy").has_value());
  BOOST_TEST(!s.read("idle").has_value());
}

BOOST_FIXTURE_TEST_CASE(create_over_an_expired_session_starts_fresh, SegmentTime) {
  SegmentGuard g("recreate");
  Store s = make(g);
  s.create_session("x");
  s.commit("x", CommitBatch{}.put("old", "1"));
  pass_seconds(kIdleTimeoutS + 1);
  BOOST_TEST(s.create_session("x"));
  auto snap = s.read("x");
  BOOST_REQUIRE(snap);
  BOOST_TEST(snap->version == 0u);
  BOOST_TEST(snap->attributes.empty());
  BOOST_TEST(s.stats().sessions == 1u);
  BOOST_TEST(s.stats().expirations == 1u);
}

// Peeks and describes 25 s apart: at 75 s the session is 25 s past its last
// access (the commit), though 25 s after the last peek.
BOOST_FIXTURE_TEST_CASE(peek_and_describe_do_not_keep_a_session_alive, SegmentTime) {
  SegmentGuard g("peek");
  Store s = make(g);
  s.create_session("watched");
  s.commit("watched", CommitBatch{}.put("a", "1"));
  for (int i = 0; i < 2; ++i) {
    pass_seconds(25);
    std::optional<SessionSnapshot> seen = s.peek("watched");
    BOOST_REQUIRE(seen.has_value());
    BOOST_REQUIRE(seen->find("a") != nullptr);
    BOOST_TEST(seen->find("a")->value == "1");
    BOOST_TEST(s.describe("watched").has_value());
  }
  pass_seconds(25);
  BOOST_TEST(!s.peek("watched"));
  BOOST_TEST(!s.describe("watched"));
  BOOST_TEST(s.expire() == 1u);
}
