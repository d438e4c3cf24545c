// StandbyLink without sockets: the backup daemon's protocol fed with the
// frames a real agent would send (made from a primary Store through a
// DeltaSource), and with bad input. Every bad frame ends the link with one
// line naming the reason, an Error frame carrying it, and a standby exactly
// as it was; a truncated frame waits without applying anything.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "diff/detail/byte_io.hpp"
#include "shm/change_feed.hpp"
#include "shm/replica.hpp"
#include "sync/backup/detail/delta_source.hpp"
#include "sync/backup/detail/replication_item.hpp"
#include "sync/backup/detail/standby_link.hpp"
#include "sync/wire/detail/frame.hpp"
#include "sync/wire/detail/payloads.hpp"
#include "test/sync/replication_fixture.hpp"
#include "test/sync/wire_test_support.hpp"

using namespace shmsession;
using namespace shmsession::test;
using sync::detail::StandbyLink;
using sync::wire::detail::Frame;
using sync::wire::detail::FrameType;
namespace wire = sync::wire;

namespace {

constexpr std::uint64_t kSegmentBytes = std::uint64_t{8} << 20;

// A primary store and the agent's half of replication over it.
struct Primary {
  explicit Primary(const std::string& tag) : guard(tag), store(make_store(guard.name(), 1024, kSegmentBytes)) {}

  wire::detail::StoreId id() const { return store.info().store_id; }

  void put(const std::string& session, const std::string& name, const std::string& value) {
    store.create_session(session);
    CommitBatch batch;
    batch.put(name, value);
    store.commit(session, batch);
  }

  wire::detail::Frame hello(std::uint64_t epoch = 1) const {
    return wire::detail::make_hello(
        wire::detail::Hello{wire::detail::kProtocolVersion, id(), ChangeFeed(store).next_seq(), epoch});
  }

  // A full resync as the agent streams it: SnapshotBegin, one
  // SnapshotSession per session, SnapshotEnd; all at the snapshot's seq.
  std::vector<Frame> snapshot(std::uint64_t& seq) {
    const sync::detail::SourceBatch batch = source.snapshot();
    seq = batch.next_seq;
    std::vector<Frame> frames{Frame{FrameType::SnapshotBegin, seq, {}}};
    for (const sync::detail::Outgoing& item : batch.items)
      frames.push_back(sync::detail::make_item_frame(item, FrameType::SnapshotSession, seq));
    frames.push_back(Frame{FrameType::SnapshotEnd, seq, {}});
    return frames;
  }

  // What changed since the last poll: Delta and Removal frames.
  std::vector<Frame> deltas(std::uint64_t& next_seq) {
    const sync::detail::SourceBatch batch = source.poll(1000);
    BOOST_REQUIRE(!batch.full_resync);
    next_seq = batch.next_seq;
    std::vector<Frame> frames;
    for (const sync::detail::Outgoing& item : batch.items)
      frames.push_back(sync::detail::make_item_frame(item, FrameType::Delta, item.seq));
    return frames;
  }

  SegmentGuard guard;
  Store store;
  sync::detail::DeltaSource source{store};
};

// Everything a reader of the standby can observe, as text (so a failed
// comparison prints both sides): the position, and per session its version,
// incarnation, idle timeout and every attribute's version, flags and value.
std::string dump(Store& standby) {
  std::ostringstream out;
  const ReplicaPosition position = Replica(standby).position();
  out << "position " << position.primary_store_id_hex() << " @" << position.applied_seq << "\n";
  std::vector<std::string> ids;
  standby.for_each_session([&](const SessionInfo& info) {
    ids.push_back(info.id);
    return true;
  });
  std::sort(ids.begin(), ids.end());
  for (const std::string& id : ids) {
    const std::optional<SessionSnapshot> s = standby.peek(id);
    if (!s) continue;
    out << id << " v" << s->version << " inc" << s->incarnation << " idle" << s->idle_timeout_s << "\n";
    for (const Attribute& a : s->attributes) {
      out << "  " << a.name << " v" << a.version << " f" << a.flags << " ";
      for (unsigned char c : a.value) {
        if (c >= 0x20 && c < 0x7f && c != '\\') {
          out << c;
        } else {
          static constexpr char kHex[] = "0123456789abcdef";
          out << "\\x" << kHex[c >> 4] << kHex[c & 15];
        }
      }
      out << "\n";
    }
  }
  return out.str();
}

struct Exchange {
  StandbyLink::Output out;
  std::vector<Frame> replies;  // out.bytes, decoded with the right key
};

// One StandbyLink over `standby` and the agent's end of the connection
// beside it, which seals what the test sends and opens what the link sends
// back (one stream each way, as on a socket). Opened: the openings are
// through, as a real agent's would be before its Hello.
class LinkUnderTest {
 public:
  enum class Opening { Done, Left };
  explicit LinkUnderTest(Store& standby, Opening opening = Opening::Done) : link_(standby, replication_key()) {
    if (opening == Opening::Left) return;
    const StandbyLink::Output out = link_.feed(agent_.opening());
    BOOST_REQUIRE(!out.close);
    agent_.feed(out.bytes);
    BOOST_REQUIRE(!agent_.next().has_value());
    BOOST_REQUIRE(agent_.keyed());
  }

