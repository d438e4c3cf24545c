// A full segment refuses the commit with SegmentFull and damages nothing.
#include <boost/test/unit_test.hpp>

#include <vector>

#include "shm/store.hpp"
#include "test/support/test_support.hpp"

using namespace shmsession;
using shmsession::test::SegmentGuard;

namespace {

std::string value_for(int session, int round) {
  std::string v(3000, static_cast<char>('a' + (session + round) % 26));
  v += std::to_string(session) + "/" + std::to_string(round);
  return v;
}

Store make_small(const SegmentGuard& g) {
  return make_store(g, {.size_bytes = 1 << 20, .shards = 2, .change_log_capacity = 16});
}

void expect_full(const std::function<void()>& f) {
  try {
    f();
    BOOST_FAIL("expected SegmentFull");
  } catch (const Error& e) {
    BOOST_TEST((e.code() == Errc::SegmentFull));
    BOOST_TEST(std::string(e.what()).find("nothing was changed") != std::string::npos);
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(filling_a_small_segment_loses_nothing) {
  SegmentGuard g("full");
  Store s = make_small(g);
  std::vector<int> rounds;  // committed round per session
  int full_at = -1;
  for (int i = 0; i < 10000 && full_at < 0; ++i) {
    std::string id = "s" + std::to_string(i);
    try {
      if (!s.create_session(id)) BOOST_FAIL("duplicate");
    } catch (const Error& e) {
      BOOST_REQUIRE((e.code() == Errc::SegmentFull));
      full_at = i;
      break;
    }
    try {
      s.commit(id, CommitBatch{}.put("v", value_for(i, 0)));
      rounds.push_back(0);
    } catch (const Error& e) {
      BOOST_REQUIRE((e.code() == Errc::SegmentFull));
      rounds.push_back(-1);  // created, nothing committed
      full_at = i;
    }
  }
  BOOST_REQUIRE(full_at > 10);
  BOOST_TEST_MESSAGE("segment full after " << full_at << " sessions");

  // Every further growth is refused, and refused cleanly.
  expect_full([&] { s.commit("s0", CommitBatch{}.put("extra", std::string(64 << 10, 'x'))); });
  expect_full([&] {
    for (int i = 0; i < 1000; ++i) s.create_session("more" + std::to_string(i));
  });

  // Everything stored is intact and at its version.
  for (int i = 0; i < static_cast<int>(rounds.size()); ++i) {
    auto snap = s.read("s" + std::to_string(i));
    BOOST_REQUIRE(snap);
    if (rounds[i] < 0) {
      BOOST_TEST(snap->version == 0u);
    } else {
      BOOST_TEST(snap->version == 1u);
      BOOST_TEST(snap->find("v")->value == value_for(i, 0));
      BOOST_TEST(snap->find("extra") == nullptr);
    }
  }

  // Freeing space makes commits possible again.
  for (int i = 0; i < 10; ++i) BOOST_TEST(s.remove_session("s" + std::to_string(i)));
  s.commit("s20", CommitBatch{}.put("v", value_for(20, 1)));
  BOOST_TEST(s.read("s20")->find("v")->value == value_for(20, 1));
  BOOST_TEST(s.read("s20")->version == 2u);
}

BOOST_AUTO_TEST_CASE(a_value_larger_than_the_segment_is_segment_full) {
  SegmentGuard g("huge");
  Store s = make_small(g);
  s.create_session("s");
  s.commit("s", CommitBatch{}.put("small", "1"));
  expect_full([&] { s.commit("s", CommitBatch{}.put("big", std::string(2 << 20, 'b'))); });
  auto snap = s.read("s");
  BOOST_TEST(snap->version == 1u);
  BOOST_TEST(snap->attributes.size() == 1u);
}
