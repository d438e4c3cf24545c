// The agent and the backup daemon as separate processes over TCP on
// 127.0.0.1: the standby converges on the primary while writers commit,
// through link cuts from either side, a backup that restarts empty, a
// change log that overflows; failover and restore use the standby.
#include <boost/test/unit_test.hpp>

#include <sys/syscall.h>
#include <unistd.h>

#include <sys/stat.h>
#include <atomic>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "shm/agent_seat.hpp"
#include "shm/change_feed.hpp"
#include "shm/replica.hpp"
#include "sync/backup/restore_client.hpp"
#include "sync/client.hpp"
#include "test/sync/replication_fixture.hpp"

using namespace shmsession;
using namespace shmsession::test;
using namespace std::chrono_literals;

namespace {

void write_for(const std::string& primary, std::chrono::milliseconds duration, int writers = 2, int seed = 1) {
  std::vector<ChildProcess> children;
  for (int i = 0; i < writers; ++i) children.push_back(start_writer(primary, seed + i, duration));
  for (ChildProcess& c : children) BOOST_REQUIRE_EQUAL(c.wait(), 0);
}

// Every session the primary's change log shows committed below the
// standby's acknowledged position `acked` is on the standby at that version
// or newer.
void check_acknowledged_commits(Store& primary, Store& standby, const ReplicaPosition& acked) {
  BOOST_REQUIRE(acked.primary_store_id == primary.info().store_id);
  BOOST_REQUIRE(acked.applied_seq > 1);
  // The newest version of each session the log records below the position.
  std::map<std::string, ChangeEntry> last;
  ChangeBatch log = ChangeFeed(primary).read(1, acked.applied_seq - 1);
  BOOST_REQUIRE(!log.fell_behind);
  for (const ChangeEntry& e : log.entries) last[e.session_id] = e;
  // A session removed after the position may be on the standby as a later
  // incarnation (shipped newer than the position, as allowed), whose
  // versions restart: only sessions of one incarnation since are compared.
  std::set<std::string> reborn;
  ChangeBatch later = ChangeFeed(primary).read(acked.applied_seq, ChangeFeed(primary).next_seq());
  BOOST_REQUIRE(!later.fell_behind);
  for (const ChangeEntry& e : later.entries)
    if (e.kind != ChangeKind::Committed) reborn.insert(e.session_id);
  std::size_t checked = 0;
  for (const auto& [id, e] : last) {
    std::optional<SessionSnapshot> s = standby.peek(id);
    if (e.kind == ChangeKind::Removed || e.kind == ChangeKind::Expired) continue;  // may be re-created later
    if (reborn.contains(id)) continue;
    BOOST_REQUIRE_MESSAGE(s.has_value(), "acknowledged session " << id << " missing on the standby");
    BOOST_TEST(s->version >= e.version, id);
    ++checked;
  }
  BOOST_TEST(checked > 10u);
}

// An agent's run() in a child: 5 when it ends in Fenced (the backup's store
// superseded this one), 4 for another error, its exit code otherwise.
int run_agent_expecting_fenced(const std::string& primary, std::uint16_t port) {
  try {
    return run_agent(primary, "127.0.0.1", port);
  } catch (const Error& e) {
    return e.code() == Errc::Fenced ? 5 : 4;
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(standby_equals_primary_after_writers_stop) {
  SegmentGuard pg("rep_p"), sg("rep_s");
  Store primary = make_store(pg.name());
  const std::uint16_t port = free_port();
  ChildProcess backup = start_backup(sg.name(), port);
  ChildProcess agent = start_agent(pg.name(), port);
  write_for(pg.name(), 1500ms);
  Store standby = Store::attach(sg.name());
  BOOST_REQUIRE(wait_caught_up(primary, standby));
  check_equal(primary, standby);
  const AgentStatus status = published_status(primary);
  BOOST_TEST(status.alive);
  BOOST_TEST(status.full_resyncs == 1u);  // a new backup: one snapshot, then deltas
  BOOST_TEST(status.acked_seq == ChangeFeed(primary).next_seq());
  BOOST_TEST(status.lag_ms < 1000u);
  BOOST_TEST(status.delta_bytes < status.whole_bytes);  // patches, not whole sessions
  // SIGTERM: a clean stop with nothing left to acknowledge.
  agent.kill(SIGTERM);
  BOOST_TEST(agent.wait() == 0);
  BOOST_TEST((AgentSeat(primary).status().state == AgentState::Stopped));
}

// The first agent lives until the standby holds a snapshot of the primary;
// the agents killed after it at various points, and the last one, all
// resume from the standby's position. Each writer's cap keeps the whole run
// inside the change log, so the log covers every gap whatever the timing:
// an agent that does a full resync on restart is a defect, not bad luck.
BOOST_AUTO_TEST_CASE(agent_killed_and_restarted_while_writing_converges) {
  SegmentGuard pg("rep_p"), sg("rep_s");
  Store primary = make_store(pg.name(), 1 << 18, std::uint64_t{128} << 20);
  const std::uint16_t port = free_port();
  ChildProcess backup = start_backup(sg.name(), port);
  std::optional<Store> standby = attach_when_created(sg.name());
  BOOST_REQUIRE(standby.has_value());
  Signal stop;
  std::vector<ChildProcess> writers;
  writers.push_back(start_writer_until(pg.name(), 11, stop, 50000));  // 2 x 50k rounds: well inside 2^18 entries
  writers.push_back(start_writer_until(pg.name(), 12, stop, 50000));
  {
    ChildProcess agent = start_agent(pg.name(), port);
    BOOST_REQUIRE_MESSAGE(
        poll_until([&] { return Replica(*standby).position().primary_store_id == primary.info().store_id; }),
        "the first agent never finished its full resync");
    agent.kill(SIGKILL);
    agent.wait();
  }
  for (int round = 0; round < 6; ++round) {
    ChildProcess agent = start_agent(pg.name(), port);
    std::this_thread::sleep_for(std::chrono::milliseconds(200 + 70 * round));  // where the kill lands varies
    agent.kill(SIGKILL);
    agent.wait();
  }
  for (std::size_t i = 0; i < writers.size(); ++i) stop.notify();
  for (ChildProcess& w : writers) BOOST_REQUIRE_EQUAL(w.wait(), 0);
  const AgentStatus killed = AgentSeat(primary).status();
  ChildProcess agent = start_agent(pg.name(), port);
  BOOST_REQUIRE(wait_caught_up(primary, *standby));
  check_equal(primary, *standby);
  const AgentStatus status = published_status(primary);
  BOOST_TEST_MESSAGE("all agents: " << status.partial_resyncs << " partial, " << status.full_resyncs
                                    << " full resyncs, " << status.reconnects << " reconnects");
  // The counters go on across the agents (kept in the segment); the last
  // one resumed from the log (once, unless its link dropped under load).
  BOOST_TEST(status.full_resyncs == killed.full_resyncs);
  BOOST_TEST(status.full_resyncs >= 1u);  // the first agent's
  BOOST_TEST(status.partial_resyncs >= killed.partial_resyncs + 1);
  BOOST_TEST(status.frames_sent >= killed.frames_sent);
  BOOST_TEST(status.wire_bytes >= killed.wire_bytes);
}

// Writers run until the agent has lived through five cuts; their cap keeps
// everything inside the change log, so every reconnect can resume from it.
BOOST_AUTO_TEST_CASE(connection_dropped_by_the_backup_converges) {
  SegmentGuard pg("rep_p"), sg("rep_s");
  Store primary = make_store(pg.name(), 1 << 18, std::uint64_t{128} << 20);
  const std::uint16_t port = free_port();
  ChildProcess backup = start_backup(sg.name(), port, 150ms);  // cuts the link every 150 ms
  ChildProcess agent = start_agent(pg.name(), port);
  Signal stop;
  std::vector<ChildProcess> writers;
  writers.push_back(start_writer_until(pg.name(), 1, stop, 50000));  // 2 x 50k rounds: well inside 2^18 entries
  writers.push_back(start_writer_until(pg.name(), 2, stop, 50000));
  AgentStatus status;
  const bool cut_often = poll_until([&] {
    status = AgentSeat(primary).status();
    return status.reconnects >= 5 && status.partial_resyncs >= 5;
  });
  for (std::size_t i = 0; i < writers.size(); ++i) stop.notify();
  for (ChildProcess& w : writers) BOOST_REQUIRE_EQUAL(w.wait(), 0);
  BOOST_REQUIRE_MESSAGE(cut_often, "the agent did not resume 5 times: " << status.reconnects << " reconnects, "
                                                                        << status.partial_resyncs
                                                                        << " partial resyncs");
  std::optional<Store> standby = attach_when_created(sg.name());
  BOOST_REQUIRE(standby.has_value());
  BOOST_REQUIRE(wait_caught_up(primary, *standby));
  check_equal(primary, *standby);
  status = published_status(primary);
  BOOST_TEST_MESSAGE(status.reconnects << " reconnects, " << status.partial_resyncs << " partial resyncs");
  BOOST_TEST(status.full_resyncs == 1u);  // the standby kept its position across every cut
}

BOOST_AUTO_TEST_CASE(backup_restarted_empty_gets_a_full_resync) {
  SegmentGuard pg("rep_p"), sg("rep_s");
  Store primary = make_store(pg.name());
  const std::uint16_t port = free_port();
  std::optional<ChildProcess> backup;
  backup.emplace(start_backup(sg.name(), port));
  ChildProcess agent = start_agent(pg.name(), port);
  write_for(pg.name(), 800ms);
  {
    Store standby = Store::attach(sg.name());
    BOOST_REQUIRE(wait_caught_up(primary, standby));
  }
  backup->kill(SIGKILL);
  backup->wait();
  Store::remove(sg.name());  // the backup host lost its standby
  write_for(pg.name(), 500ms, 1, 7);
  backup.emplace(start_backup(sg.name(), port));
  write_for(pg.name(), 500ms, 1, 8);
  Store standby = Store::attach(sg.name());
  BOOST_REQUIRE(wait_caught_up(primary, standby));
  check_equal(primary, standby);
  BOOST_TEST(published_status(primary).full_resyncs == 2u);
}

BOOST_AUTO_TEST_CASE(change_log_overflow_falls_back_to_a_full_resync) {
  SegmentGuard pg("rep_p"), sg("rep_s");
  Store primary = make_store(pg.name(), 256);  // a small log: a lagging backup falls out of it
  const std::uint16_t port = free_port();
  std::optional<ChildProcess> backup;
  backup.emplace(start_backup(sg.name(), port));
  write_for(pg.name(), 300ms, 1, 3);
  ChildProcess agent = start_agent(pg.name(), port);
  {
    Store standby = Store::attach(sg.name());
    BOOST_REQUIRE(wait_caught_up(primary, standby));
  }
  backup->kill(SIGKILL);  // the standby keeps its position, but the log moves on
  backup->wait();
  const std::uint64_t before = ChangeFeed(primary).next_seq();
  ChildProcess writer = start_counted_writer(pg.name(), 4, 2000);  // one writer: each round logs a change
  BOOST_REQUIRE_EQUAL(writer.wait(), 0);
  BOOST_REQUIRE(ChangeFeed(primary).next_seq() - before > 256);
  backup.emplace(start_backup(sg.name(), port));
  Store standby = Store::attach(sg.name());
  BOOST_REQUIRE(wait_caught_up(primary, standby));
  check_equal(primary, standby);
  // The first connection and the overflow each resynced in full; an agent
  // that polled the log before it noticed the backup was gone counted the
  // overflow once more at the reconnect. Never a partial resync: the log
  // no longer covered the standby's position.
  BOOST_TEST(published_status(primary).full_resyncs >= 2u);
  BOOST_TEST(published_status(primary).partial_resyncs == 0u);
}

// A change lane holds only a share of the log (here 4096 entries: 64
// lanes; one process writes one of them).
// While the backup is gone the agent ships nothing, but the writers move
// the lanes' entries into the log (each when its lane is half full), so a
// backlog larger than a lane and smaller than the log comes back as deltas
// (a partial resync), not a full one. (Sequenced only when the agent
// polled, the lane overflowed and the agent resynced in full.)
BOOST_AUTO_TEST_CASE(a_backlog_larger_than_a_lane_stays_in_the_log) {
  SegmentGuard pg("rep_p"), sg("rep_s");
  Store primary = make_store(pg.name(), 1 << 18, std::uint64_t{192} << 20, 64);  // lanes of 4096 entries
  const std::uint16_t port = free_port();
  std::optional<ChildProcess> backup;
  backup.emplace(start_backup(sg.name(), port));
  ChildProcess agent = start_agent(pg.name(), port);
  write_for(pg.name(), 300ms, 1, 3);
  {
    Store standby = Store::attach(sg.name());
    BOOST_REQUIRE(wait_caught_up(primary, standby));
  }
  backup->kill(SIGKILL);
  backup->wait();
  const std::uint64_t before = ChangeFeed(primary).next_seq();
  // 60,000 commits a second: more than a lane holds between two of the
  // agent's status ticks (100 ms).
  ChildProcess writer = start_counted_writer(pg.name(), 4, 100000, 60000, false);  // each round a commit
  BOOST_REQUIRE_EQUAL(writer.wait(), 0);
  const std::uint64_t logged = ChangeFeed(primary).next_seq() - before;
  BOOST_TEST_MESSAGE("logged " << logged);
  backup.emplace(start_backup(sg.name(), port));
  Store standby = Store::attach(sg.name());
  BOOST_REQUIRE(wait_caught_up(primary, standby));
  check_equal(primary, standby);
  BOOST_TEST(logged > 4096u * 4);                            // many times what a lane holds
  BOOST_TEST(published_status(primary).full_resyncs == 1u);  // the first connection's
  BOOST_TEST(published_status(primary).partial_resyncs >= 1u);
}

// The failover drill: the primary's host dies under load (its agent with
// it, mid-stream); every change below the acknowledged position is on the
// standby; the standby is promoted while its backup daemon runs on; app
// servers write to it with the ordinary library; the old primary comes back. Its agent is refused and
// fences it, so its app servers' commits fail with Fenced instead of
// diverging; the promoted store lost nothing the backup had acknowledged
// and took nothing from the returning primary.
BOOST_AUTO_TEST_CASE(failover_drill_fences_the_returning_primary) {
  SegmentGuard pg("rep_p"), sg("rep_s");
  Store primary = make_store(pg.name(), 1 << 19, std::uint64_t{256} << 20);  // keeps every change for the check
  const std::uint16_t port = free_port();
  ChildProcess backup = start_backup(sg.name(), port);
  ChildProcess agent = start_agent(pg.name(), port);
  Signal stop;
  ChildProcess writer = start_writer_until(pg.name(), 23, stop, 200000, 20000, false);
  BOOST_REQUIRE_MESSAGE(poll_until([&] { return AgentSeat(primary).status().acked_seq >= 2000; }),
                        "the backup never acknowledged 2000 changes");
  agent.kill(SIGKILL);  // the primary host dies mid-stream
  agent.wait();
  stop.notify();
  BOOST_REQUIRE_EQUAL(writer.wait(), 0);

  // The daemon may still be applying frames the dead agent had sent (they
  // wait in its socket): the position the promotion stops at is the one
  // the standby answers for, and no frame lands after it.
  Store standby = Store::attach(sg.name());
  const ReplicaPosition before = Replica(standby).position();
  BOOST_TEST(Replica(standby).promote() == 2u);
  const ReplicaPosition acked = Replica(standby).failover_state().promoted_from;
  BOOST_TEST((acked.primary_store_id == primary.info().store_id));
  BOOST_TEST(acked.applied_seq >= before.applied_seq);
  BOOST_TEST(AgentSeat(primary).status().acked_seq <= acked.applied_seq);  // all the dead agent was told
  check_acknowledged_commits(primary, standby, acked);
  ChildProcess app([&] {
    Store store = Store::attach(sg.name());
    sync::Client client(store);
    for (int i = 0; i < 50; ++i) {
      sync::SessionHandle session = client.open("failover-" + std::to_string(i));
      session.put<std::string>("user", "u" + std::to_string(i));
      session.commit();
    }
    return 0;
  });
  BOOST_TEST(app.wait() == 0);

  // The old primary returns: nobody told its app servers yet, so they write,
  // and its agent starts again.
  primary.create_session("after-failover");
  primary.commit("after-failover", CommitBatch{}.put("user", "lost"));
  ChildProcess returning([&] { return run_agent_expecting_fenced(pg.name(), port); });
  BOOST_TEST(returning.wait_for(120s) == 5, "the returning agent did not end fenced");
  const FailoverState old = Replica(primary).failover_state();
  BOOST_TEST(old.fenced_by == 2u);
  BOOST_TEST(old.epoch == 1u);
  BOOST_TEST((code_of([&] { primary.commit("after-failover", CommitBatch{}.put("user", "x")); }) == Errc::Fenced));
  BOOST_TEST((code_of([&] { primary.create_session("new-on-old"); }) == Errc::Fenced));
  BOOST_TEST(primary.peek("after-failover").has_value());  // reads go on, to drain
  BOOST_TEST(!standby.peek("after-failover").has_value());
  BOOST_TEST(standby.peek("failover-49").has_value());
  BOOST_TEST((Replica(standby).failover_state() == FailoverState{2, true, 0, acked}));
  // An agent on a fenced store refuses to start.
  BOOST_TEST(ChildProcess([&] { return run_agent_expecting_fenced(pg.name(), port); }).wait_for(60s) == 5);
  backup.kill(SIGKILL);
  backup.wait();
}

// Promoted under a live agent (the old primary cut off, not dead): the
// backup refuses its next frame, and the agent, reconnecting, learns that
// its store was superseded: it fences it and stops.
BOOST_AUTO_TEST_CASE(a_standby_promoted_under_a_live_agent_fences_its_primary) {
  SegmentGuard pg("rep_p"), sg("rep_s");
  Store primary = make_store(pg.name());
  const std::uint16_t port = free_port();
  ChildProcess backup = start_backup(sg.name(), port);
  ChildProcess agent([&] { return run_agent_expecting_fenced(pg.name(), port); });
  write_for(pg.name(), 300ms, 1);
  std::optional<Store> standby = attach_when_created(sg.name());
  BOOST_REQUIRE(standby);
  BOOST_REQUIRE(wait_caught_up(primary, *standby));
  primary.create_session("late");
  Replica(*standby).promote();
  // Commits keep coming on the old primary until its agent learns of it.
  BOOST_REQUIRE_MESSAGE(
      poll_until([&] { return code_of([&] { primary.commit("late", CommitBatch{}.put("a", "b")); }) == Errc::Fenced; }),
      "the primary was never fenced");
  BOOST_TEST(agent.wait_for(60s) == 5);
  BOOST_TEST(Replica(primary).failover_state().fenced_by == 2u);
  backup.kill(SIGKILL);
  backup.wait();
}

// The replication bound with a real agent and backup daemon: writes go
// while the backup acknowledges; frozen (SIGSTOP: a link that answers
// nothing), the agent's lag passes the bound and writes are refused with
// ReplicaBehind; a write waiting when the daemon resumes goes through.
BOOST_AUTO_TEST_CASE(the_replication_bound_holds_writes_while_the_backup_is_frozen) {
  SegmentGuard pg("rep_p"), sg("rep_s");
  Store primary = make_store(pg.name());
  primary.create_session("bounded");
  const std::uint16_t port = free_port();
  ChildProcess backup = start_backup(sg.name(), port);
  ChildProcess agent = start_agent(pg.name(), port);
  std::optional<Store> standby = attach_when_created(sg.name());
  BOOST_REQUIRE(standby);
  BOOST_REQUIRE(wait_caught_up(primary, *standby));
  BOOST_REQUIRE(poll_until([&] { return AgentSeat(primary).status().acked_seq == ChangeFeed(primary).next_seq(); }));
  primary.set_replication_bound({300, 0});
  std::uint64_t n = 0;
  auto commit = [&] { primary.commit("bounded", CommitBatch{}.put("n", std::to_string(++n))); };
  BOOST_TEST(!code_of(commit).has_value());

  backup.kill(SIGSTOP);
  BOOST_REQUIRE_MESSAGE(poll_until([&] { return code_of(commit) == Errc::ReplicaBehind; }),
                        "writes were never held by the bound");
  BOOST_TEST(primary.stats().bound_refusals >= 1u);
  const std::uint64_t version = primary.peek("bounded")->version;

  primary.set_replication_bound({300, 600000});
  std::atomic<pid_t> tid{0};
  std::optional<Errc> outcome{Errc::Io};
  std::thread writer([&] {
    tid = static_cast<pid_t>(::syscall(SYS_gettid));
    outcome = code_of(commit);
  });
  while (tid.load() == 0) std::this_thread::yield();
  BOOST_REQUIRE(wait_until_thread_in_futex(tid.load(), 60s));
  BOOST_TEST(primary.peek("bounded")->version == version);  // waiting, nothing written
  backup.kill(SIGCONT);
  writer.join();
  BOOST_TEST(!outcome.has_value(), "the waiting write failed");
  BOOST_TEST(primary.peek("bounded")->version == version + 1);
  BOOST_TEST(primary.stats().bound_waits >= 1u);
  BOOST_REQUIRE(wait_caught_up(primary, *standby));
  check_equal(primary, *standby);
  agent.kill(SIGKILL);
  agent.wait();
  backup.kill(SIGKILL);
  backup.wait();
}

// The agent measures what it ships while the backup is behind (sessions
// acknowledged a second), which the replication bound divides the backlog
// by: with nothing behind it is not measured (0 at the first catch-up);
// an unpaced writer then outruns an agent that polls 64 changes at a time
// (a backlog of more than a poll, for many polls), and the status carries
// the figure once the agent caught up. (A long acknowledgement deadline:
// a loaded machine must not make the agent reconnect.)
BOOST_AUTO_TEST_CASE(the_agent_measures_what_it_ships_while_the_backup_is_behind) {
  SegmentGuard pg("rep_p"), sg("rep_s");
  Store primary = make_store(pg.name(), 1 << 18, std::uint64_t{128} << 20);
  const std::uint16_t port = free_port();
  ChildProcess backup = start_backup(sg.name(), port);
  ChildProcess agent([&] {
    return run_agent(pg.name(), "127.0.0.1", port, [](sync::AgentOptions& o) {
      o.max_batch_entries = 64;
      o.ack_timeout = 60s;
    });
  });
  std::optional<Store> standby = attach_when_created(sg.name());
  BOOST_REQUIRE(standby);
  BOOST_REQUIRE(wait_caught_up(primary, *standby));
  const AgentStatus before = published_status(primary);
  BOOST_TEST(before.shipped_per_s == 0u);
  ChildProcess writer = start_counted_writer(pg.name(), 7, 100000, 1000000, false);
  BOOST_REQUIRE_EQUAL(writer.wait(), 0);
  BOOST_REQUIRE(wait_caught_up(primary, *standby));
  const AgentStatus status = published_status(primary);
  BOOST_TEST(status.shipped_per_s > 0u);
  BOOST_TEST(status.reconnects == before.reconnects);
  BOOST_TEST_MESSAGE("shipped " << status.shipped_per_s << " sessions a second while behind");
  check_equal(primary, *standby);
  agent.kill(SIGTERM);
  BOOST_TEST(agent.wait_for(60s) == 0);
}

namespace {

// Every session of `store`: its version and attributes (name, value, flags).
using StoreState = std::map<std::string, std::pair<std::uint64_t, std::vector<std::string>>>;
StoreState state_of(Store& store) {
  StoreState state;
  store.for_each_session([&](const SessionInfo& info) {
    std::optional<SessionSnapshot> s = store.peek(info.id);
    if (!s) return true;
    auto& [version, attributes] = state[info.id];
    version = s->version;
    for (const Attribute& a : s->attributes)
      attributes.push_back(a.name + "=" + a.value + "/" + std::to_string(a.flags));
    return true;
  });
  return state;
}

}  // namespace

// Failing over at random moments of a full resync: the standby is always
// what the primary was at the position it acknowledged, either as it was
// before the resync or the whole snapshot, never a mix (the snapshot is
// built beside it). Five rounds, the promotion landing at a different
// moment each time: as the snapshot begins, during it, after it.
BOOST_AUTO_TEST_CASE(failing_over_during_a_full_resync_leaves_a_consistent_standby) {
  int kept_old = 0, took_new = 0;
  for (int round = 0; round < 5; ++round) {
    SegmentGuard pg("rep_p"), sg("rep_s");
    Store primary = make_store(pg.name(), 256);  // a log too small for the gap below
    for (int i = 0; i < 1500; ++i) {
      const std::string id = "s" + std::to_string(i);
      primary.create_session(id);
      primary.commit(id, CommitBatch{}.put("v", std::string(4000, static_cast<char>('a' + i % 26))));
    }
    const std::uint16_t port = free_port();
    ChildProcess backup = start_backup(sg.name(), port);
    std::optional<Store> standby;
    {
      ChildProcess first = start_agent(pg.name(), port);
      standby = attach_when_created(sg.name());
      BOOST_REQUIRE(standby);
      BOOST_REQUIRE(wait_caught_up(primary, *standby));
      first.kill(SIGKILL);
      first.wait();
    }
    const StoreState old = state_of(*standby);
    BOOST_REQUIRE(old == state_of(primary));
    const ReplicaPosition before = Replica(*standby).position();
    // More changes than the log holds: the next agent sends a full resync.
    for (int i = 0; i < 1500; ++i)
      primary.commit("s" + std::to_string(i),
                     CommitBatch{}.put("v", std::string(4000, 'z') + std::to_string(round) + "-" + std::to_string(i)));
    const StoreState now = state_of(primary);
    ChildProcess second = start_agent(pg.name(), port);
    const std::string draft = "/dev/shm/" + sg.name() + "~resync";
    // Watched closely (the snapshot takes tens of milliseconds); a bound
    // only to fail instead of hang.
    const auto give_up = std::chrono::steady_clock::now() + 120s;
    while (!std::filesystem::exists(draft) && Replica(*standby).position() == before)
      BOOST_REQUIRE_MESSAGE(std::chrono::steady_clock::now() < give_up, "the full resync never began");
    if (round < 4) {
      std::this_thread::sleep_for(std::chrono::milliseconds(round * round * 4));  // 0..36 ms: where it lands
    } else {  // the last round promotes once the snapshot is in
      BOOST_REQUIRE(poll_until([&] { return Replica(*standby).position() != before; }));
    }
    Replica(*standby).promote();
    second.kill(SIGKILL);
    second.wait();
    backup.kill(SIGKILL);
    backup.wait();
    const ReplicaPosition at = Replica(*standby).failover_state().promoted_from;
    const StoreState promoted = state_of(*standby);
    if (at == before) {
      ++kept_old;
      BOOST_TEST((promoted == old), "round " << round << ": the standby at its old position is not the old state");
    } else {
      ++took_new;
      BOOST_TEST(at.applied_seq > before.applied_seq);
      BOOST_TEST((promoted == now), "round " << round << ": the standby past the resync is not the snapshot");
    }
  }
  BOOST_TEST_MESSAGE("promoted with the old state " << kept_old << " times, with the snapshot " << took_new
                                                    << " times");
  BOOST_TEST(kept_old >= 1);  // promoted mid-snapshot (the first round promotes as it begins)
  BOOST_TEST(took_new >= 1);
}

// An agent that must send a full resync reports nothing acknowledged until
// the snapshot is: here to a backup whose standby is too small for the
// primary's sessions, so every snapshot ends in an error and another full
// resync. It used to keep reporting what the previous backup had
// acknowledged, as if this one held the primary up to there.
BOOST_AUTO_TEST_CASE(an_agent_in_full_resync_reports_nothing_acknowledged) {
  SegmentGuard pg("rep_p"), sg("rep_s"), tg("rep_t");
  Store primary = make_store(pg.name());
  for (int i = 0; i < 40; ++i) {  // 8 MB: more than the small standby holds
    const std::string id = "big-" + std::to_string(i);
    primary.create_session(id);
    primary.commit(id, CommitBatch{}.put("value", std::string(200000, static_cast<char>('a' + i % 26))));
  }
  const std::uint16_t port = free_port();
  ChildProcess agent = start_agent(pg.name(), port);
  std::uint64_t acked_before = 0;
  {
    ChildProcess backup = start_backup(sg.name(), port);
    BOOST_REQUIRE(poll_until([&] { return Store::exists(sg.name()); }));
    Store standby = Store::attach(sg.name());
    BOOST_REQUIRE(wait_caught_up(primary, standby));
    acked_before = published_status(primary).acked_seq;
    BOOST_REQUIRE(acked_before > 1);
    backup.kill(SIGKILL);
    backup.wait();
  }
  const std::uint64_t resyncs_before = AgentSeat(primary).status().full_resyncs;
  CreateOptions small;
  small.size_bytes = 4 << 20;
  small.shards = 4;
  Store::create(tg.name(), small);
  ChildProcess backup = start_backup(tg.name(), port);  // opens the small standby
  BOOST_REQUIRE_MESSAGE(poll_until([&] { return AgentSeat(primary).status().full_resyncs >= resyncs_before + 2; }),
                        "the agent never tried the small standby twice");
  const AgentStatus status = AgentSeat(primary).status();
  BOOST_TEST(status.acked_seq < acked_before, "acked " << status.acked_seq << " while no snapshot was acknowledged");
  Store standby = Store::attach(tg.name());
  BOOST_TEST(!Replica(standby).position().follows_a_primary());
}

BOOST_AUTO_TEST_CASE(restore_fills_an_empty_primary_from_the_backup) {
  SegmentGuard pg("rep_p"), sg("rep_s"), rg("rep_r");
  Store primary = make_store(pg.name());
  const std::uint16_t port = free_port();
  ChildProcess backup = start_backup(sg.name(), port);
  ChildProcess agent = start_agent(pg.name(), port);
  write_for(pg.name(), 800ms);
  Store standby = Store::attach(sg.name());
  BOOST_REQUIRE(wait_caught_up(primary, standby));

  Store restored = make_store(rg.name());
  const sync::RestoreResult result = sync::restore_from_backup(restored, {"127.0.0.1", port}, replication_key());
  BOOST_TEST(result.sessions == primary.stats().sessions);
  BOOST_TEST((result.backup_position.primary_store_id == primary.info().store_id));
  check_equal(primary, restored);
  // Only an empty store is filled; the wrong key is refused by the daemon.
  BOOST_TEST((code_of([&] {
                sync::restore_from_backup(restored, {"127.0.0.1", port}, replication_key());
              }) == Errc::InvalidArgument));
  SegmentGuard eg("rep_e");
  Store empty = make_store(eg.name());
  const std::optional<Errc> wrong = code_of([&] {
    sync::restore_from_backup(empty, {"127.0.0.1", port}, replication_key(0x99), 2000ms);
  });
  BOOST_TEST((wrong == Errc::Io || wrong == Errc::Corrupt));
  BOOST_TEST(empty.stats().sessions == 0u);
}

// Keys rotate with neither side stopped (README, "Rotating the replication
// key"): the daemon's key file gains the new key, the agent's holds only
// the new key and SIGHUP makes it connect again with it, then the daemon's
// holds only the new key. Writers commit throughout; each reconnection
// resumes from the change log (no full resync), and at the end the old key
// is refused while the standby equals the primary.
BOOST_AUTO_TEST_CASE(a_key_rotates_without_stopping_either_side) {
  SegmentGuard pg("rot_p"), sg("rot_s"), eg("rot_e");
  Store primary = make_store(pg.name());
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("replication_test_keys_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  struct RemoveDir {
    std::filesystem::path path;
    ~RemoveDir() { std::filesystem::remove_all(path); }
  } remove_dir{dir};
  auto write_keys = [](const std::filesystem::path& file, const std::string& lines) {
    const std::filesystem::path next = file.string() + ".next";
    std::ofstream(next, std::ios::trunc) << lines;
    BOOST_REQUIRE(::chmod(next.c_str(), 0600) == 0);
    std::filesystem::rename(next, file);  // whole, as `mv` puts it
  };
  const sync::wire::Key old_key = replication_key(), new_key = replication_key(0x77);
  const std::string backup_keys = (dir / "backup.key").string(), agent_keys = (dir / "agent.key").string();
  write_keys(backup_keys, key_line(old_key));
  write_keys(agent_keys, key_line(old_key));

  const std::uint16_t port = free_port();
  ChildProcess backup([&] { return serve_backup(sg.name(), "127.0.0.1", port, 0ms, backup_keys); });
  ChildProcess agent(
      [&] { return run_agent(pg.name(), "127.0.0.1", port, [&](sync::AgentOptions& o) { o.key_file = agent_keys; }); });
  Signal stop;
  std::vector<ChildProcess> writers;
  for (int i = 0; i < 2; ++i) writers.push_back(start_writer_until(pg.name(), 31 + i, stop, 40000, 2000));
  std::optional<Store> standby = attach_when_created(sg.name());
  BOOST_REQUIRE(standby.has_value());
  // The first sync (a full one) is complete: the standby follows the primary.
  BOOST_REQUIRE(poll_until([&] {
    return Replica(*standby).position().primary_store_id == primary.info().store_id &&
           AgentSeat(primary).status().state == AgentState::Streaming;
  }));
  const AgentStatus start = AgentSeat(primary).status();

  // Reconnects the agent by SIGHUP; true once it resumed from the log again.
  auto reconnect = [&](const char* step) {
    const std::uint64_t resumed = AgentSeat(primary).status().partial_resyncs;
    BOOST_REQUIRE(::kill(agent.pid(), SIGHUP) == 0);
    const bool ok = poll_until(
        [&] {
          const AgentStatus s = AgentSeat(primary).status();
          return s.partial_resyncs > resumed && s.state == AgentState::Streaming;
        },
        60s);
    BOOST_TEST(ok, step << ": the agent did not resume; last error: " << AgentSeat(primary).status().last_error);
  };
  write_keys(backup_keys, key_line(old_key) + key_line(new_key));  // 1. the daemon accepts both
  reconnect("old key, daemon holding both");
  write_keys(agent_keys, key_line(new_key));  // 2. the agent moves to the new key
  reconnect("new key, daemon holding both");
  write_keys(backup_keys, key_line(new_key));  // 3. the daemon drops the old key
  reconnect("new key, daemon holding the new key only");

  // The old key is refused now; the new one is accepted.
  Store empty = make_store(eg.name());
  const std::string refusal = message_of([&] {
    sync::restore_from_backup(empty, {"127.0.0.1", port}, old_key, 10000ms);
  });
  BOOST_TEST(refusal.find("the backup has no key with this end's key id") != std::string::npos, refusal);

  for (std::size_t i = 0; i < writers.size(); ++i) stop.notify();
  for (ChildProcess& w : writers) BOOST_REQUIRE_EQUAL(w.wait(), 0);
  BOOST_REQUIRE(wait_caught_up(primary, *standby));
  check_equal(primary, *standby);
  const AgentStatus end = published_status(primary);
  BOOST_TEST(end.full_resyncs == start.full_resyncs);
  BOOST_TEST(end.partial_resyncs >= start.partial_resyncs + 3);
  BOOST_TEST(sync::restore_from_backup(empty, {"127.0.0.1", port}, new_key).sessions == primary.stats().sessions);
  agent.kill(SIGTERM);
  BOOST_TEST(agent.wait_for(60s) == 0);
}