  Exchange feed(std::string_view bytes) {
    Exchange ex{link_.feed(bytes), {}};
    if (!agent_.keyed()) return ex;  // what answers an opening is read by the tests themselves
    agent_.feed(ex.out.bytes);
    while (std::optional<Frame> frame = agent_.next()) ex.replies.push_back(std::move(*frame));
    BOOST_TEST(agent_.buffered_bytes() == 0u, "the link sent part of a frame");
    return ex;
  }
  // The bytes of `frame` as the agent seals it next.
  std::string seal(const Frame& frame) { return agent_.encode(frame); }
  Exchange send(const std::vector<Frame>& frames) {
    std::string bytes;
    for (const Frame& frame : frames) bytes += seal(frame);
    return feed(bytes);
  }
  Exchange send(const Frame& frame) { return send(std::vector<Frame>{frame}); }

  StandbyLink& link() { return link_; }

 private:
  StandbyLink link_;
  wire::detail::FrameCodec agent_{replication_key(), wire::detail::Side::Client};
};

bool is_ack(const std::vector<Frame>& replies, std::uint64_t seq) {
  return replies.size() == 1 && replies[0] == wire::detail::make_ack(seq);
}

// The link closed because of the peer's bad input: one line naming
// `reason`, an Error frame carrying it, nothing more accepted, and the
// standby exactly as `before`.
void expect_refused(LinkUnderTest& link, const Exchange& ex, const std::string& reason, const std::string& before,
                    Store& standby) {
  BOOST_TEST(ex.out.close);
  BOOST_TEST(link.link().closed());
  BOOST_TEST(ex.out.reason.find_first_of("\r\n") == std::string::npos, "reason is one line: " << ex.out.reason);
  BOOST_TEST(ex.out.reason.find(reason) != std::string::npos,
             "reason '" << ex.out.reason << "' names '" << reason << "'");
  BOOST_REQUIRE(!ex.replies.empty());
  BOOST_TEST((ex.replies.back().type == FrameType::Error));
  BOOST_TEST(wire::detail::parse_error(ex.replies.back()) == ex.out.reason);
  BOOST_TEST(dump(standby) == before);
  // A closed link takes nothing more, not even a valid frame.
  const StandbyLink::Output after = link.link().feed(link.seal(wire::detail::make_heartbeat(1)));
  BOOST_TEST(after.bytes.empty());
  BOOST_TEST(dump(standby) == before);
}

// The link closed at the opening, before any frame could be sealed: one
// line naming `reason`, no frame sent back (only, for an unknown key, the
// answer saying so), and the standby exactly as `before`.
void expect_refused_at_opening(LinkUnderTest& link, const Exchange& ex, const std::string& reason,
                               const std::string& before, Store& standby) {
  BOOST_TEST(ex.out.close);
  BOOST_TEST(link.link().closed());
  BOOST_TEST(ex.out.reason.find(reason) != std::string::npos,
             "reason '" << ex.out.reason << "' names '" << reason << "'");
  BOOST_TEST((ex.out.bytes.empty() || ex.out.bytes.size() == wire::detail::kOpeningBytes));
  BOOST_TEST((link.link().role() == StandbyLink::Role::Unknown));
  BOOST_TEST(dump(standby) == before);
}

// A standby that follows the primary after a full resync and one batch of
// deltas through a first link (since closed); tests open new links.
struct Replicated {
  Replicated() {
    primary.put("s1", "cart", std::string(300, 'c'));
    primary.put("s2", "user", "alice");
    primary.put("s3", "theme", "dark");
    LinkUnderTest first(standby);
    BOOST_REQUIRE(first.send(primary.hello()).replies.size() == 1);
    std::uint64_t seq = 0;
    const std::vector<Frame> snapshot = primary.snapshot(seq);
    BOOST_REQUIRE(is_ack(first.send(snapshot).replies, seq));
    primary.put("s1", "cart", std::string(150, 'c') + "+" + std::string(149, 'c'));
    primary.put("s2", "lang", "fr");
    const std::vector<Frame> deltas = primary.deltas(position);
    BOOST_REQUIRE(is_ack(first.send(deltas).replies, position));
    BOOST_REQUIRE(Replica(standby).position().applied_seq == position);
    check_equal(primary.store, standby);
  }

  // A new link whose agent said Hello and was welcomed at `position`.
  std::unique_ptr<LinkUnderTest> agent() {
    auto link = std::make_unique<LinkUnderTest>(standby);
    const Exchange ex = link->send(primary.hello());
    BOOST_REQUIRE(ex.replies.size() == 1);
    BOOST_REQUIRE((wire::detail::parse_welcome(ex.replies[0]) == wire::detail::Welcome{primary.id(), position}));
    return link;
  }

  Primary primary{"sl_p"};
  SegmentGuard standby_guard{"sl_s"};
  Store standby = make_store(standby_guard.name(), 1024, kSegmentBytes);
  std::uint64_t position = 0;
};

}  // namespace

// ---- the protocol as a correct agent drives it ----------------------------

