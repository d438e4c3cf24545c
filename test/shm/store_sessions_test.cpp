// Session operations of one process: create, read, commit, remove, iterate.
#include <boost/test/unit_test.hpp>

#include <sched.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include <xxhash.h>

#include "shm/detail/test_hooks.hpp"
#include "shm/recovery.hpp"
#include "shm/store.hpp"
#include "test/support/segment_damage.hpp"
#include "test/support/test_support.hpp"

using shmsession::test::code_of;

using namespace shmsession;
using shmsession::test::SegmentGuard;

namespace {

struct Fixture {
  SegmentGuard guard{"sess"};
  Store store = make();

  Store make() { return make_store(guard, {.size_bytes = 64 << 20, .shards = 4, .change_log_capacity = 1024}); }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(sessions, Fixture)

BOOST_AUTO_TEST_CASE(new_session_is_empty_at_version_zero) {
  BOOST_TEST(store.create_session("s"));
  BOOST_TEST(!store.create_session("s"));
  auto snap = store.read("s");
  BOOST_REQUIRE(snap);
  BOOST_TEST(snap->version == 0u);
  BOOST_TEST(snap->attributes.empty());
  BOOST_TEST(snap->idle_timeout_s == 1800u);
  BOOST_TEST(snap->incarnation > 0u);
  BOOST_TEST(!store.read("other"));
}

BOOST_AUTO_TEST_CASE(commit_bumps_version_and_keeps_untouched_attributes) {
  store.create_session("s", 60);
  BOOST_TEST(store.commit("s", CommitBatch{}.put("a", "1").put("b", "2").put("c", "3")) == 1u);
  BOOST_TEST(store.commit("s", CommitBatch{}.put("b", "22").remove("c").put("d", "4", kAttributeImmutable)) == 2u);
  auto snap = store.read("s");
  BOOST_REQUIRE(snap);
  BOOST_TEST(snap->version == 2u);
  BOOST_TEST(snap->idle_timeout_s == 60u);
  BOOST_REQUIRE(snap->attributes.size() == 3u);
  BOOST_TEST(snap->find("a")->value == "1");
  BOOST_TEST(snap->find("a")->version == 1u);
  BOOST_TEST(snap->find("b")->value == "22");
  BOOST_TEST(snap->find("b")->version == 2u);
  BOOST_TEST(snap->find("c") == nullptr);
  BOOST_TEST(snap->find("d")->flags == kAttributeImmutable);
}

// A Client hands the store the checksum it computed to compare the value
// (AttributeWrite::checksum): the store keeps that one. The dispatching
// XXH3 gives XXH3_64bits's hash at every length (the scalar, SSE2 and AVX2
// code paths change at 16, 128, 240 bytes and with each stripe).
BOOST_AUTO_TEST_CASE(a_commit_keeps_the_checksum_its_caller_computed) {
  std::string value;
  for (std::size_t n = 0; n <= 3000; ++n) {
    BOOST_TEST(attribute_checksum(value) == XXH3_64bits(value.data(), value.size()), n);
    value.push_back(static_cast<char>(n * 131 + 7));
  }
  store.create_session("s");
  const std::string cart(1400, 'c');
  BOOST_TEST(store.commit("s", CommitBatch{}.put("cart", cart, 0, attribute_checksum(cart))) == 1u);
  BOOST_TEST(store.read("s")->find("cart")->value == cart);
  // A wrong one is kept too: the value then reads as damaged.
  BOOST_TEST(store.commit("s", CommitBatch{}.put("cart", cart + "x", 0, attribute_checksum(cart))) == 2u);
  BOOST_TEST((code_of([&] { store.read("s"); }) == Errc::Corrupt));
}

BOOST_AUTO_TEST_CASE(read_of_named_subset_skips_absent_names) {
  store.create_session("s");
  store.commit("s", CommitBatch{}.put("a", "1").put("b", "2").put("c", "3"));
  std::string_view names[] = {"c", "zz", "a"};
  auto snap = store.read("s", names);
  BOOST_REQUIRE(snap);
  BOOST_REQUIRE(snap->attributes.size() == 2u);
  BOOST_TEST(snap->attributes[0].name == "a");
  BOOST_TEST(snap->attributes[1].name == "c");
  // read_into reuses a snapshot that held more.
  SessionSnapshot reuse = *store.read("s");
  BOOST_TEST(store.read_into("s", names, reuse));
  BOOST_TEST(reuse.attributes.size() == 2u);
}

// A lock holder catching its copy up: nothing while the session stays at
// the version seen; then every attribute listed, the values the copy holds
// at that version left out; all of them after a remove and re-create.
BOOST_AUTO_TEST_CASE(read_moved_copies_only_what_the_copy_lacks) {
  store.create_session("s");
  store.commit("s", CommitBatch{}.put("a", "1").put("b", "2").put("c", "3"));
  LockToken token = *store.try_acquire("s");
  const SessionVersion seen = *store.version("s");
  SessionSnapshot out = *store.read("s");
  const std::array<KnownAttribute, 3> known{{{"a", 1}, {"b", 1}, {"c", 1}}};
  BOOST_TEST(store.read_moved("s", token, seen, known, out));
  BOOST_TEST(out.version == 1u);
  BOOST_TEST(out.attributes.empty());

  store.commit("s", token, CommitBatch{}.put("b", "22").remove("c").put("d", "4"));
  BOOST_TEST(store.read_moved("s", token, seen, known, out));
  BOOST_TEST(out.version == 2u);
  BOOST_REQUIRE(out.attributes.size() == 3u);
  BOOST_TEST(out.find("a")->value_omitted);
  BOOST_TEST(out.find("a")->value.empty());
  BOOST_TEST(out.find("a")->version == 1u);
  BOOST_TEST(!out.find("b")->value_omitted);
  BOOST_TEST(out.find("b")->value == "22");
  BOOST_TEST(out.find("d")->value == "4");
  BOOST_TEST(out.find("c") == nullptr);
  store.release("s", token);

  store.remove_session("s");
  store.create_session("s");
  store.commit("s", CommitBatch{}.put("a", "new"));
  token = *store.try_acquire("s");
  BOOST_TEST(store.read_moved("s", token, {2, seen.incarnation}, known, out));
  BOOST_REQUIRE(out.attributes.size() == 1u);
  BOOST_TEST(!out.find("a")->value_omitted);  // same name and version, another incarnation
  BOOST_TEST(out.find("a")->value == "new");
  BOOST_TEST(
      (code_of([&] { store.read_moved("s", LockToken{token.value + 1}, seen, known, out); }) == Errc::StaleToken));
  BOOST_TEST(!store.read_moved("gone", token, seen, known, out));
}

// A follower's catch-up (the sync agent's): as read_moved, with no lock
// held (another process may hold it) and the last access left as it was.
BOOST_AUTO_TEST_CASE(peek_moved_copies_only_what_the_copy_lacks_and_touches_nothing) {
  store.create_session("s");
  store.commit("s", CommitBatch{}.put("a", "1").put("b", "2"));
  const SessionVersion seen = *store.version("s");
  const std::array<KnownAttribute, 2> known{{{"a", 1}, {"b", 1}}};
  SessionSnapshot out;
  BOOST_TEST(store.peek_moved("s", seen, known, out));
  BOOST_TEST(out.attributes.empty());

  const LockToken token = *store.try_acquire("s");  // held by someone else: no matter
  store.commit("s", token, CommitBatch{}.put("b", "22"));
  const std::uint64_t accessed = store.peek("s")->last_access_unix_ms;
  // A touch from now on would move the last access by 20 ms or more (the
  // figure read back may move by 1 ms: the segment's clock is boot time,
  // converted to wall time when read).
  const auto wall_ms = [] {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
  };
  while (wall_ms() < accessed + 20) std::this_thread::yield();
  BOOST_TEST(store.peek_moved("s", seen, known, out));
  BOOST_TEST(out.version == 2u);
  BOOST_REQUIRE(out.attributes.size() == 2u);
  BOOST_TEST(out.find("a")->value_omitted);
  BOOST_TEST(out.find("b")->value == "22");
  BOOST_TEST(out.find("b")->version == 2u);
  BOOST_TEST(store.peek("s")->last_access_unix_ms <= accessed + 1);
  store.read("s");  // a touch, for contrast
  BOOST_TEST(store.peek("s")->last_access_unix_ms >= accessed + 19);
  BOOST_TEST(!store.peek_moved("gone", seen, known, out));
}

BOOST_AUTO_TEST_CASE(values_are_binary_safe) {
  store.create_session("s");
  std::string bin;
  for (int i = 0; i < 256; ++i) bin.push_back(static_cast<char>(i));
  store.commit("s", CommitBatch{}.put("bin", bin).put("empty", ""));
  auto snap = store.read("s");
  BOOST_TEST(snap->find("bin")->value == bin);
  BOOST_TEST(snap->find("empty")->value.empty());
}

BOOST_AUTO_TEST_CASE(batch_that_changes_nothing_keeps_the_version) {
  store.create_session("s");
  store.commit("s", CommitBatch{}.put("a", "1"));
  BOOST_TEST(store.commit("s", CommitBatch{}) == 1u);
  BOOST_TEST(store.commit("s", CommitBatch{}.remove("never")) == 1u);
  BOOST_TEST(store.stats().commits == 1u);
}

BOOST_AUTO_TEST_CASE(bad_batches_are_refused_and_change_nothing) {
  store.create_session("s");
  store.commit("s", CommitBatch{}.put("a", "1"));
  BOOST_TEST((code_of([&] { store.commit("s", CommitBatch{}.put("a", "2").put("a", "3")); }) == Errc::InvalidArgument));
  BOOST_TEST((code_of([&] { store.commit("s", CommitBatch{}.put("a", "2").remove("a")); }) == Errc::InvalidArgument));
  BOOST_TEST((code_of([&] { store.commit("s", CommitBatch{}.put("", "2")); }) == Errc::InvalidArgument));
  BOOST_TEST(
      (code_of([&] { store.commit("s", CommitBatch{}.put(std::string(256, 'n'), "2")); }) == Errc::InvalidArgument));
  BOOST_TEST((code_of([&] { store.commit("s", CommitBatch{}.put("tab\there", "2")); }) == Errc::InvalidArgument));
  BOOST_TEST((code_of([&] { store.commit("missing", CommitBatch{}.put("a", "2")); }) == Errc::NotFound));
  auto snap = store.read("s");
  BOOST_TEST(snap->version == 1u);
  BOOST_TEST(snap->find("a")->value == "1");
}

BOOST_AUTO_TEST_CASE(bad_session_ids_are_invalid) {
  for (std::string bad : {std::string(""), std::string(129, 'x'), std::string("new\nline"), std::string("\x7f"),
                          std::string("caf\xc3\xa9")}) {
    BOOST_TEST((code_of([&] { store.create_session(bad); }) == Errc::InvalidArgument));
    BOOST_TEST((code_of([&] { store.read(bad); }) == Errc::InvalidArgument));
    BOOST_TEST((code_of([&] { store.commit(bad, CommitBatch{}); }) == Errc::InvalidArgument));
    BOOST_TEST((code_of([&] { store.remove_session(bad); }) == Errc::InvalidArgument));
  }
  BOOST_TEST(store.create_session(std::string(128, 'x')));
  BOOST_TEST(store.create_session("with space ~!@#$%^&*()"));
}

BOOST_AUTO_TEST_CASE(commit_if_version_refuses_a_moved_session) {
  store.create_session("s");
  BOOST_TEST(*store.commit_if_version("s", 0, CommitBatch{}.put("n", "1")) == 1u);
  BOOST_TEST(!store.commit_if_version("s", 0, CommitBatch{}.put("n", "x")));
  BOOST_TEST(store.read("s")->find("n")->value == "1");
  BOOST_TEST(*store.commit_if_version("s", 1, CommitBatch{}.put("n", "2")) == 2u);
}

BOOST_AUTO_TEST_CASE(version_follows_commits_and_incarnations) {
  BOOST_TEST(!store.version("s"));
  store.create_session("s");
  SessionVersion v0 = *store.version("s");
  BOOST_TEST(v0.version == 0u);
  store.commit("s", CommitBatch{}.put("a", "1"));
  BOOST_TEST(store.version("s")->version == 1u);
  BOOST_TEST(store.version("s")->incarnation == v0.incarnation);
  store.remove_session("s");
  store.create_session("s");
  BOOST_TEST(store.version("s")->version == 0u);
  BOOST_TEST(store.version("s")->incarnation != v0.incarnation);
}

BOOST_AUTO_TEST_CASE(remove_touch_and_describe) {
  store.create_session("s");
  store.commit("s", CommitBatch{}.put("a", "12345").put("b", "1", kAttributeImmutable));
  auto info = store.describe("s");
  BOOST_REQUIRE(info);
  BOOST_TEST(info->version == 1u);
  BOOST_TEST(info->attribute_count == 2u);
  BOOST_TEST(info->payload_bytes == 6u);
  BOOST_REQUIRE(info->attributes.size() == 2u);
  BOOST_TEST(info->attributes[0].name == "a");
  BOOST_TEST(info->attributes[0].size == 5u);
  BOOST_TEST(info->attributes[1].flags == kAttributeImmutable);
  BOOST_TEST(store.touch("s"));
  const std::uint64_t before = store.read("s")->incarnation;
  BOOST_TEST(store.remove_session("s"));
  BOOST_TEST(!store.remove_session("s"));
  BOOST_TEST(!store.touch("s"));
  BOOST_TEST(!store.describe("s"));
  BOOST_TEST(store.stats().sessions == 0u);
  // Created again: a new incarnation starting from version 0.
  store.create_session("s");
  BOOST_TEST(store.read("s")->version == 0u);
  BOOST_TEST(store.read("s")->incarnation > before);
}

BOOST_AUTO_TEST_CASE(many_sessions_grow_the_tables_and_stay_findable) {
  constexpr int kSessions = 20000;  // 4 shards of 16 initial buckets: several grows each
  for (int i = 0; i < kSessions; ++i) {
    std::string id = "sess-" + std::to_string(i);
    BOOST_REQUIRE(store.create_session(id));
    if (i % 7 == 0) store.commit(id, CommitBatch{}.put("i", std::to_string(i)));
  }
  BOOST_TEST(store.stats().sessions == std::uint64_t{kSessions});
  for (int i = 0; i < kSessions; ++i) {
    auto snap = store.read("sess-" + std::to_string(i));
    BOOST_REQUIRE(snap);
    if (i % 7 == 0) BOOST_TEST(snap->find("i")->value == std::to_string(i));
  }
  std::set<std::string> seen;
  store.for_each_session([&](const SessionInfo& info) {
    seen.insert(info.id);
    return true;
  });
  BOOST_TEST(seen.size() == std::size_t{kSessions});
  int visited = 0;
  store.for_each_session([&](const SessionInfo&) { return ++visited < 10; });
  BOOST_TEST(visited == 10);
  BOOST_TEST(store.remove_all_sessions() == std::uint64_t{kSessions});
  BOOST_TEST(store.stats().sessions == 0u);
  BOOST_TEST(!store.read("sess-1"));
}

BOOST_AUTO_TEST_CASE(random_commits_match_a_model) {
  std::mt19937 rng(42);
  std::map<std::string, std::map<std::string, std::string>> model;
  for (int i = 0; i < 50; ++i) {
    std::string id = "m" + std::to_string(i);
    store.create_session(id);
    model[id];
  }
  for (int step = 0; step < 5000; ++step) {
    std::string id = "m" + std::to_string(rng() % 50);
    CommitBatch batch;
    std::set<std::string> used;
    for (int k = 0, n = 1 + rng() % 4; k < n; ++k) {
      std::string name = "attr" + std::to_string(rng() % 12);
      if (!used.insert(name).second) continue;
      if (rng() % 4 == 0) {
        batch.remove(name);
        model[id].erase(name);
      } else {
        std::string value(rng() % 300, static_cast<char>('a' + rng() % 26));
        batch.put(name, value);
        model[id][name] = value;
      }
    }
    store.commit(id, batch);
  }
  for (const auto& [id, attrs] : model) {
    auto snap = store.read(id);
    BOOST_REQUIRE(snap);
    BOOST_REQUIRE(snap->attributes.size() == attrs.size());
    for (const auto& [name, value] : attrs) BOOST_TEST(snap->find(name)->value == value);
  }
  std::uint64_t attributes = 0;
  for (const auto& [id, attrs] : model) attributes += attrs.size();
  BOOST_TEST(store.stats().attributes == attributes);
}

// A value damaged in the segment (one bit flipped, as a stray write would)
// is never handed out: every path that copies values out verifies the
// value's checksum and refuses it with Corrupt, naming the session and the
// attribute, while the session's sound attributes stay readable by name.
BOOST_AUTO_TEST_CASE(a_damaged_value_is_refused_by_every_read) {
  const std::string damaged = "damaged-value:" + std::string(300, 'q') + ":end";
  store.create_session("s1");
  store.commit("s1", CommitBatch{}.put("cart", damaged).put("profile", "sound profile"));
  store.create_session("s2");
  store.commit("s2", CommitBatch{}.put("cart", "another session, untouched"));
  BOOST_TEST_REQUIRE(store.read("s1")->find("cart")->value == damaged);
  BOOST_TEST_REQUIRE(shmsession::test::flip_in_segment(guard.name(), damaged, 100) == 1u);

  auto refused = [&](const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      const std::string what = e.what();
      BOOST_TEST((e.code() == Errc::Corrupt));
      BOOST_TEST(what.find("'cart'") != std::string::npos, what);
      BOOST_TEST(what.find("'s1'") != std::string::npos, what);
      return;
    }
    BOOST_FAIL("the damaged value was handed out");
  };
  const std::array<std::string_view, 1> cart{"cart"};
  const std::array<std::string_view, 1> profile{"profile"};
  SessionSnapshot out;
  refused([&] { store.read("s1"); });
  refused([&] { store.read("s1", cart); });
  refused([&] { store.peek("s1"); });
  refused([&] { store.peek("s1", cart); });
  refused([&] { store.read_into("s1", {}, out); });
  LockToken token = *store.try_acquire("s1");
  refused([&] { store.read("s1", token); });
  refused([&] { store.read_into("s1", token, cart, out); });
  refused([&] { store.read_moved("s1", token, SessionVersion{}, {}, out); });
  store.release("s1", token);

