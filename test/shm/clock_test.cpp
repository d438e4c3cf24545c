// The store's clock: a wall-clock step (an operator's date, NTP) changes
// no lease and no idle expiry; time passing on the segment clock does.
// Both clocks are driven through the test seam of shm/detail/clock.hpp.
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdint>

#include "shm/detail/clock.hpp"
#include "shm/store.hpp"
#include "test/support/test_support.hpp"

using namespace shmsession;
using shm::detail::set_test_clock_offset_ms;
using shm::detail::TestClock;
using shmsession::test::ChildProcess;
using shmsession::test::code_of;
using shmsession::test::SegmentGuard;

namespace {

constexpr std::int64_t kHour = 3'600'000;

CreateOptions options() {
  CreateOptions o;
  o.size_bytes = 4 << 20;
  o.reserve = false;
  o.lock_lease_ms = kHour;  // the longest lease: real time never reaches it here
  return o;
}

// Runs `body` in a child whose clocks are shifted as given; returns its
// exit status.
int in_child_with_clocks(std::int64_t wall_offset, std::int64_t segment_offset, const std::function<int()>& body) {
  ChildProcess child([&] {
    set_test_clock_offset_ms(TestClock::kWall, wall_offset);
    set_test_clock_offset_ms(TestClock::kSegment, segment_offset);
    return body();
  });
  return child.wait();
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_wall_clock_step_neither_revokes_a_holder_nor_stops_a_lease) {
  SegmentGuard g("lease_step");
  Store holder = Store::create(g.name(), options());
  holder.create_session("s", 0);  // never idle: only the lease may end the hold
  const LockToken token = holder.acquire("s", std::chrono::seconds(10));
  auto wait_briefly = [&] {
    Store mine = Store::attach(g.name());
    return code_of([&] { mine.acquire("s", std::chrono::milliseconds(100)); }) == Errc::LockTimeout ? 0 : 1;
  };
  auto wait_for_grant = [&] {
    Store mine = Store::attach(g.name());
    mine.acquire("s", std::chrono::seconds(30));
    return 0;
  };
  // A waiter asks for the lock: the holder's lease starts.
  BOOST_REQUIRE(in_child_with_clocks(0, 0, wait_briefly) == 0);
  BOOST_TEST(holder.release_requested("s", token));
  // The wall clock jumps 2 hours ahead (past the 1-hour lease) and back:
  // the holder keeps its lock.
  BOOST_TEST(in_child_with_clocks(2 * kHour, 0, wait_briefly) == 0);
  BOOST_TEST(in_child_with_clocks(-2 * kHour, 0, wait_briefly) == 0);
  BOOST_TEST(!code_of([&] { holder.commit("s", token, CommitBatch{}.put("k", "still mine")); }));
  // The lease still runs out with the time that really passes (a wall
  // clock stepped back changes nothing to that).
  BOOST_TEST(in_child_with_clocks(-2 * kHour, kHour + 1000, wait_for_grant) == 0);
  BOOST_TEST((code_of([&] { holder.commit("s", token, CommitBatch{}.put("k", "late")); }) == Errc::StaleToken));
}

BOOST_AUTO_TEST_CASE(a_wall_clock_step_does_not_expire_a_session) {
  SegmentGuard g("idle_step");
  Store s = Store::create(g.name(), options());
  s.create_session("idle", 60);
  set_test_clock_offset_ms(TestClock::kWall, 2 * kHour);
  BOOST_TEST(s.describe("idle").has_value());
  BOOST_TEST(s.expire() == 0u);
  set_test_clock_offset_ms(TestClock::kSegment, 61'000);  // a minute passes, idle
  BOOST_TEST(!s.describe("idle").has_value());
  BOOST_TEST(s.expire() == 1u);
  set_test_clock_offset_ms(TestClock::kWall, 0);
  set_test_clock_offset_ms(TestClock::kSegment, 0);
}