BOOST_AUTO_TEST_CASE(full_resync_then_deltas_heartbeat_and_removal_are_acknowledged) {
  Primary primary("sl_p");
  SegmentGuard sg("sl_s");
  Store standby = make_store(sg.name(), 1024, kSegmentBytes);
  primary.put("s1", "cart", std::string(400, 'x'));
  primary.put("s1", "user", "bob");
  primary.put("s2", "user", "carol");
  primary.put("s3", "theme", "light");
  LinkUnderTest link(standby);

  // An empty standby welcomes with a zero store id and position 0.
  Exchange ex = link.send(primary.hello());
  BOOST_TEST(!ex.out.close);
  BOOST_REQUIRE(ex.replies.size() == 1u);
  BOOST_TEST((wire::detail::parse_welcome(ex.replies[0]) == wire::detail::Welcome{}));
  BOOST_TEST((link.link().role() == StandbyLink::Role::Agent));
  BOOST_TEST((link.link().agent_store() == primary.id()));

  // Full resync: nothing is acknowledged and no position is stored before
  // SnapshotEnd; then Ack(seq), and the position is in the segment.
  std::uint64_t seq = 0;
  std::vector<Frame> snapshot = primary.snapshot(seq);
  BOOST_REQUIRE(snapshot.size() == 5u);
  const Frame end = snapshot.back();
  snapshot.pop_back();
  ex = link.send(snapshot);
  BOOST_TEST(is_ack(ex.replies, 0));  // alive, acknowledging nothing
  BOOST_TEST(!Replica(standby).position().follows_a_primary());
  ex = link.send(end);
  BOOST_TEST(is_ack(ex.replies, seq));
  BOOST_TEST((Replica(standby).position() == ReplicaPosition{primary.id(), seq}));
  check_equal(primary.store, standby);

  // Deltas (a patch, a new attribute, a new session) -> Ack of the batch's
  // position, stored before it is sent.
  primary.put("s1", "cart", std::string(200, 'x') + "y" + std::string(199, 'x'));
  primary.put("s2", "lang", "de");
  primary.put("s4", "user", "dave");
  std::uint64_t next = 0;
  const std::vector<Frame> deltas = primary.deltas(next);
  BOOST_REQUIRE(deltas.size() == 3u);
  BOOST_TEST(sync::detail::parse_item_frame(deltas[0]).delta.base_version != 0u);  // a patch, not a whole copy
  ex = link.send(deltas);
  BOOST_TEST(!ex.out.close);
  BOOST_TEST(is_ack(ex.replies, next));
  BOOST_TEST((Replica(standby).position() == ReplicaPosition{primary.id(), next}));
  check_equal(primary.store, standby);

  // A session created and removed between two polls moves the log but
  // ships nothing: the agent's heartbeat carries the later position.
  primary.store.create_session("ephemeral");
  primary.store.remove_session("ephemeral");
  std::uint64_t later = 0;
  BOOST_TEST(primary.deltas(later).empty());
  BOOST_REQUIRE(later > next);
  ex = link.send(wire::detail::make_heartbeat(later));
  BOOST_TEST(is_ack(ex.replies, later));
  BOOST_TEST(Replica(standby).position().applied_seq == later);
  // A heartbeat with nothing new is still answered (the agent's liveness).
  ex = link.send(wire::detail::make_heartbeat(later));
  BOOST_TEST(is_ack(ex.replies, later));

  // A removal.
  primary.store.remove_session("s3");
  const std::vector<Frame> removal = primary.deltas(next);
  BOOST_REQUIRE(removal.size() == 1u);
  BOOST_TEST((removal[0].type == FrameType::Removal));
  ex = link.send(removal);
  BOOST_TEST(is_ack(ex.replies, next));
  BOOST_TEST(!standby.peek("s3").has_value());
  BOOST_TEST(Replica(standby).position().applied_seq == next);
  check_equal(primary.store, standby);
  BOOST_TEST(!link.link().closed());
  BOOST_TEST(link.link().frames_applied() == 3u + 3u + 1u);
}

BOOST_FIXTURE_TEST_CASE(a_new_link_resumes_from_the_stored_position_without_a_snapshot, Replicated) {
  // The Welcome carries the stored store id and position (checked by agent()).
  std::unique_ptr<LinkUnderTest> link = agent();
  BOOST_TEST(link->link().position() == position);
  primary.put("s3", "theme", "light");
  primary.put("s5", "user", "erin");
  std::uint64_t next = 0;
  const std::vector<Frame> deltas = primary.deltas(next);
  const Exchange ex = link->send(deltas);
  BOOST_TEST(!ex.out.close);
  BOOST_TEST(is_ack(ex.replies, next));
  BOOST_TEST((Replica(standby).position() == ReplicaPosition{primary.id(), next}));
  check_equal(primary.store, standby);
}

// A delta whose base is not the standby's version (its predecessor was
// lost) is not applied: the link asks for the session in full and the
// position stays where it was until the whole copy arrives.
BOOST_FIXTURE_TEST_CASE(a_delta_on_another_base_asks_for_the_session_in_full, Replicated) {
  std::unique_ptr<LinkUnderTest> link = agent();
  primary.put("s1", "cart", "lost on the way");
  std::uint64_t lost = 0;
  BOOST_REQUIRE(primary.deltas(lost).size() == 1u);  // never sent
  primary.put("s1", "cart", "after the lost one");
  primary.put("s2", "user", "alice2");
  std::uint64_t next = 0;
  const std::vector<Frame> deltas = primary.deltas(next);
  BOOST_REQUIRE(deltas.size() == 2u);

  Exchange ex = link->send(deltas);
  BOOST_TEST(!ex.out.close);
  BOOST_REQUIRE(ex.replies.size() == 1u);
  BOOST_TEST(wire::detail::parse_resend_session(ex.replies[0]) == "s1");
  BOOST_TEST(ex.out.log.size() == 1u);
  BOOST_TEST(Replica(standby).position().applied_seq == position);               // frozen
  BOOST_TEST(standby.peek("s2")->version == primary.store.peek("s2")->version);  // applied meanwhile
  // A heartbeat past it is answered with the old position.
  ex = link->send(wire::detail::make_heartbeat(next));
  BOOST_TEST(is_ack(ex.replies, position));
  BOOST_TEST(Replica(standby).position().applied_seq == position);

  // The whole session (as the agent resends it: at its latest seq).
  const std::optional<sync::detail::Outgoing> full = primary.source.full_session("s1");
  BOOST_REQUIRE(full.has_value());
  ex = link->send(sync::detail::make_item_frame(*full, FrameType::Delta, next));
  BOOST_TEST(is_ack(ex.replies, next));
  BOOST_TEST((Replica(standby).position() == ReplicaPosition{primary.id(), next}));
  check_equal(primary.store, standby);
}

