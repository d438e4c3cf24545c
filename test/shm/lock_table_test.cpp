// The shards' lock-state tables (shm/detail/lock_table.cpp): a session has
// a lock state only while its lock is held, waited for or asked back; the
// slots are reused from a free list; a process killed while taking or
// giving one back leaves a table the next locker of the shard repairs; a
// full segment refuses a lock state clearly; damage is reported by check
// and cleared by a rebuild.
#include <boost/test/unit_test.hpp>

#include <cstdint>

#include <signal.h>

#include <cstring>
#include <string>
#include <vector>

#include "shm/detail/segment_format.hpp"
#include "shm/detail/test_hooks.hpp"
#include "shm/recovery.hpp"
#include "shm/store.hpp"
#include "test/shm/crash_hooks.hpp"
#include "test/support/segment_damage.hpp"
#include "test/support/test_support.hpp"

using namespace shmsession;
using namespace std::chrono_literals;
using shmsession::shm::detail::HookPoint;
using shmsession::test::code_of;
using shmsession::test::kill_child_at;
using shmsession::test::MappedSegment;
using shmsession::test::SegmentGuard;

namespace {

namespace fmt = shmsession::shm::detail;

Store make(const SegmentGuard& g, std::uint64_t bytes = 16 << 20) {
  // One shard: every session's lock state in the one table.
  return make_store(g, {.size_bytes = bytes, .shards = 1, .change_log_capacity = 64});
}

std::vector<std::string> sessions(Store& s, const std::string& prefix, int n) {
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) {
    ids.push_back(prefix + std::to_string(i));
    s.create_session(ids.back());
  }
  return ids;
}

// The record of session `id` in the mapped segment (the id follows the
// record; the change log holds the id too, without a record before it).
fmt::SessionRecord* find_record(MappedSegment& segment, const std::string& id) {
  for (std::size_t at : segment.find_all(id)) {
    if (at < sizeof(fmt::SessionRecord)) continue;
    // A record is 8-byte aligned; an id found elsewhere (a change-log slot,
    // a value) may not be, and is not a record to read.
    auto* place = segment.data() + at - sizeof(fmt::SessionRecord);
    if (reinterpret_cast<std::uintptr_t>(place) % alignof(fmt::SessionRecord) != 0) continue;
    auto* r = reinterpret_cast<fmt::SessionRecord*>(place);
    if (r->magic == fmt::kRecordMagic && r->id_size == id.size()) return r;
  }
  return nullptr;
}

// The one shard's lock table of a store made by make(), found from the
// header as segment_fuzz_test finds the root (Boost's own header precedes
// the segment manager that root_handle counts from).
fmt::LockTable* find_lock_table(MappedSegment& segment) {
  std::vector<std::size_t> headers = segment.find_all(std::string_view("SESSION1", 8));
  if (headers.size() != 1) return nullptr;
  const auto* header = reinterpret_cast<const fmt::SegmentHeader*>(segment.data() + headers[0]);
  for (std::size_t manager : {16, 8, 32, 0, 64}) {
    if (manager + header->root_handle + sizeof(fmt::StoreRoot) > segment.size()) continue;
    auto* root = reinterpret_cast<fmt::StoreRoot*>(segment.data() + manager + header->root_handle);
    if (root->shard_count == 1 && root->change_capacity == 64) return root->lock_tables.get();
  }
  return nullptr;
}

}  // namespace

