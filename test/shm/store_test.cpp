// Store lifecycle: create, attach, remove, names, options, header checks.
#include <boost/test/unit_test.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>

#include <boost/interprocess/managed_shared_memory.hpp>

#include "shm/detail/process_identity.hpp"
#include "shm/detail/segment_format.hpp"
#include "shm/store.hpp"
#include "test/support/test_support.hpp"

using shmsession::test::code_of;

using namespace shmsession;
using shmsession::test::ChildProcess;
using shmsession::test::SegmentGuard;

namespace {

CreateOptions small() {
  CreateOptions o;
  o.size_bytes = 8 << 20;
  o.shards = 16;
  o.change_log_capacity = 64;
  return o;
}

// Files in /dev/shm whose name starts with `prefix` (a store and its drafts).
std::vector<std::string> shm_files(const std::string& prefix) {
  std::vector<std::string> out;
  DIR* dir = ::opendir("/dev/shm");
  BOOST_REQUIRE(dir != nullptr);
  while (const dirent* e = ::readdir(dir))
    if (std::string_view(e->d_name).substr(0, prefix.size()) == prefix) out.emplace_back(e->d_name);
  ::closedir(dir);
  return out;
}

// Bytes of memory backing the segment's file (what `du` shows).
std::uint64_t backed_bytes(const std::string& name) {
  struct stat st {};
  BOOST_REQUIRE(::stat(("/dev/shm/" + name).c_str(), &st) == 0);
  return static_cast<std::uint64_t>(st.st_blocks) * 512;
}

// Commits 64 KiB values until the store refuses one; returns the code.
std::optional<Errc> fill(Store& s) {
  s.create_session("fill");
  const std::string value(64 << 10, 'f');
  for (int i = 0;; ++i) {
    std::optional<Errc> code = code_of([&] { s.commit("fill", CommitBatch{}.put("v" + std::to_string(i), value)); });
    if (code) return code;
  }
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
  BOOST_TEST((with([](CreateOptions& o) { o.shards = 1 << 17; }) == Errc::InvalidArgument));
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
  struct stat st {};
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
    h->layout_version = shm::detail::kLayoutVersion + 1;
  }
  try {
    Store::attach(g.name());
    BOOST_FAIL("attached a segment of another layout");
  } catch (const Error& e) {
    BOOST_TEST((e.code() == Errc::LayoutMismatch));
    std::string what = e.what();
    BOOST_TEST(what.find("layout version " + std::to_string(shm::detail::kLayoutVersion + 1)) != std::string::npos,
               what);
    BOOST_TEST(what.find("layout version " + std::to_string(shm::detail::kLayoutVersion)) != std::string::npos, what);
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

// Boost sizes a new segment after creating its file and leaves a 1-byte
// file behind when sizing fails; a failed create must leave nothing, so the
// name can be created again at once.
BOOST_AUTO_TEST_CASE(a_failed_create_leaves_nothing_under_the_name) {
  SegmentGuard g("failed");
  for (std::uint64_t size :
       {std::uint64_t{1} << 62, std::uint64_t{1} << 63, ~std::uint64_t{0}, std::uint64_t{100000} << 30}) {
    CreateOptions o;
    o.size_bytes = size;
    std::optional<Errc> code = code_of([&] { Store::create(g.name(), o); });
    BOOST_TEST((code == Errc::Io || code == Errc::InvalidArgument), size);
    BOOST_TEST(!Store::exists(g.name()), size);
    BOOST_TEST(shm_files(g.name()).empty(), size);
  }
  Store s = Store::create(g.name(), small());
  BOOST_TEST(s.create_session("after"));
}

// A creator killed while building leaves its draft (never the store's
// name); the next create of the name removes it, and leaves the drafts of
// live creators alone.
BOOST_AUTO_TEST_CASE(a_killed_creators_draft_is_removed_by_the_next_create) {
  SegmentGuard g("draft");
  ChildProcess dead([] { return 0; });
  BOOST_REQUIRE(dead.wait() == 0);
  const std::string abandoned = g.name() + "~creating." + std::to_string(dead.pid()) + ".1.0";
  const shm::detail::ProcessIdentity self = shm::detail::self_identity();
  const std::string live =
      g.name() + "~creating." + std::to_string(self.pid) + "." + std::to_string(self.start_time) + ".999";
  for (const std::string& f : {abandoned, live}) {
    int fd = ::shm_open(("/" + f).c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    BOOST_REQUIRE(fd >= 0);
    ::close(fd);
  }
  Store s = Store::create(g.name(), small());
  std::vector<std::string> left = shm_files(g.name());
  std::sort(left.begin(), left.end());
  BOOST_TEST(left == (std::vector<std::string>{g.name(), live}), boost::test_tools::per_element());
  ::shm_unlink(("/" + live).c_str());
}

// README and store.hpp promise: a reserved store takes its whole size from
// memory at creation; an unreserved one only what it touched.
BOOST_AUTO_TEST_CASE(a_store_reserves_its_memory_unless_told_not_to) {
  SegmentGuard reserved("reserved"), sparse("sparse");
  CreateOptions o;
  o.size_bytes = 64 << 20;
  Store a = Store::create(reserved.name(), o);
  BOOST_TEST(backed_bytes(reserved.name()) >= o.size_bytes);
  o.reserve = false;
  Store b = Store::create(sparse.name(), o);
  BOOST_TEST(backed_bytes(sparse.name()) < o.size_bytes / 4);
  // Pages come as they are touched, and the store works as any other.
  const std::uint64_t before = backed_bytes(sparse.name());
  b.create_session("s");
  b.commit("s", CommitBatch{}.put("v", std::string(4 << 20, 'v')));
  BOOST_TEST(backed_bytes(sparse.name()) >= before + (4 << 20));
  BOOST_TEST(b.read("s")->attributes.at(0).value.size() == std::size_t{4 << 20});
}

// What reserving buys, on a /dev/shm of 8 MiB (a tmpfs mounted over it in a
// private mount namespace; needs CAP_SYS_ADMIN, else reported and skipped):
// a reserved store larger than /dev/shm is refused at create, leaving
// nothing; one that fits ends in SegmentFull; an unreserved one larger than
// /dev/shm is created, and the commit that touches a page tmpfs cannot back
// kills its process with SIGBUS.
BOOST_AUTO_TEST_CASE(reserving_turns_a_full_dev_shm_into_errors_instead_of_sigbus) {
  ChildProcess namespaced([] {
    if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=8m") != 0)
      return 77;
    CreateOptions o;
    o.size_bytes = 16 << 20;
    if (code_of([&] { Store::create("big_reserved", o); }) != Errc::Io) return 1;
    if (!shm_files("big_reserved").empty()) return 2;
    o.size_bytes = 6 << 20;
    {
      Store fits = Store::create("fits", o);
      if (fill(fits) != Errc::SegmentFull) return 3;
      if (!fits.read("fill")) return 4;
    }
    Store::remove("fits");
    ChildProcess writer([] {
      std::signal(SIGBUS, SIG_DFL);  // Boost.Test's handler would report it as a failed check
      CreateOptions sparse;
      sparse.size_bytes = 16 << 20;
      sparse.reserve = false;
      Store s = Store::create("big_sparse", sparse);
      fill(s);
      return 0;  // not reached: tmpfs runs out of pages first
    });
    return writer.wait() == 128 + SIGBUS ? 0 : 5;
  });
  const int status = namespaced.wait();
  if (status == 77) {
    BOOST_TEST_MESSAGE("skipped: cannot mount a small tmpfs over /dev/shm here (needs CAP_SYS_ADMIN)");
    return;
  }
  BOOST_TEST(status == 0);
}

// The documented minimum size works with the default settings, which are
// sized to fit it.
BOOST_AUTO_TEST_CASE(the_minimum_size_works_with_default_settings) {
  SegmentGuard g("minimum"), big("defaults");
  CreateOptions o;
  o.size_bytes = kMinSegmentBytes;
  Store s = Store::create(g.name(), o);
  BOOST_TEST(s.info().shard_count == 16u);
  BOOST_TEST(s.info().change_log_capacity == 512u);
  BOOST_TEST(s.stats().free_bytes > kMinSegmentBytes / 2);
  BOOST_TEST(s.create_session("a"));
  s.commit("a", CommitBatch{}.put("k", std::string(100 << 10, 'k')));
  // From 32 MiB up, the defaults are what they always were.
  o.size_bytes = 32 << 20;
  o.reserve = false;
  Store b = Store::create(big.name(), o);
  BOOST_TEST(b.info().shard_count == 256u);
  BOOST_TEST(b.info().change_log_capacity == 16384u);
}

// attached_processes finds who has the segment mapped, whether it created
// the store (its mapping is of the draft, linked under the name) or
// attached it, never the caller, and forgets a process once it is gone.
BOOST_AUTO_TEST_CASE(attached_processes_are_the_live_creator_and_attachers) {
  SegmentGuard g("attached");
  BOOST_TEST(Store::attached_processes(g.name()).empty());  // no such store
  test::Signal created, attached;
  ChildProcess creator([&] {
    Store s = Store::create(g.name(), small());
    created.notify();
    for (;;) ::pause();
    return 0;
  });
  BOOST_REQUIRE(created.wait(std::chrono::seconds(30)));
  ChildProcess attacher([&] {
    Store s = Store::attach(g.name());
    attached.notify();
    for (;;) ::pause();
    return 0;
  });
  BOOST_REQUIRE(attached.wait(std::chrono::seconds(30)));
  Store mine = Store::attach(g.name());
  auto pids = [&] {
    std::vector<pid_t> out;
    for (const AttachedProcess& p : Store::attached_processes(g.name())) out.push_back(p.pid);
    return out;
  };
  std::vector<pid_t> both{creator.pid(), attacher.pid()};
  std::sort(both.begin(), both.end());
  BOOST_TEST(pids() == both, boost::test_tools::per_element());
  BOOST_TEST(Store::attached_processes(g.name()).front().command == "store_test");
  creator.kill(SIGKILL);
  creator.wait();
  BOOST_TEST(pids() == std::vector<pid_t>{attacher.pid()}, boost::test_tools::per_element());
}