// ---- bad input ---------------------------------------------------------

// An agent of another key is refused at its opening; the answer tells it
// why (its key is unknown here), so it can say so too.
BOOST_FIXTURE_TEST_CASE(an_agent_under_another_key_is_refused, Replicated) {
  const std::string before = dump(standby);
  LinkUnderTest link(standby, LinkUnderTest::Opening::Left);
  wire::detail::FrameCodec stranger(replication_key(0x99), wire::detail::Side::Client);
  const Exchange ex = link.feed(stranger.opening());
  expect_refused_at_opening(link, ex, "the two hosts' key files differ", before, standby);
  stranger.feed(ex.out.bytes);
  BOOST_TEST(message_of([&] { stranger.next(); }).find("the backup has no key with this end's key id") !=
             std::string::npos);
}

// Frames of another connection (recorded and played again) do not open:
// the link closes at the first, and nothing is applied.
BOOST_FIXTURE_TEST_CASE(a_replayed_connection_is_refused, Replicated) {
  primary.put("s1", "cart", "replayed");
  std::uint64_t next = 0;
  const std::vector<Frame> deltas = primary.deltas(next);
  std::string recorded;
  {
    std::unique_ptr<LinkUnderTest> original = agent();
    for (const Frame& frame : deltas) recorded += original->seal(frame);
  }
  const std::string before = dump(standby);
  std::unique_ptr<LinkUnderTest> link = agent();
  const Exchange ex = link->feed(recorded);
  expect_refused(*link, ex, "cannot open it: wrong key, or a tampered, replayed, reordered or dropped frame", before,
                 standby);
}

BOOST_FIXTURE_TEST_CASE(a_hello_of_another_protocol_version_is_refused, Replicated) {
  const std::string before = dump(standby);
  LinkUnderTest link(standby);
  const Exchange ex = link.send(wire::detail::make_hello(wire::detail::Hello{1, primary.id(), 1}));
  expect_refused(link, ex, "protocol version 1", before, standby);
}

// A frame cut short is waited for: nothing is sent back, nothing closes,
// nothing is applied; if the rest never comes (the peer vanished), a second
// link finds the standby where the first left it.
BOOST_FIXTURE_TEST_CASE(a_truncated_frame_is_waited_for_and_applies_nothing, Replicated) {
  const std::string before = dump(standby);
  {
    LinkUnderTest link(standby);
    const std::string hello = link.seal(primary.hello());
    const Exchange ex = link.feed(std::string_view(hello).substr(0, hello.size() / 2));
    BOOST_TEST(ex.out.bytes.empty());
    BOOST_TEST(!ex.out.close);
    BOOST_TEST((link.link().role() == StandbyLink::Role::Unknown));
  }
  primary.put("s1", "cart", "never arrives whole");
  std::uint64_t next = 0;
  const std::vector<Frame> deltas = primary.deltas(next);
  BOOST_REQUIRE(deltas.size() == 1u);
  for (std::size_t cut : {std::size_t{1}, wire::detail::kFrameLengthBytes, std::size_t{0}}) {
    std::unique_ptr<LinkUnderTest> link = agent();
    const std::string bytes = link->seal(deltas[0]);
    if (cut == 0) cut = bytes.size() - 1;
    const Exchange ex = link->feed(std::string_view(bytes).substr(0, cut));
    BOOST_TEST(ex.out.bytes.empty(), "cut at " << cut);
    BOOST_TEST(!ex.out.close, "cut at " << cut);
    BOOST_TEST(ex.out.reason.empty());
    BOOST_TEST(dump(standby) == before, "cut at " << cut);
  }
  std::unique_ptr<LinkUnderTest> second = agent();  // welcomed at the old position
  BOOST_TEST(dump(standby) == before);
}

BOOST_FIXTURE_TEST_CASE(an_oversized_header_closes_at_once_naming_the_limit, Replicated) {
  const std::string before = dump(standby);
  {
    LinkUnderTest link(standby);  // first frame: the small pre-authentication cap
    const Exchange ex = link.feed(raw_frame_length(4097));
    expect_refused(link, ex, "payload length 4097 exceeds the limit of 4096 for a first frame", before, standby);
  }
  std::unique_ptr<LinkUnderTest> link = agent();
  const std::uint64_t declared = wire::kDefaultMaxPayloadBytes + 1;
  const Exchange ex = link->feed(raw_frame_length(declared));
  expect_refused(*link, ex,
                 "payload length " + std::to_string(declared) + " exceeds the limit of " +
                     std::to_string(wire::kDefaultMaxPayloadBytes),
                 before, standby);
}

BOOST_FIXTURE_TEST_CASE(garbage_bytes_are_refused, Replicated) {
  const std::string before = dump(standby);
  {
    LinkUnderTest link(standby, LinkUnderTest::Opening::Left);
    const Exchange ex = link.feed("GET / HTTP/1.1\r\nHost: backup\r\n\r\n");
    expect_refused_at_opening(link, ex, "bad magic", before, standby);
  }
  std::unique_ptr<LinkUnderTest> link = agent();
  std::mt19937 rng(7);
  std::string noise(64, '\0');
  for (char& c : noise) c = static_cast<char>(rng());
  noise[0] = 40;  // a length within the cap: the frame is read whole, and does not open
  for (int i = 1; i < 4; ++i) noise[static_cast<std::size_t>(i)] = 0;
  const Exchange ex = link->feed(noise);
  expect_refused(*link, ex, "cannot open it", before, standby);
}