  BOOST_TEST(store.peek("s1", profile)->find("profile")->value == "sound profile");
  BOOST_TEST(store.read("s2")->find("cart")->value == "another session, untouched");
  BOOST_TEST(store.describe("s1")->attributes.size() == 2u);  // names and sizes, no value handed out
  CheckReport report = check_store(store);
  BOOST_TEST(report.damaged_sessions == 1u);
  BOOST_TEST(report.damaged_ids == std::vector<std::string>{"s1"});
  BOOST_TEST(!report.clean());
}

// A flipped bit in the attribute table (a value's offset pointing past the
// blob) is refused by bounds before any byte is read there.
BOOST_AUTO_TEST_CASE(a_damaged_attribute_table_is_refused_by_reads) {
  const std::string value = "table-damage-value:" + std::string(64, 'w');
  store.create_session("t1");
  store.commit("t1", CommitBatch{}.put("only", value));
  {
    shmsession::test::MappedSegment segment(guard.name());
    std::vector<std::size_t> at = segment.find_all(value);
    BOOST_TEST_REQUIRE(at.size() == 1u);
    // Layout (segment_format.hpp): BlobHeader (32), one AttributeEntry (24)
    // whose first field is the value's 32-bit offset, the name "only", the value.
    const std::size_t blob = at[0] - 32 - 24 - 4;
    std::uint32_t magic = 0;
    std::memcpy(&magic, segment.data() + blob, sizeof magic);
    BOOST_TEST_REQUIRE(magic == 0x424C4F42u);  // kBlobMagic
    segment.data()[blob + 32 + 3] ^= 0x40;     // value_offset += 1 << 30
  }
  BOOST_TEST((code_of([&] { store.read("t1"); }) == Errc::Corrupt));
  BOOST_TEST((code_of([&] { store.peek("t1"); }) == Errc::Corrupt));
  BOOST_TEST((code_of([&] { store.describe("t1"); }) == Errc::Corrupt));
  // The listing leaves it out rather than sum the sizes of a table that
  // leads outside the blob (the payload is not stored apart since layout 9).
  std::vector<std::string> listed;
  store.for_each_session([&](const SessionInfo& info) {
    listed.push_back(info.id);
    return true;
  });
  BOOST_TEST(listed.empty());
  BOOST_TEST(check_store(store).damaged_sessions == 1u);
  // Writes refuse it too: a commit would merge through that table.
  BOOST_TEST((code_of([&] { store.commit("t1", CommitBatch{}.put("other", "x")); }) == Errc::Corrupt));
}

// The attribute table of layout 9 (segment_format.md, Blob): a 32-byte
// header, 24 bytes per attribute, each name just before its value; the
// sizes the listing and describe report are summed from that table.
BOOST_AUTO_TEST_CASE(blob_layout_keeps_each_name_just_before_its_value) {
  const std::string big = "layout-value-big:" + std::string(100, 'b');
  const std::string small = "layout-value-small";
  store.create_session("lay");
  store.commit("lay", CommitBatch{}.put("zeta", small, kAttributeImmutable).put("alpha", big).put("mid", ""));
  {
    shmsession::test::MappedSegment segment(guard.name());
    std::vector<std::size_t> at = segment.find_all(big);
    BOOST_TEST_REQUIRE(at.size() == 1u);
    // Entries sorted by name: alpha, mid, zeta; alpha's name and value come first.
    const std::size_t blob = at[0] - 5 - 3 * 24 - 32;
    BOOST_TEST(std::memcmp(segment.data() + at[0] - 5, "alpha", 5) == 0);
    std::uint32_t header[4];  // magic, attr_count, size, capacity
    std::memcpy(header, segment.data() + blob, sizeof header);
    BOOST_TEST_REQUIRE(header[0] == 0x424C4F42u);  // kBlobMagic
    BOOST_TEST(header[1] == 3u);
    BOOST_TEST(header[2] == ((32 + 3 * 24 + 5 + big.size() + 3 + 4 + small.size() + 7) & ~std::size_t{7}));
    BOOST_TEST(header[3] >= header[2]);
    const char* names[] = {"alpha", "mid", "zeta"};
    const std::string* values[] = {&big, nullptr, &small};
    for (int e = 0; e < 3; ++e) {
      const unsigned char* entry = segment.data() + blob + 32 + 24 * e;
      std::uint32_t value_offset = 0, value_size = 0;
      std::uint16_t flags = 0;
      std::memcpy(&value_offset, entry, 4);
      std::memcpy(&value_size, entry + 4, 4);
      std::memcpy(&flags, entry + 22, 2);
      const std::size_t name_size = std::strlen(names[e]);
      BOOST_TEST(entry[20] == name_size);
      BOOST_TEST(std::memcmp(segment.data() + blob + value_offset - name_size, names[e], name_size) == 0);
      BOOST_TEST(value_size == (values[e] ? values[e]->size() : 0u));
      if (values[e]) BOOST_TEST(std::memcmp(segment.data() + blob + value_offset, values[e]->data(), value_size) == 0);
      BOOST_TEST(flags == (e == 2 ? kAttributeImmutable : 0u));
    }
  }
  const auto info = store.describe("lay");
  BOOST_REQUIRE(info);
  BOOST_TEST(info->payload_bytes == big.size() + small.size());
  BOOST_TEST(store.stats().payload_bytes == big.size() + small.size());
  const auto snap = store.read("lay");
  BOOST_REQUIRE(snap);
  BOOST_TEST(snap->find("zeta")->flags == kAttributeImmutable);
  BOOST_TEST(snap->find("alpha")->value == big);
  BOOST_TEST(check_store(store).clean());
}

// Flags are kept in 16 bits: a commit asking for more is refused whole and
// changes nothing (never stored cut, which would hand back other flags).
BOOST_AUTO_TEST_CASE(flags_beyond_16_bits_are_refused) {
  store.create_session("fl");
  store.commit("fl", CommitBatch{}.put("a", "1", 0x8001u));
  BOOST_TEST(store.read("fl")->find("a")->flags == 0x8001u);
  BOOST_TEST((code_of([&] { store.commit("fl", CommitBatch{}.put("a", "2", 1u << 16)); }) == Errc::InvalidArgument));
  BOOST_TEST(
      (code_of([&] { store.commit("fl", CommitBatch{}.put("b", "2", 0xFFFF'FFFFu)); }) == Errc::InvalidArgument));
  const auto snap = store.read("fl");
  BOOST_TEST(snap->version == 1u);
  BOOST_TEST(snap->attributes.size() == 1u);
  BOOST_TEST(snap->find("a")->value == "1");
}

// The creation date is kept in whole seconds (layout 9): shown, never compared.
BOOST_AUTO_TEST_CASE(creation_date_is_whole_seconds) {
  const auto unix_now_ms = [] {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
  };
  const std::uint64_t before = unix_now_ms();
  store.create_session("cd");
  const std::uint64_t after = unix_now_ms();
  const auto info = store.describe("cd");
  BOOST_REQUIRE(info);
  BOOST_TEST(info->created_unix_ms % 1000 == 0u);
  BOOST_TEST(info->created_unix_ms >= before / 1000 * 1000);
  BOOST_TEST(info->created_unix_ms <= after);
  BOOST_TEST(store.read("cd")->created_unix_ms == info->created_unix_ms);
}

// A flipped bit in a chain link (the link now leads 2^54 bytes away) used
// to crash the writers, which followed links unchecked: a commit, create or
// remove of a session beyond it, and the table's growth. Each now either
// works or throws Corrupt (run in a child, so a crash fails the test
// instead of the suite), and the sessions before the cut stay writable.
BOOST_AUTO_TEST_CASE(writers_survive_a_broken_chain_link) {
  CreateOptions o;
  o.size_bytes = 16 << 20;
  o.shards = 1;
  SegmentGuard g("brokenwrite");
  {
    Store small = Store::create(g.name(), o);
    for (int i = 0; i < 12; ++i) small.create_session("w" + std::to_string(i));  // 16 buckets: some chains of 2
  }
  {
    shmsession::test::MappedSegment segment(g.name());
    BOOST_TEST_REQUIRE(shmsession::test::break_a_chain_link(segment), "no record with a successor");
  }
  shmsession::test::ChildProcess writer([&] {
    Store mine = Store::attach(g.name());
    int corrupt = 0, worked = 0;
    auto attempt = [&](const std::function<void()>& f) {
      try {
        f();
        ++worked;
      } catch (const Error& e) {
        if (e.code() != Errc::Corrupt && e.code() != Errc::NotFound) throw;
        ++corrupt;
      }
    };
    for (int i = 0; i < 12; ++i) {
      const std::string id = "w" + std::to_string(i);
      attempt([&] { mine.commit(id, CommitBatch{}.put("a", std::string(100, 'a'))); });
      attempt([&] {
        if (std::optional<LockToken> t = mine.try_acquire(id)) mine.release(id, *t);
      });
    }
    for (int i = 12; i < 60; ++i) attempt([&] { mine.create_session("w" + std::to_string(i)); });  // grows the table
    for (int i = 0; i < 60; i += 5) attempt([&] { mine.remove_session("w" + std::to_string(i)); });
    check_store(mine);
    return corrupt > 0 && worked > 0 ? 0 : 1;
  });
  BOOST_TEST(writer.wait() == 0);
}

// The sessions of a shard differ in size. Commits that go round them keep
// reusing the shard's spare blob rather than allocating a block each: a
// spare too small for a commit gives way to the larger blob that commit
// frees, and blobs built in the spare keep its capacity, so after a few
// rounds every commit fits (before, the smallest blob stayed the spare and
// every larger session's commit allocated one).
std::atomic<int> g_commit_allocations{0};

BOOST_AUTO_TEST_CASE(commits_of_sessions_of_different_sizes_reuse_the_spare) {
  if (!shm::detail::kTestHooksCompiled) {
    BOOST_TEST_MESSAGE("needs SHMSESSION_TEST_HOOKS (counts the commits that allocate)");
    return;
  }
  // One CPU throughout: a shard keeps a spare per CPU (a process moved to
  // another CPU meets that CPU's spare, which has yet to grow).
  shmsession::test::PinnedToCpu pinned;
  SegmentGuard g("spare_reuse");
  Store s = make_store(g, {.size_bytes = 8 << 20, .shards = 1});
  const std::array<std::pair<const char*, std::size_t>, 3> sessions{{{"a", 1000}, {"b", 1100}, {"c", 1200}}};
  auto round = [&](int r) {
    for (const auto& [id, size] : sessions)
      s.commit(id, CommitBatch{}.put("v", std::string(size, static_cast<char>('a' + r % 26))));
  };
  for (const auto& [id, size] : sessions) s.create_session(id);
  for (int r = 0; r < 4; ++r) round(r);  // the spare grows to fit
  g_commit_allocations = 0;
  shm::detail::set_test_hook([](shm::detail::HookPoint p) {
    if (p == shm::detail::HookPoint::kCommitAllocated) ++g_commit_allocations;
  });
  for (int r = 4; r < 24; ++r) round(r);
  shm::detail::set_test_hook(nullptr);
  BOOST_TEST(g_commit_allocations.load() == 0);
  BOOST_TEST(s.peek("c")->find("v")->value == std::string(1200, static_cast<char>('a' + 23)));
}

BOOST_AUTO_TEST_SUITE_END()