BOOST_AUTO_TEST_CASE(lock_states_exist_only_while_needed_and_are_reused) {
  SegmentGuard g("locktable");
  Store s = make(g);
  std::vector<std::string> first = sessions(s, "a", 20);
  std::vector<std::string> second = sessions(s, "b", 20);
  BOOST_TEST(s.stats().lock_states == 0u);
  BOOST_TEST(s.stats().lock_state_slots == 0u);  // no lock yet: no table

  std::vector<LockToken> held;
  for (const std::string& id : first) held.push_back(s.acquire(id, 1s));
  StoreStats st = s.stats();
  BOOST_TEST(st.lock_states == 20u);
  BOOST_TEST(st.lock_state_slots == 48u);  // chunks of 16 and 32
  BOOST_TEST(check_store(s).lock_states == 20u);
  for (std::size_t i = 0; i < first.size(); ++i) s.release(first[i], held[i]);
  BOOST_TEST(s.stats().lock_states == 0u);
  const std::uint64_t used = s.stats().used_bytes;

  // Other sessions take the freed slots: the table does not grow.
  held.clear();
  for (const std::string& id : second) held.push_back(s.acquire(id, 1s));
  BOOST_TEST(s.stats().lock_states == 20u);
  BOOST_TEST(s.stats().lock_state_slots == 48u);
  BOOST_TEST(s.stats().used_bytes == used);
  // A token of a session whose lock state was given back is stale.
  BOOST_TEST((code_of([&] { s.commit(first[0], LockToken{1}, CommitBatch{}.put("x", "y")); }) == Errc::StaleToken));
  for (std::size_t i = 0; i < second.size(); ++i) s.release(second[i], held[i]);
  CheckReport report = check_store(s);
  BOOST_TEST(report.clean());
  BOOST_TEST(report.lock_states == 0u);
}

// A process killed after it took a slot off the free list and before the
// record referenced it: the repair gives the slot back, so the table is
// consistent and the slot is used again.
BOOST_AUTO_TEST_CASE(a_slot_taken_by_a_killed_process_returns_to_the_free_list) {
  SegmentGuard g("locktaken");
  Store s = make(g);
  std::vector<std::string> ids = sessions(s, "s", 16);
  kill_child_at(g.name(), HookPoint::kLockStateTaken, [](Store& m) { m.acquire("s0", 1s); });
  CheckReport report = check_store(s);  // the check's shard lock runs the repair
  BOOST_TEST(report.shard_repairs == 1u);
  BOOST_TEST(report.clean(), (report.problems.empty() ? std::string() : report.problems.front()));
  BOOST_TEST(s.stats().lock_states == 0u);
  // All 16 slots of the first chunk are free again: 16 locks fit in it.
  std::vector<LockToken> held;
  for (const std::string& id : ids) held.push_back(s.acquire(id, 1s));
  BOOST_TEST(s.stats().lock_state_slots == 16u);
  for (std::size_t i = 0; i < ids.size(); ++i) s.release(ids[i], held[i]);
  BOOST_TEST(check_store(s).clean());
}

// A process killed after the record let go of its slot and before the slot
// was back on the free list: the same repair.
BOOST_AUTO_TEST_CASE(a_slot_given_back_by_a_killed_process_returns_to_the_free_list) {
  SegmentGuard g("lockgiven");
  Store s = make(g);
  std::vector<std::string> ids = sessions(s, "s", 16);
  kill_child_at(g.name(), HookPoint::kLockStateGivenBack, [](Store& m) {
    LockToken t = m.acquire("s0", 1s);
    m.release("s0", t);
  });
  CheckReport report = check_store(s);
  BOOST_TEST(report.shard_repairs == 1u);
  BOOST_TEST(report.clean(), (report.problems.empty() ? std::string() : report.problems.front()));
  BOOST_TEST(s.stats().lock_states == 0u);
  std::vector<LockToken> held;
  for (const std::string& id : ids) held.push_back(s.acquire(id, 1s));
  BOOST_TEST(s.stats().lock_state_slots == 16u);
  for (std::size_t i = 0; i < ids.size(); ++i) s.release(ids[i], held[i]);
  BOOST_TEST(check_store(s).clean());
}

// The first lock of a shard needs a chunk of the table from the segment:
// in a full segment that is SegmentFull, and nothing is lost.
BOOST_AUTO_TEST_CASE(a_lock_state_in_a_full_segment_is_segment_full) {
  SegmentGuard g("lockfull");
  Store s = make(g, 1 << 20);
  s.create_session("big");
  s.commit("big", CommitBatch{}.put("v", std::string(64 << 10, 'b')));
  int n = 0;
  for (std::size_t value : {std::size_t{4096}, std::size_t{256}, std::size_t{0}}) {
    for (;;) {
      const std::string id = "f" + std::to_string(n);
      if (code_of([&] { s.create_session(id); }) == Errc::SegmentFull) break;
      ++n;
      if (value != 0 && code_of([&] { s.commit(id, CommitBatch{}.put("v", std::string(value, 'x'))); })) break;
    }
  }
  BOOST_TEST_REQUIRE(n > 0);
  BOOST_TEST((code_of([&] { s.acquire("f0", 1s); }) == Errc::SegmentFull));
  BOOST_TEST(s.stats().lock_states == 0u);
  BOOST_TEST(s.locks().empty());
  BOOST_TEST(s.read("big")->find("v")->value.size() == (64u << 10));
  BOOST_TEST(check_store(s).clean());
  // Room again: the lock is taken.
  s.remove_session("big");
  LockToken t = s.acquire("f0", 1s);
  BOOST_TEST(s.stats().lock_states == 1u);
  s.release("f0", t);
}