BOOST_FIXTURE_TEST_CASE(a_delta_before_hello_is_refused, Replicated) {
  primary.put("s1", "cart", "sent too early");
  std::uint64_t next = 0;
  const std::vector<Frame> deltas = primary.deltas(next);
  BOOST_REQUIRE(deltas.size() == 1u);
  const std::string before = dump(standby);
  LinkUnderTest link(standby);
  const Exchange ex = link.send(deltas);
  expect_refused(link, ex, "expected Hello or RestoreRequest first, got Delta", before, standby);
}

// The standby follows store A; an agent of store B may connect (it is told
// so in the Welcome) but must begin with a full resync.
BOOST_FIXTURE_TEST_CASE(a_delta_for_another_store_is_refused, Replicated) {
  Primary other("sl_q");
  other.put("q1", "user", "mallory");
  other.source.snapshot();  // its benchmark knows q1: the next change is a real delta
  other.put("q1", "user", "mallory2");
  std::uint64_t next = 0;
  const std::vector<Frame> deltas = other.deltas(next);
  BOOST_REQUIRE(deltas.size() == 1u);
  const std::string before = dump(standby);

  LinkUnderTest link(standby);
  Exchange ex = link.send(other.hello());
  BOOST_REQUIRE(ex.replies.size() == 1u);
  BOOST_TEST((wire::detail::parse_welcome(ex.replies[0]) == wire::detail::Welcome{primary.id(), position}));
  BOOST_TEST(ex.out.log.size() == 1u);  // "standby follows store A; agent of store B connected ..."
  const std::string a = primary.store.info().store_id_hex(), b = other.store.info().store_id_hex();
  ex = link.send(deltas);
  expect_refused(link, ex, "Delta for store " + b + " but the standby follows store " + a, before, standby);
}

BOOST_FIXTURE_TEST_CASE(a_sequence_that_goes_back_is_refused, Replicated) {
  std::unique_ptr<LinkUnderTest> link = agent();
  primary.put("s1", "cart", "one");
  primary.put("s2", "user", "two");
  std::uint64_t next = 0;
  const std::vector<Frame> deltas = primary.deltas(next);
  BOOST_REQUIRE(deltas.size() == 2u);
  BOOST_REQUIRE(deltas[0].seq < deltas[1].seq);
  BOOST_REQUIRE(is_ack(link->send(deltas).replies, next));
  const std::string before = dump(standby);
  const Exchange ex = link->send(deltas[0]);  // replayed
  expect_refused(*link, ex,
                 "sequence went back from " + std::to_string(deltas[1].seq) + " to " + std::to_string(deltas[0].seq),
                 before, standby);
}

// The resync's SnapshotEnd names another seq: the resync is not completed
// and the frame changes nothing. The snapshot was built beside the standby,
// which stayed as it was all along, position included, so the next agent
// continues from that position.
BOOST_FIXTURE_TEST_CASE(a_snapshot_end_with_the_wrong_seq_is_refused, Replicated) {
  std::unique_ptr<LinkUnderTest> link = agent();
  const std::string before = dump(standby);
  primary.put("s1", "cart", "changed before the snapshot");
  primary.put("s8", "user", "new before the snapshot");
  std::uint64_t seq = 0;
  std::vector<Frame> snapshot = primary.snapshot(seq);
  snapshot.pop_back();
  BOOST_REQUIRE(is_ack(link->send(snapshot).replies, 0));
  BOOST_TEST(dump(standby) == before);  // consistent at every moment: the old state, whole
  const Exchange ex = link->send(Frame{FrameType::SnapshotEnd, seq + 1, {}});
  expect_refused(
      *link, ex,
      "SnapshotEnd for seq " + std::to_string(seq + 1) + " ends the resync begun at seq " + std::to_string(seq), before,
      standby);
  link.reset();
  BOOST_TEST(!std::filesystem::exists("/dev/shm/" + standby_guard.name() + "~resync"), "the draft is left behind");
  LinkUnderTest next(standby);
  const Exchange welcome = next.send(primary.hello());
  BOOST_REQUIRE(welcome.replies.size() == 1u);
  BOOST_TEST((wire::detail::parse_welcome(welcome.replies[0]) == wire::detail::Welcome{primary.id(), position}));
}

// A full resync completes at once: the standby goes from its old state to
// the snapshot's in one step, at the snapshot's position, stale sessions
// gone; promoted midway instead, it keeps its old state and refuses the end.
BOOST_FIXTURE_TEST_CASE(a_full_resync_replaces_the_standby_at_once_or_not_at_all, Replicated) {
  std::unique_ptr<LinkUnderTest> link = agent();
  primary.store.remove_session("s2");
  primary.put("s9", "user", "new");
  std::uint64_t seq = 0;
  std::vector<Frame> snapshot = primary.snapshot(seq);
  const Frame end = snapshot.back();
  snapshot.pop_back();
  const std::string before = dump(standby);
  BOOST_REQUIRE(is_ack(link->send(snapshot).replies, 0));
  BOOST_TEST(dump(standby) == before);
  BOOST_TEST(is_ack(link->send(end).replies, seq));
  check_equal(primary.store, standby);
  BOOST_TEST((Replica(standby).position() == ReplicaPosition{primary.id(), seq}));
  BOOST_TEST(!std::filesystem::exists("/dev/shm/" + standby_guard.name() + "~resync"));

  // Promoted in the middle of the next one: the end is refused, nothing changes.
  primary.put("s9", "user", "newer");
  std::unique_ptr<LinkUnderTest> again = std::make_unique<LinkUnderTest>(standby);
  BOOST_REQUIRE(again->send(primary.hello()).replies.size() == 1u);
  std::vector<Frame> second = primary.snapshot(seq);
  const Frame second_end = second.back();
  second.pop_back();
  BOOST_REQUIRE(is_ack(again->send(second).replies, 0));
  Replica(standby).promote();
  const std::string promoted = dump(standby);
  expect_refused(*again, again->send(second_end), "was promoted to a primary (epoch 2)", promoted, standby);
  BOOST_TEST(standby.peek("s9")->find("user")->value == "new");
}

