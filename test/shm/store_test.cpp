// Store lifecycle: create, attach, remove, names, options, header checks.
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/interprocess/managed_shared_memory.hpp>

#include "shm/detail/segment_format.hpp"
#include "shm/store.hpp"
#include "test/support/test_support.hpp"

using shmsession::test::code_of;

using namespace shmsession;
using shmsession::test::SegmentGuard;

namespace {

CreateOptions small() {
  CreateOptions o;
  o.size_bytes = 8 << 20;
  o.shards = 16;
  o.change_log_capacity = 64;
  return o;
}


}  // namespace

BOOST_AUTO_TEST_CASE(create_then_attach_sees_same_store) {
  SegmentGuard g("create");
  Store a = Store::create(g.name(), small());
  BOOST_TEST(Store::exists(g.name()));
  Store b = Store::attach(g.name());
  BOOST_TEST(a.info().store_id_hex() == b.info().store_id_hex());
  BOOST_TEST(b.info().layout_version == shm::detail::kLayoutVersion);
  BOOST_TEST(b.info().shard_count == 16u);
  BOOST_TEST(b.info().change_log_capacity == 64u);
  BOOST_TEST(b.info().size_bytes == std::uint64_t{8 << 20});
  BOOST_TEST(a.create_session("s1"));
  a.commit("s1", CommitBatch{}.put("k", "v"));
  auto snap = b.read("s1");
  BOOST_REQUIRE(snap);
  BOOST_TEST(snap->attributes.at(0).value == "v");
}

BOOST_AUTO_TEST_CASE(two_stores_have_different_ids) {
  SegmentGuard g1("id1"), g2("id2");
  BOOST_TEST(Store::create(g1.name(), small()).info().store_id_hex() !=
             Store::create(g2.name(), small()).info().store_id_hex());
}

BOOST_AUTO_TEST_CASE(create_existing_is_already_exists) {
  SegmentGuard g("dup");
  Store a = Store::create(g.name(), small());
  BOOST_TEST((code_of([&] { Store::create(g.name(), small()); }) == Errc::AlreadyExists));
  Store b = Store::open_or_create(g.name(), small());
  BOOST_TEST(a.info().store_id_hex() == b.info().store_id_hex());
}

BOOST_AUTO_TEST_CASE(attach_missing_is_not_found) {
  SegmentGuard g("missing");
  try {
    Store::attach(g.name());
    BOOST_FAIL("attached a missing store");
  } catch (const Error& e) {
    BOOST_TEST((e.code() == Errc::NotFound));
    BOOST_TEST(std::string(e.what()).find(g.name()) != std::string::npos);
  }
  BOOST_TEST(!Store::remove(g.name()));
  BOOST_TEST(!Store::exists(g.name()));
}

BOOST_AUTO_TEST_CASE(bad_store_names_are_invalid) {
  for (std::string bad : {std::string(""), std::string("a/b"), std::string(".hidden"), std::string(201, 'x'),
                          std::string("sp ace"), std::string("nul\0x", 5)}) {
    BOOST_TEST((code_of([&] { Store::create(bad, small()); }) == Errc::InvalidArgument), bad);
    BOOST_TEST((code_of([&] { Store::attach(bad); }) == Errc::InvalidArgument), bad);
    BOOST_TEST((code_of([&] { Store::remove(bad); }) == Errc::InvalidArgument), bad);
  }
}

BOOST_AUTO_TEST_CASE(bad_options_are_invalid) {
  SegmentGuard g("opts");
  auto with = [&](auto change) {
    CreateOptions o = small();
    change(o);
    return code_of([&] { Store::create(g.name(), o); });
  };
  BOOST_TEST((with([](CreateOptions& o) { o.size_bytes = 1000; }) == Errc::InvalidArgument));
  BOOST_TEST((with([](CreateOptions& o) { o.shards = 3; }) == Errc::InvalidArgument));
  BOOST_TEST((with([](CreateOptions& o) { o.shards = 0; }) == Errc::InvalidArgument));
  BOOST_TEST((with([](CreateOptions& o) { o.change_log_capacity = 2; }) == Errc::InvalidArgument));
  BOOST_TEST((with([](CreateOptions& o) { o.mode = 01777; }) == Errc::InvalidArgument));
  // Too small for what was asked: refused, and no half-made segment remains.
  BOOST_TEST((with([](CreateOptions& o) {
                o.size_bytes = 1 << 20;
                o.change_log_capacity = 1 << 20;
              }) == Errc::InvalidArgument));
  BOOST_TEST(!Store::exists(g.name()));
}

