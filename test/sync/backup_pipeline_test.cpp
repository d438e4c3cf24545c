// DeltaSource -> StandbyApplier in one process (no network yet): a standby
// store converges on the primary while writers commit, after log overflow,
// a damaged delta and a lost one.
#include <boost/test/unit_test.hpp>

#include <random>

#include "shm/replica.hpp"
#include "sync/backup/detail/delta_source.hpp"
#include "sync/backup/detail/replication_item.hpp"
#include "sync/backup/detail/standby_applier.hpp"
#include "test/support/segment_damage.hpp"
#include "test/support/test_support.hpp"

using namespace shmsession;
using namespace shmsession::sync;
using namespace shmsession::sync::detail;
using shmsession::test::ChildProcess;
using shmsession::test::SegmentGuard;

namespace {

Store make(const SegmentGuard& g, std::uint32_t log_capacity = 1 << 16) {
  return make_store(g, {.size_bytes = 64 << 20, .shards = 16, .change_log_capacity = log_capacity});
}

// Session versions and attribute values are equal; attribute versions may
// differ when several commits were coalesced into one delta.
void check_equal(Store& primary, Store& standby) {
  std::size_t sessions = 0;
  primary.for_each_session([&](const SessionInfo& info) {
    ++sessions;
    std::optional<SessionSnapshot> p = primary.peek(info.id), s = standby.peek(info.id);
    BOOST_REQUIRE_MESSAGE(s.has_value(), "standby lacks " << info.id);
    BOOST_TEST(p->version == s->version, info.id);
    BOOST_REQUIRE(p->attributes.size() == s->attributes.size());
    for (std::size_t i = 0; i < p->attributes.size(); ++i) {
      BOOST_TEST(p->attributes[i].name == s->attributes[i].name);
      BOOST_TEST(p->attributes[i].value == s->attributes[i].value);
      BOOST_TEST(p->attributes[i].flags == s->attributes[i].flags);
    }
    return true;
  });
  BOOST_TEST(standby.stats().sessions == sessions);
}

// Applies a batch, sending any session the applier asks for in full.
void ship(DeltaSource& source, StandbyApplier& applier, const SourceBatch& batch) {
  for (const Outgoing& item : batch.items)
    if (applier.apply(item) == StandbyApplier::Outcome::NeedFull)
      if (std::optional<Outgoing> full = source.full_session(item.delta.session_id))
        BOOST_REQUIRE(applier.apply(*full) == StandbyApplier::Outcome::Applied);
}

void full_resync(const Store& primary, DeltaSource& source, StandbyApplier& applier) {
  applier.begin_full();
  const SourceBatch snapshot = source.snapshot();
  ship(source, applier, snapshot);
  applier.end_full(ReplicaPosition{primary.info().store_id, snapshot.next_seq});
}

int write_for_a_while(const std::string& store, int seed) {
  Store mine = Store::attach(store);
  std::mt19937 rng(seed);
  for (int i = 0; i < 3000; ++i) {
    std::string id = "s" + std::to_string(rng() % 40);
    mine.create_session(id);
    CommitBatch b;
    b.put("n" + std::to_string(rng() % 5), std::string(50 + rng() % 500, static_cast<char>('a' + rng() % 26)));
    if (rng() % 7 == 0) b.remove("n" + std::to_string(rng() % 5));
    try {
      mine.commit(id, b);
    } catch (const Error& e) {
      if (e.code() != Errc::NotFound && e.code() != Errc::InvalidArgument) throw;  // removed meanwhile
    }
    if (rng() % 50 == 0) mine.remove_session(id);
  }
  return 0;
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_standby_converges_while_writers_commit) {
  SegmentGuard pg("bp_primary"), sg("bp_standby");
  Store primary = make(pg), standby = make(sg);
  DeltaSource source(primary);
  StandbyApplier applier(standby);
  full_resync(primary, source, applier);
  ChildProcess a([&] { return write_for_a_while(pg.name(), 1); });
  ChildProcess b([&] { return write_for_a_while(pg.name(), 2); });
  bool writing = true;
  while (writing) {
    writing = a.wait_for(std::chrono::milliseconds(0)) == -1 || b.wait_for(std::chrono::milliseconds(0)) == -1;
    SourceBatch batch = source.poll(1000);
    BOOST_REQUIRE(!batch.full_resync);
    ship(source, applier, batch);
  }
  BOOST_TEST(a.wait() == 0);
  BOOST_TEST(b.wait() == 0);
  ship(source, applier, source.poll(1 << 20));
  check_equal(primary, standby);
  // Sizes are shmbench's business: these writers replace values wholesale.
  BOOST_TEST_MESSAGE("delta bytes " << source.delta_bytes() << " for whole-session bytes " << source.whole_bytes());
}

// A session damaged on the primary is not shipped (and does not stop the
// others): the standby keeps its last good version, the one to restore.
BOOST_AUTO_TEST_CASE(a_damaged_session_is_skipped_and_the_standby_keeps_its_last_good_version) {
  SegmentGuard pg("bp_pd"), sg("bp_sd");
  Store primary = make(pg), standby = make(sg);
  DeltaSource source(primary);
  StandbyApplier applier(standby);
  for (const char* id : {"hurt", "fine"}) {
    primary.create_session(id);
    primary.commit(id, CommitBatch{}.put("v", std::string("first version of ") + id));
  }
  full_resync(primary, source, applier);
  const std::string damaged = "second version, soon damaged: " + std::string(100, 'd');
  primary.commit("hurt", CommitBatch{}.put("v", damaged));
  primary.commit("fine", CommitBatch{}.put("v", "second version of fine"));
  BOOST_TEST_REQUIRE(shmsession::test::flip_in_segment(pg.name(), damaged, 50) >= 1u);

  SourceBatch batch = source.poll(100);
  BOOST_TEST(batch.items.size() == 1u);
  ship(source, applier, batch);
  BOOST_TEST(source.damaged() == 1u);
  BOOST_TEST(source.last_damaged().find("'hurt'") != std::string::npos, source.last_damaged());
  BOOST_TEST(standby.peek("hurt")->find("v")->value == "first version of hurt");
  BOOST_TEST(standby.peek("fine")->find("v")->value == "second version of fine");
}

// The source reads only the values whose attribute version moved since it
// shipped the session (the commit stamped them): an attribute the commit
// did not write is not read at all, so damage to its bytes in the primary
// (which a whole-session read meets: the test above) does not hold back
// the attribute that changed; the backup keeps the good copy it has.
BOOST_AUTO_TEST_CASE(only_the_values_a_commit_wrote_are_read_to_ship_it) {
  SegmentGuard pg("bp_pm"), sg("bp_sm");
  Store primary = make(pg), standby = make(sg);
  DeltaSource source(primary);
  StandbyApplier applier(standby);
  const std::string profile = "profile, written once and soon damaged: " + std::string(100, 'p');
  primary.create_session("s");
  primary.commit("s", CommitBatch{}.put("profile", profile).put("cart", "empty"));
  full_resync(primary, source, applier);
  primary.commit("s", CommitBatch{}.put("cart", "one book"));
  BOOST_TEST_REQUIRE(shmsession::test::flip_in_segment(pg.name(), profile, 50) >= 1u);

  SourceBatch batch = source.poll(100);
  BOOST_REQUIRE(batch.items.size() == 1u);
  const diff::SessionDelta& delta = batch.items[0].delta;
  BOOST_REQUIRE(delta.changes.size() == 1u);
  BOOST_TEST(delta.changes[0].name == "cart");
  ship(source, applier, batch);
  BOOST_TEST(source.damaged() == 0u);
  BOOST_TEST(standby.peek("s")->find("cart")->value == "one book");
  BOOST_TEST(standby.peek("s")->find("profile")->value == profile);
  // A whole-session read meets the damage.
  BOOST_TEST((shmsession::test::code_of([&] { primary.peek("s"); }) == Errc::Corrupt));
}

BOOST_AUTO_TEST_CASE(log_overflow_falls_back_to_a_full_resync) {
  SegmentGuard pg("bp_p2"), sg("bp_s2");
  Store primary = make(pg, 16), standby = make(sg);
  DeltaSource source(primary);
  StandbyApplier applier(standby);
  Replica(standby).apply("only-on-standby", 0, 3, CommitBatch{}.put("x", "y"));
  for (int i = 0; i < 30; ++i) {
    std::string id = "s" + std::to_string(i);
    primary.create_session(id);
    primary.commit(id, CommitBatch{}.put("v", std::to_string(i)));
  }
  SourceBatch batch = source.poll(100);
  BOOST_TEST(batch.full_resync);
  full_resync(primary, source, applier);
  check_equal(primary, standby);
  BOOST_TEST(!standby.peek("only-on-standby"));
}

BOOST_AUTO_TEST_CASE(a_damaged_or_lost_delta_is_repaired_by_a_full_session) {
  SegmentGuard pg("bp_p3"), sg("bp_s3");
  Store primary = make(pg), standby = make(sg);
  DeltaSource source(primary);
  StandbyApplier applier(standby);
  primary.create_session("s");
  primary.commit("s", CommitBatch{}.put("a", std::string(4000, 'a')));
  ship(source, applier, source.poll(100));
  // Damaged: a wrong checksum is refused and the standby keeps its version.
  primary.commit("s", CommitBatch{}.put("a", std::string(3999, 'a') + "b"));
  SourceBatch damaged = source.poll(100);
  BOOST_REQUIRE(damaged.items.size() == 1u);
  damaged.items[0].delta.changes.at(0).checksum ^= 1;
  std::uint64_t before = standby.peek("s")->version;
  BOOST_TEST((applier.apply(damaged.items[0]) == StandbyApplier::Outcome::NeedFull));
  BOOST_TEST(standby.peek("s")->version == before);
  BOOST_TEST((applier.apply(*source.full_session("s")) == StandbyApplier::Outcome::Applied));
  check_equal(primary, standby);
  // Lost: the next delta's base is not what the standby holds.
  primary.commit("s", CommitBatch{}.put("b", "1"));
  source.poll(100);  // never delivered
  primary.commit("s", CommitBatch{}.put("c", "2"));
  SourceBatch next = source.poll(100);
  BOOST_TEST((applier.apply(next.items.at(0)) == StandbyApplier::Outcome::NeedFull));
  ship(source, applier, next);
  check_equal(primary, standby);
}

// whole_bytes is the size of the frame that would carry each whole session:
// for sessions shipped from nothing (a snapshot) it equals the delta bytes;
// for a one-attribute change of a large session it is far larger.
BOOST_AUTO_TEST_CASE(whole_session_bytes_are_the_size_of_a_whole_session_frame) {
  SegmentGuard pg("pipe_w");
  Store primary = make(pg);
  for (int i = 0; i < 20; ++i) {
    primary.create_session("w" + std::to_string(i));
    CommitBatch b;
    for (int a = 0; a < 10; ++a) b.put("attr" + std::to_string(a), std::string(100 + i, static_cast<char>('a' + a)));
    primary.commit("w" + std::to_string(i), b);
  }
  DeltaSource source(primary);
  source.snapshot();
  BOOST_TEST(source.delta_bytes() == source.whole_bytes());
  const std::uint64_t delta_before = source.delta_bytes(), whole_before = source.whole_bytes();
  CommitBatch one;
  one.put("attr3", std::string(110, 'z'));
  primary.commit("w10", one);
  BOOST_REQUIRE(source.poll(100).items.size() == 1);
  const std::uint64_t delta = source.delta_bytes() - delta_before, whole = source.whole_bytes() - whole_before;
  diff::AttributeMap all;
  const SessionSnapshot w10 = primary.peek("w10").value();
  for (const Attribute& a : w10.attributes) all.emplace(a.name, std::make_pair(a.value, a.flags));
  sync::detail::Outgoing whole_item;
  whole_item.delta = diff::make_delta("w10", 0, w10.version, {}, all);
  whole_item.idle_timeout_s = w10.idle_timeout_s;
  BOOST_TEST(whole ==
             sync::detail::make_item_frame(whole_item, wire::detail::FrameType::SnapshotSession, 1).payload.size());
  BOOST_TEST(delta * 5 < whole, delta << " delta bytes for a whole session of " << whole);
}

// An immutable attribute goes to the backup once; later deltas of the
// session carry only what changed beside it.
BOOST_AUTO_TEST_CASE(immutable_attributes_already_shipped_are_not_shipped_again) {
  SegmentGuard pg("pipe_i"), sg("pipe_is");
  Store primary = make(pg), standby = make(sg);
  primary.create_session("u");
  CommitBatch first;
  first.put("signup", std::string(10000, 'S'), kAttributeImmutable);
  first.put("cart", "empty");
  primary.commit("u", first);
  DeltaSource source(primary);
  StandbyApplier applier(standby);
  full_resync(primary, source, applier);
  BOOST_TEST(source.delta_bytes() > 10000u);  // the snapshot carried it once
  for (int i = 0; i < 10; ++i) {
    CommitBatch b;
    b.put("cart", "items:" + std::to_string(i));
    primary.commit("u", b);
    SourceBatch batch = source.poll(100);
    BOOST_REQUIRE_EQUAL(batch.items.size(), 1u);
    BOOST_REQUIRE_EQUAL(batch.items[0].delta.changes.size(), 1u);
    BOOST_TEST(batch.items[0].delta.changes[0].name == "cart");
    ship(source, applier, batch);
  }
  BOOST_TEST(source.delta_bytes() < 10000u + 1000u);
  check_equal(primary, standby);
}