BOOST_FIXTURE_TEST_CASE(a_snapshot_session_outside_a_snapshot_is_refused, Replicated) {
  std::unique_ptr<LinkUnderTest> link = agent();
  primary.put("s9", "user", "intruder");
  const std::optional<sync::detail::Outgoing> whole = primary.source.full_session("s9");
  BOOST_REQUIRE(whole.has_value());
  const std::string before = dump(standby);
  const Exchange ex = link->send(sync::detail::make_item_frame(*whole, FrameType::SnapshotSession, position));
  expect_refused(*link, ex, "SnapshotSession outside its full resync", before, standby);
  BOOST_TEST(!standby.peek("s9").has_value());
}

// The MAC is right (the peer has the key) but the session payload inside
// breaks its format (wire_format.md, "Session payloads"): each is refused,
// the link closes naming the frame, nothing is applied.
BOOST_FIXTURE_TEST_CASE(a_malformed_session_payload_under_a_valid_mac_is_refused, Replicated) {
  sync::detail::Outgoing item;
  item.delta.session_id = "s1";
  item.delta.new_version = 5;
  item.delta.changes.push_back({"cart", diff::AttributeChange::Kind::Put, "xyz", 0, diff::value_checksum("xyz")});
  // The documented layout: head (base 0, idle timeout given), reference 0
  // and the id in full, new version, idle timeout, one change: name, kind
  // Put, flags, value.
  const std::string valid(
      "\x04\x00\x02s1\x05\x00\x01\x04"
      "cart\x01\x00\x03xyz",
      19);
  BOOST_REQUIRE(sync::detail::make_item_frame(item, FrameType::Delta, 1).payload == valid);
  const auto with = [&](std::size_t at, char byte) {
    std::string p = valid;
    p[at] = byte;
    return p;
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "head"},
      {with(0, '\x84'), "unknown head bits"},
      {with(0, '\x07'), "unknown base form"},
      {with(1, '\x05'), "session reference 5 to a slot never filled"},
      {with(2, '\x3c'), "session id"},
      {with(0, '\x00'), "no idle timeout given yet"},
      {with(0, '\x05').replace(5, 1, std::string(1, '\x00')), "new version 0 has no previous version"},
      {std::string("\x06\x00\x02s1\x05\x04\x00\x01\x04"
                   "cart\x01\x00\x03xyz",
                   20),
       "base version 4 given"},
      {with(7, '\x40'), "cannot fit"},
      {with(13, '\x09'), "unknown change kind 9"},
      {with(15, '\x32'), "value"},
      {valid + 'x', "1 bytes after the last change"},
      {std::string("\x04\x00\x02s1\x05\x00\x02\x01"
                   "b\x03\x01"
                   "a\x03",
                   14),
       "attribute 'a' out of order"},
  };
  const std::string before = dump(standby);
  std::uint64_t next = 0;
  primary.deltas(next);
  for (const auto& [payload, reason] : cases) {
    std::unique_ptr<LinkUnderTest> link = agent();
    const Exchange ex = link->send(Frame{FrameType::Delta, next, payload});
    expect_refused(*link, ex, "Delta", before, standby);
    BOOST_TEST(ex.out.reason.find(reason) != std::string::npos,
               "reason '" << ex.out.reason << "' names '" << reason << "'");
  }
  // The valid payload itself is taken (the cases above differ only where said).
  std::unique_ptr<LinkUnderTest> link = agent();
  const Exchange ex = link->send(Frame{FrameType::Delta, next, valid});
  BOOST_TEST(!ex.out.close, ex.out.reason);
}

// A session id the store refuses (not printable ASCII) arrives under a valid
// MAC: the link closes, and its reason stays one line whatever the id holds
// (the reason goes to the daemon's log).
BOOST_FIXTURE_TEST_CASE(a_session_id_the_store_refuses_closes_the_link_on_one_line, Replicated) {
  const std::string before = dump(standby);
  const std::string evil = "s1\nconnection from 10.0.0.1:9 closed: forged";
  {
    std::unique_ptr<LinkUnderTest> link = agent();
    const Exchange ex = link->send(wire::detail::make_removal(position, evil));
    expect_refused(*link, ex, "cannot apply session", before, standby);
  }
  sync::detail::Outgoing item;
  item.delta = diff::make_delta(evil, 0, 1, {}, {{"user", {"x", 0}}});
  std::unique_ptr<LinkUnderTest> link = agent();
  const Exchange ex = link->send(sync::detail::make_item_frame(item, FrameType::Delta, position));
  expect_refused(*link, ex, "cannot apply session", before, standby);
}

// A whole copy of a new session that the store refuses (an attribute name
// it does not allow) leaves no empty session behind.
BOOST_FIXTURE_TEST_CASE(a_whole_copy_the_store_refuses_leaves_no_session_behind, Replicated) {
  const std::string before = dump(standby);
  sync::detail::Outgoing item;
  item.delta = diff::make_delta("s7", 0, 1, {}, {{"bad\nname", {"x", 0}}});
  std::unique_ptr<LinkUnderTest> link = agent();
  const Exchange ex = link->send(sync::detail::make_item_frame(item, FrameType::Delta, position));
  expect_refused(*link, ex, "cannot apply session s7", before, standby);
  BOOST_TEST(!standby.peek("s7").has_value());
}

