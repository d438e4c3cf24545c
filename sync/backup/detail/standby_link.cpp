#include "sync/backup/detail/standby_link.hpp"

#include <algorithm>

#include "diff/delta.hpp"
#include "shm/replica.hpp"
#include "sync/backup/detail/replication_item.hpp"

namespace shmsession::sync::detail {
namespace {

bool is_zero(const wire::detail::StoreId& id) {
  return std::all_of(id.begin(), id.end(), [](std::uint8_t b) { return b == 0; });
}

}  // namespace

StandbyLink::StandbyLink(Store& standby, const wire::KeyRing& keys, wire::FrameLimits limits)
    : standby_(standby), codec_(keys, wire::detail::Side::Server, limits), applier_(standby) {}

StandbyLink::Output StandbyLink::feed(std::string_view bytes) {
  Output out;
  if (closed_) return out;
  bool framed = false;
  try {
    codec_.feed(bytes);
    while (!closed_) {
      std::optional<wire::detail::Frame> frame = codec_.next();
      if (!frame) break;
      framed = true;
      handle(*frame, out);
    }
  } catch (const Error& e) {
    fail(e.what(), out);
  }
  if (framed) applier_.sequence_log();
  if (!closed_ && role_ == Role::Agent && pending_.empty() && valid_ && !in_snapshot_ && position_ > acked_) {
    send(wire::detail::make_ack(position_), out);
    acked_ = position_;
  }
  // Frames that moved no position (a snapshot being applied, a resend
  // awaited) are answered too, with what was acknowledged before: the
  // agent knows the link is alive without a heartbeat, which it does not
  // send while it streams (a dead link is noticed within three heartbeats,
  // AgentOptions::ack_timeout, and a long snapshot must not look dead).
  if (framed && !closed_ && role_ == Role::Agent && out.bytes.empty()) send(wire::detail::make_ack(acked_), out);
  // The answer to the client's opening goes before any frame (it is made
  // when the opening is read, and also when its key is unknown: no frame
  // can then be sealed, and the answer says why).
  out.bytes.insert(0, codec_.take_answer());
  return out;
}

void StandbyLink::handle(const wire::detail::Frame& frame, Output& out) {
  using wire::detail::FrameType;
  if (role_ == Role::Unknown) {
    if (frame.type == FrameType::Hello) return on_hello(frame, out);
    if (frame.type == FrameType::RestoreRequest) return on_restore_request(frame, out);
    return fail("expected Hello or RestoreRequest first, got " + std::string(wire::detail::frame_type_name(frame.type)),
                out);
  }
  if (frame.type == FrameType::Error) {
    out.reason = "peer reported: " + wire::detail::parse_error(frame);  // a malformed one fails the link instead
    out.close = closed_ = true;
    return;
  }
  if (role_ == Role::Restore)
    return fail("a restore client sends nothing after RestoreRequest, got " +
                    std::string(wire::detail::frame_type_name(frame.type)),
                out);
  switch (frame.type) {
    case FrameType::Delta:
    case FrameType::SnapshotSession:
    case FrameType::Removal:
      return on_item(frame, out);
    case FrameType::SnapshotBegin:
      return on_snapshot_begin(frame, out);
    case FrameType::SnapshotEnd:
      return on_snapshot_end(frame, out);
    case FrameType::Heartbeat:
      return on_heartbeat(frame, out);
    default:
      return fail("unexpected " + std::string(wire::detail::frame_type_name(frame.type)) + " frame from an agent", out);
  }
}

void StandbyLink::on_hello(const wire::detail::Frame& frame, Output& out) {
  const wire::detail::Hello hello = wire::detail::parse_hello(frame);
  if (is_zero(hello.store_id)) return fail("Hello names no store (all-zero store id)", out);
  role_ = Role::Agent;
  agent_store_ = hello.store_id;
  Replica replica(standby_);
  if (!replica.admit(hello.epoch)) return refuse_agent(hello, out);
  const ReplicaPosition stored = replica.position();
  wire::detail::Welcome welcome;
  welcome.store_id = stored.primary_store_id;
  welcome.last_applied_seq = stored.applied_seq;
  welcome.epoch = replica.failover_state().epoch;
  valid_ = stored.primary_store_id == hello.store_id && stored.applied_seq > 0;
  position_ = last_seq_ = acked_ = valid_ ? stored.applied_seq : 0;
  if (!valid_ && stored.follows_a_primary())
    out.log.push_back("standby follows store " + hex_store_id(stored.primary_store_id) + "; agent of store " +
                      hex_store_id(hello.store_id) + " connected: it must send a full resync");
  send(wire::detail::make_welcome(welcome), out);
}

// An agent whose store this one superseded (it was promoted), or whose
// epoch is older than the standby's (a newer primary's agent was admitted
// here): the Welcome says why, so that an agent superseded by this very
// store fences its own (sync/backup/agent.cpp), and the link closes.
void StandbyLink::refuse_agent(const wire::detail::Hello& hello, Output& out) {
  const FailoverState state = Replica(standby_).failover_state();
  wire::detail::Welcome welcome;
  welcome.epoch = state.epoch;
  welcome.promoted = state.promoted;
  if (state.promoted) {
    welcome.store_id = state.promoted_from.primary_store_id;
    welcome.last_applied_seq = state.promoted_from.applied_seq;
  } else {
    const ReplicaPosition stored = Replica(standby_).position();
    welcome.store_id = stored.primary_store_id;
    welcome.last_applied_seq = stored.applied_seq;
  }
  send(wire::detail::make_welcome(welcome), out);
  const std::string agent =
      "agent of store " + hex_store_id(hello.store_id) + " (epoch " + std::to_string(hello.epoch) + ") refused: ";
  if (state.promoted)
    return fail(agent + "this store was promoted to a primary at epoch " + std::to_string(state.epoch) +
                    (state.promoted_from.follows_a_primary()
                         ? " in place of store " + hex_store_id(state.promoted_from.primary_store_id)
                         : std::string()) +
                    "; it follows no primary",
                out);
  fail(agent + "the standby has epoch " + std::to_string(state.epoch) +
           ", newer than the agent's store: that store was superseded",
       out);
}

void StandbyLink::on_restore_request(const wire::detail::Frame& frame, Output& out) {
  wire::detail::parse_restore_request(frame);
  role_ = Role::Restore;
  const ReplicaPosition stored = Replica(standby_).position();
  restore_seq_ = stored.applied_seq;
  standby_.for_each_session([&](const SessionInfo& info) {
    restore_ids_.push_back(info.id);
    return true;
  });
  const FailoverState state = Replica(standby_).failover_state();
  send(wire::detail::make_welcome(
           wire::detail::Welcome{stored.primary_store_id, stored.applied_seq, state.epoch, state.promoted}),
       out);
  send(wire::detail::Frame{wire::detail::FrameType::SnapshotBegin, restore_seq_, {}}, out);
  out.log.push_back("restore: streaming " + std::to_string(restore_ids_.size()) + " sessions");
}

std::string StandbyLink::next_restore_chunk(std::size_t max_bytes) {
  std::string chunk;
  while (restore_next_ < restore_ids_.size() && chunk.size() < max_bytes) {
    const std::string& id = restore_ids_[restore_next_++];
    std::optional<SessionSnapshot> snap = standby_.peek(id);
    if (!snap) continue;  // removed since the list was taken
    diff::AttributeMap attrs;
    for (const Attribute& a : snap->attributes) attrs.emplace(a.name, std::make_pair(a.value, a.flags));
    Outgoing item;
    item.delta = diff::make_delta(id, 0, snap->version, {}, attrs);
    item.idle_timeout_s = snap->idle_timeout_s;
    chunk += codec_.encode(items_out_.frame(item, wire::detail::FrameType::SnapshotSession, restore_seq_));
  }
  if (restore_next_ == restore_ids_.size() && chunk.size() < max_bytes) {
    chunk += codec_.encode(wire::detail::Frame{wire::detail::FrameType::SnapshotEnd, restore_seq_, {}});
    ++restore_next_;
  }
  return chunk;
}

void StandbyLink::on_snapshot_begin(const wire::detail::Frame& frame, Output& out) {
  if (in_snapshot_) return fail("SnapshotBegin inside a full resync", out);
  if (!frame.payload.empty()) return fail("SnapshotBegin carries no payload", out);
  // The snapshot is built beside the standby, which keeps its state and
  // position until SnapshotEnd (a link lost midway leaves it as it was).
  // Nothing is acknowledged meanwhile (the answers say 0).
  acked_ = 0;
  applier_.begin_full();
  in_snapshot_ = true;
  valid_ = false;
  snapshot_seq_ = frame.seq;
  last_seq_ = position_ = frame.seq;
  pending_.clear();
  out.log.push_back("full resync from store " + hex_store_id(agent_store_) + " at seq " + std::to_string(frame.seq));
}

void StandbyLink::on_snapshot_end(const wire::detail::Frame& frame, Output& out) {
  if (!in_snapshot_) return fail("SnapshotEnd without SnapshotBegin", out);
  if (frame.seq != snapshot_seq_ || !frame.payload.empty())
    return fail("SnapshotEnd for seq " + std::to_string(frame.seq) + " ends the resync begun at seq " +
                    std::to_string(snapshot_seq_),
                out);
  applier_.end_full(ReplicaPosition{agent_store_, snapshot_seq_});
  in_snapshot_ = false;
  valid_ = true;
  out.log.push_back("full resync complete at seq " + std::to_string(frame.seq) + ": the standby holds " +
                    std::to_string(standby_.stats().sessions) + " sessions");
  advance(last_seq_);
}

void StandbyLink::on_item(const wire::detail::Frame& frame, Output& out) {
  if (!valid_ && !in_snapshot_) {
    const ReplicaPosition stored = Replica(standby_).position();
    return fail(std::string(wire::detail::frame_type_name(frame.type)) + " for store " + hex_store_id(agent_store_) +
                    " but the standby " +
                    (stored.follows_a_primary() ? "follows store " + hex_store_id(stored.primary_store_id)
                                                : std::string("holds no replica")) +
                    " and no full resync began",
                out);
  }
  if (frame.type == wire::detail::FrameType::SnapshotSession && (!in_snapshot_ || frame.seq != snapshot_seq_))
    return fail("SnapshotSession outside its full resync", out);
  if (frame.seq < last_seq_)
    return fail("sequence went back from " + std::to_string(last_seq_) + " to " + std::to_string(frame.seq), out);
  const Outgoing item = items_in_.item(frame);
  const std::string& id = item.delta.session_id;
  StandbyApplier::Outcome outcome;
  try {
    outcome = applier_.apply(item);
  } catch (const Error& e) {
    return fail("cannot apply session " + id + " at seq " + std::to_string(frame.seq) + ": " + e.what(), out);
  }
  ++frames_applied_;
  if (outcome == StandbyApplier::Outcome::NeedFull) {
    if (pending_.insert(id).second) {
      send(wire::detail::make_resend_session(id), out);
      out.log.push_back("session " + id + " cannot be applied exactly at seq " + std::to_string(frame.seq) +
                        ": asked for it in full");
    }
  } else if (item.kind == Outgoing::Kind::Removal || item.delta.base_version == 0) {
    pending_.erase(id);  // a whole copy (or the removal) repairs it
  }
  last_seq_ = frame.seq;
  if (!in_snapshot_) advance(frame.seq);
}

// The agent's position: every frame before it was applied, so the changes
// below it are reflected (they were shipped earlier). Always answered, so
// the agent knows the link is alive.
void StandbyLink::on_heartbeat(const wire::detail::Frame& frame, Output& out) {
  const std::uint64_t seq = wire::detail::parse_heartbeat(frame);
  if (valid_ && !in_snapshot_ && seq >= last_seq_) {
    last_seq_ = seq;
    advance(seq);
  }
  if (position_ <= acked_ || !pending_.empty() || in_snapshot_ || !valid_) send(wire::detail::make_ack(acked_), out);
}

// Stores the new position before it is acknowledged (feed() sends the Ack),
// so a restarted daemon resumes from what it really applied.
void StandbyLink::advance(std::uint64_t seq) {
  if (!pending_.empty()) return;
  position_ = std::max(position_, seq);
  ReplicaPosition stored;
  stored.primary_store_id = agent_store_;
  stored.applied_seq = position_;
  Replica(standby_).set_position(stored);
}

void StandbyLink::send(const wire::detail::Frame& frame, Output& out) { out.bytes += codec_.encode(frame); }

void StandbyLink::fail(const std::string& reason, Output& out) {
  if (closed_) return;
  closed_ = true;
  out.close = true;
  out.reason = reason;
  // One log line whatever the peer sent: a session id may hold any byte.
  for (char& c : out.reason)
    if (c < 0x20 || c > 0x7e) c = '?';
  try {
    send(wire::detail::make_error(out.reason), out);
  } catch (const Error&) {
    // Reporting must not fail: the connection closes anyway.
  }
}

}  // namespace shmsession::sync::detail