BOOST_AUTO_TEST_CASE(mode_defaults_to_0600_and_can_be_set) {
  SegmentGuard g1("mode1"), g2("mode2");
  Store::create(g1.name(), small());
  CreateOptions o = small();
  o.mode = 0640;
  Store::create(g2.name(), o);
  struct stat st{};
  BOOST_REQUIRE(::stat(("/dev/shm/" + g1.name()).c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 0777) == 0600u);
  BOOST_REQUIRE(::stat(("/dev/shm/" + g2.name()).c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 0777) == 0640u);
}

BOOST_AUTO_TEST_CASE(layout_mismatch_names_both_versions) {
  SegmentGuard g("layout");
  Store::create(g.name(), small());
  {
    // Pretend a future build made this segment.
    boost::interprocess::managed_shared_memory seg(boost::interprocess::open_only, g.name().c_str());
    auto* h = seg.find<shm::detail::SegmentHeader>(shm::detail::kHeaderObjectName).first;
    BOOST_REQUIRE(h);
    h->layout_version = 7;
  }
  try {
    Store::attach(g.name());
    BOOST_FAIL("attached a segment of another layout");
  } catch (const Error& e) {
    BOOST_TEST((e.code() == Errc::LayoutMismatch));
    std::string what = e.what();
    BOOST_TEST(what.find("layout version 7") != std::string::npos, what);
    BOOST_TEST(what.find("layout version " + std::to_string(shm::detail::kLayoutVersion)) != std::string::npos,
               what);
  }
}

BOOST_AUTO_TEST_CASE(foreign_segment_is_corrupt_not_a_hang) {
  SegmentGuard g("foreign");
  {
    // A Boost segment made by someone else: no shmsession header.
    boost::interprocess::managed_shared_memory seg(boost::interprocess::create_only, g.name().c_str(), 1 << 20);
  }
  BOOST_TEST((code_of([&] { Store::attach(g.name()); }) == Errc::Corrupt));
}

BOOST_AUTO_TEST_CASE(zeroed_shm_object_is_corrupt) {
  SegmentGuard g("zero");
  int fd = ::shm_open(("/" + g.name()).c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  BOOST_REQUIRE(fd >= 0);
  BOOST_REQUIRE(::ftruncate(fd, 1 << 20) == 0);
  ::close(fd);
  BOOST_TEST((code_of([&] { Store::attach(g.name()); }) == Errc::Corrupt));
}

BOOST_AUTO_TEST_CASE(remove_unlinks_but_attached_processes_keep_working) {
  SegmentGuard g("remove");
  Store a = Store::create(g.name(), small());
  BOOST_TEST(Store::remove(g.name()));
  BOOST_TEST(!Store::exists(g.name()));
  BOOST_TEST(a.create_session("still"));
  BOOST_TEST(a.read("still").has_value());
}

BOOST_AUTO_TEST_CASE(stats_count_sessions_attributes_and_bytes) {
  SegmentGuard g("stats");
  Store s = Store::create(g.name(), small());
  StoreStats empty = s.stats();
  BOOST_TEST(empty.sessions == 0u);
  BOOST_TEST(empty.free_bytes > 0u);
  BOOST_TEST(empty.used_bytes + empty.free_bytes == empty.size_bytes);
  s.create_session("a");
  s.create_session("b");
  s.commit("a", CommitBatch{}.put("x", std::string(100, 'x')).put("y", "yy"));
  s.commit("b", CommitBatch{}.put("z", "z"));
  StoreStats st = s.stats();
  BOOST_TEST(st.sessions == 2u);
  BOOST_TEST(st.attributes == 3u);
  BOOST_TEST(st.payload_bytes == 103u);
  BOOST_TEST(st.commits == 2u);
  BOOST_TEST(st.used_bytes > empty.used_bytes);
  BOOST_TEST(st.lock_recoveries == 0u);
}