// The agent's Error frame closes the link with its reason (not answered);
// a malformed one is refused like any bad frame, never closed silently.
BOOST_FIXTURE_TEST_CASE(an_error_from_the_agent_closes_the_link_with_its_reason, Replicated) {
  const std::string before = dump(standby);
  {
    std::unique_ptr<LinkUnderTest> link = agent();
    const Exchange ex = link->send(wire::detail::make_error("primary store detached\nbye"));
    BOOST_TEST(ex.out.close);
    BOOST_TEST(ex.out.reason == "peer reported: primary store detached?bye");
    BOOST_TEST(ex.replies.empty());
    BOOST_TEST(dump(standby) == before);
  }
  std::unique_ptr<LinkUnderTest> link = agent();
  const Exchange ex = link->send(Frame{FrameType::Error, 5, "with a sequence"});
  expect_refused(*link, ex, "Error: sequence must be 0, got 5", before, standby);
}

// ---- epochs: fencing a superseded primary ----------------------------------

// Frames that move no position are answered with what was acknowledged
// before (0 during a full resync, whatever the standby held): the agent
// sends no heartbeat while it streams, and must still see the link alive.
BOOST_FIXTURE_TEST_CASE(frames_that_move_no_position_are_answered_with_the_last_ack, Replicated) {
  std::unique_ptr<LinkUnderTest> link = agent();
  std::uint64_t seq = 0;
  std::vector<Frame> snapshot = primary.snapshot(seq);
  const Frame end = snapshot.back();
  snapshot.pop_back();
  for (const Frame& f : snapshot) BOOST_TEST(is_ack(link->send(f).replies, 0), wire::detail::frame_type_name(f.type));
  BOOST_TEST(is_ack(link->send(end).replies, seq));
  // A session the standby cannot apply exactly: asked for in full, the
  // position frozen; the frames after it are answered with the last Ack.
  primary.put("s3", "theme", "blue");
  std::uint64_t next = 0;
  std::vector<Frame> deltas = primary.deltas(next);
  BOOST_REQUIRE(deltas.size() == 1u);
  sync::detail::Outgoing item = sync::detail::parse_item_frame(deltas[0]);
  item.delta.base_version += 7;  // a base the standby does not have
  item.delta.new_version += 7;
  const Exchange asked = link->send(sync::detail::make_item_frame(item, FrameType::Delta, deltas[0].seq));
  BOOST_REQUIRE(asked.replies.size() == 1u);
  BOOST_TEST((asked.replies[0].type == FrameType::ResendSession));
  BOOST_TEST(is_ack(link->send(wire::detail::make_heartbeat(next)).replies, seq));
}

// An admitted agent raises the standby's epoch to its store's; an agent of
// an older epoch is refused after a Welcome that names the standby's, and
// the standby keeps what it had.
BOOST_FIXTURE_TEST_CASE(an_agent_of_an_older_epoch_is_refused, Replicated) {
  {
    LinkUnderTest newer(standby);
    const Exchange ex = newer.send(primary.hello(3));
    BOOST_REQUIRE(ex.replies.size() == 1);
    BOOST_TEST(!ex.out.close);
    BOOST_TEST((wire::detail::parse_welcome(ex.replies[0]) == wire::detail::Welcome{primary.id(), position, 3}));
    BOOST_TEST(Replica(standby).failover_state().epoch == 3u);
  }
  const std::string before = dump(standby);
  LinkUnderTest older(standby);
  const Exchange ex = older.send(primary.hello(2));
  BOOST_REQUIRE(ex.replies.size() == 2);
  BOOST_TEST((wire::detail::parse_welcome(ex.replies[0]) == wire::detail::Welcome{primary.id(), position, 3}));
  expect_refused(older, ex, "the standby has epoch 3, newer than the agent's store", before, standby);
  BOOST_TEST(Replica(standby).failover_state().epoch == 3u);
}

// A promoted standby tells its old primary's agent who superseded it (what
// it followed when promoted, its epoch, the promoted flag) and refuses it:
// nothing that agent sends lands.
BOOST_FIXTURE_TEST_CASE(a_promoted_standby_refuses_its_old_primary, Replicated) {
  BOOST_TEST(Replica(standby).promote() == 2u);
  const std::string before = dump(standby);
  BOOST_TEST(Replica(standby).position().follows_a_primary() == false);
  LinkUnderTest old_primary(standby);
  std::vector<Frame> frames{primary.hello()};
  primary.put("s1", "cart", "written after the failover");
  std::uint64_t next = 0;
  for (const Frame& f : primary.deltas(next)) frames.push_back(f);
  const Exchange ex = old_primary.send(frames);
  BOOST_REQUIRE(ex.replies.size() == 2);
  BOOST_TEST((wire::detail::parse_welcome(ex.replies[0]) == wire::detail::Welcome{primary.id(), position, 2, true}));
  expect_refused(old_primary, ex, "this store was promoted to a primary at epoch 2 in place of store", before, standby);
  // Nor does an agent of a newer epoch get in: the store follows nobody now.
  LinkUnderTest newer(standby);
  expect_refused(newer, newer.send(primary.hello(7)), "promoted to a primary at epoch 2", before, standby);
}