// A record's reference moved onto a free slot (a stray write): check names
// it, lock operations on the session refuse it clearly (Corrupt), and a
// rebuild clears it.
BOOST_AUTO_TEST_CASE(a_damaged_lock_reference_is_reported_and_rebuilt) {
  SegmentGuard g("lockref");
  Store s = make(g);
  sessions(s, "s", 3);
  LockToken held = s.acquire("s1", 1s);  // the table has a chunk; slot 1 is s1's
  {
    MappedSegment segment(g.name());
    fmt::SessionRecord* r = find_record(segment, "s2");
    BOOST_TEST_REQUIRE(r != nullptr);
    BOOST_TEST_REQUIRE(r->lock_slot == 0u);
    r->lock_slot = 5;  // a free slot
  }
  CheckReport report = check_store(s);
  BOOST_TEST(!report.clean());
  BOOST_TEST(report.damaged_lock_references == 1u);
  BOOST_TEST(report.damaged_lock_tables == 0u);
  BOOST_TEST((code_of([&] { s.acquire("s2", 1s); }) == Errc::Corrupt));
  BOOST_TEST((code_of([&] { s.commit("s2", LockToken{held.value}, CommitBatch{}.put("x", "y")); }) == Errc::Corrupt));
  BOOST_TEST(s.read("s2").has_value());                                 // reads without a token need no lock state
  BOOST_TEST(s.commit("s1", held, CommitBatch{}.put("x", "y")) == 1u);  // other sessions carry on

  RecoveryReport recovered = recover_store(s, false);
  BOOST_TEST(recovered.action == "rebuilt");
  BOOST_TEST(check_store(s).clean());
  LockToken t = s.acquire("s2", 1s);
  s.release("s2", t);
}

// The free list damaged (its head moved onto a slot in use): check
// reports the table, taking a lock state refuses it (Corrupt) instead of
// handing one slot to two sessions, and a rebuild builds the table anew.
BOOST_AUTO_TEST_CASE(a_damaged_free_list_is_reported_and_rebuilt) {
  SegmentGuard g("lockfree");
  Store s = make(g);
  sessions(s, "s", 3);
  LockToken held = s.acquire("s0", 1s);
  {
    MappedSegment segment(g.name());
    fmt::LockTable* table = find_lock_table(segment);
    BOOST_TEST_REQUIRE(table != nullptr);
    fmt::SessionRecord* r = find_record(segment, "s0");
    BOOST_TEST_REQUIRE(r != nullptr);
    BOOST_TEST_REQUIRE(r->lock_slot != 0u);
    table->free_head = r->lock_slot;
  }
  CheckReport report = check_store(s);
  BOOST_TEST(!report.clean());
  BOOST_TEST(report.damaged_lock_tables == 1u);
  BOOST_REQUIRE(!report.lock_table_damage.empty());
  BOOST_TEST(report.lock_table_damage.front().find("free list") != std::string::npos, report.lock_table_damage.front());
  BOOST_TEST((code_of([&] { s.acquire("s1", 1s); }) == Errc::Corrupt));
  BOOST_TEST(s.commit("s0", held, CommitBatch{}.put("x", "y")) == 1u);  // the holder is not disturbed

  BOOST_TEST(recover_store(s, false).action == "rebuilt");
  BOOST_TEST(check_store(s).clean());
  LockToken a = s.acquire("s1", 1s);
  LockToken b = s.acquire("s2", 1s);
  BOOST_TEST(s.stats().lock_states == 2u);
  s.release("s1", a);
  s.release("s2", b);
}