// Promoted while a link applies: the next frame is refused (the daemon's
// applies and its position write fail with Fenced), the link ends, and the
// promoted store keeps what it held at the promotion.
BOOST_FIXTURE_TEST_CASE(a_standby_promoted_under_a_link_refuses_the_next_frame, Replicated) {
  std::unique_ptr<LinkUnderTest> link = agent();
  Replica(standby).promote();
  const std::string before = dump(standby);
  primary.put("s3", "theme", "written after the failover");
  std::uint64_t next = 0;
  const std::vector<Frame> deltas = primary.deltas(next);
  BOOST_REQUIRE(!deltas.empty());
  const Exchange ex = link->send(deltas);
  expect_refused(*link, ex, "was promoted to a primary (epoch 2)", before, standby);
  // A heartbeat would only move the position: refused as well.
  std::unique_ptr<LinkUnderTest> beat = std::make_unique<LinkUnderTest>(standby);
  BOOST_TEST(beat->send(primary.hello()).out.close);
}

// ---- session payloads: the id dictionary and the idle timeout -------------

namespace {

sync::detail::Outgoing put_item(const std::string& id, std::uint64_t version, std::uint32_t idle_timeout_s) {
  sync::detail::Outgoing item;
  item.delta.session_id = id;
  item.delta.base_version = version - 1;
  item.delta.new_version = version;
  item.delta.changes.push_back({"cart", diff::AttributeChange::Kind::Put, std::string(100, 'v'), 0,
                                diff::value_checksum(std::string(100, 'v'))});
  item.idle_timeout_s = idle_timeout_s;
  return item;
}

}  // namespace

// An id travels in full once per connection direction, then as its slot;
// the idle timeout only when it changes. The decoder at the other end reads
// every payload back as it was, also once the dictionary is full and its
// oldest slots are given to new ids (which the encoder then sends in full
// again).
BOOST_AUTO_TEST_CASE(a_session_id_is_sent_in_full_once_then_by_its_slot) {
  sync::detail::ItemEncoder encoder;
  sync::detail::ItemDecoder decoder;
  const std::string id = "session:00001234";
  const Frame first = encoder.frame(put_item(id, 2, 1800), FrameType::Delta, 10);
  const Frame second = encoder.frame(put_item(id, 3, 1800), FrameType::Delta, 11);
  const Frame third = encoder.frame(put_item(id, 4, 60), FrameType::Delta, 12);
  // head, reference (1: slot 0), new version, change count, name, kind,
  // flags, value: 112 bytes for a 100-byte put.
  BOOST_TEST(second.payload.size() == 1 + 1 + 1 + 1 + 5 + 1 + 1 + 101);
  BOOST_TEST(first.payload.size() == second.payload.size() + 1 + id.size() + 2);  // the id in full, the timeout
  BOOST_TEST(third.payload.size() == second.payload.size() + 1);                  // the new timeout
  for (const auto& [frame, version, idle] :
       {std::tuple{first, 2u, 1800u}, std::tuple{second, 3u, 1800u}, std::tuple{third, 4u, 60u}}) {
    const sync::detail::Outgoing item = decoder.item(frame);
    BOOST_TEST((item.delta == put_item(id, version, idle).delta));
    BOOST_TEST(item.idle_timeout_s == idle);
    BOOST_TEST(item.seq == frame.seq);
  }
  // A fresh decoder (another connection) cannot read a slot it never saw.
  BOOST_TEST(message_of([&] { sync::detail::ItemDecoder{}.item(second); }).find("never filled") != std::string::npos);

  // Fill the dictionary: kIdSlots more ids, the last of which takes the
  // slot of `id`; `id` then goes in full again, and everything reads back.
  for (std::uint32_t i = 0; i < sync::detail::kIdSlots; ++i) {
    const std::string other = "other:" + std::to_string(i);
    const Frame f = encoder.frame(put_item(other, 2, 60), FrameType::Delta, 13 + i);
    BOOST_REQUIRE(decoder.item(f).delta.session_id == other);
  }
  const Frame again = encoder.frame(put_item(id, 5, 60), FrameType::Delta, 20000);
  BOOST_TEST(again.payload.size() == second.payload.size() + 1 + id.size());
  BOOST_TEST((decoder.item(again).delta == put_item(id, 5, 60).delta));
  const Frame recent = encoder.frame(put_item("other:16382", 3, 60), FrameType::Delta, 20001);
  BOOST_TEST(recent.payload.size() < again.payload.size());  // still in the dictionary
  BOOST_TEST(decoder.item(recent).delta.session_id == "other:16382");
}

// Nobody follows a standby's change log until it is promoted: what the
// daemon applies waits in the log's lanes. The apply that found its lane
// half full moved half a lane into the log at once (4,096 entries of the
// default log: 1-3 ms without applying, in the middle of the stream, which
// the backup's lag p99 showed). Now each read of the link moves what it
// applied: when feed returns, the log holds every change it made.
BOOST_AUTO_TEST_CASE(each_read_leaves_what_it_applied_in_the_standby_log) {
  Replicated r;
  std::unique_ptr<LinkUnderTest> link = r.agent();
  for (int i = 0; i < 600; ++i) {
    r.primary.put("s" + std::to_string(i % 50), "n", std::to_string(i));
    std::uint64_t next = 0;
    const std::vector<Frame> deltas = r.primary.deltas(next);
    BOOST_REQUIRE(is_ack(link->send(deltas).replies, next));
    const std::uint64_t logged = ChangeFeed(r.standby).logged_seq();
    BOOST_REQUIRE_MESSAGE(logged == ChangeFeed(r.standby).next_seq(),
                          "after read " << i << " applied changes waited in a lane, not in the log");
  }
}
