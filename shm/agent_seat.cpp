// The replication agent's claim and status (behaviour in shm/agent_seat.hpp; the
// seqlocked copies in shm/detail/agent_block.cpp). Writers take the block's
// robust claim mutex for a few hundred nanoseconds; readers never lock.
#include "shm/agent_seat.hpp"

#include <limits>
#include <string>

#include "shm/detail/agent_block.hpp"
#include "shm/detail/clock.hpp"
#include "shm/detail/futex.hpp"
#include "shm/detail/process_identity.hpp"
#include "shm/detail/robust_mutex.hpp"
#include "shm/detail/store_impl.hpp"

namespace shmsession {

using namespace shm::detail;

std::string_view agent_state_name(AgentState state) noexcept {
  switch (state) {
    case AgentState::Stopped:
      return "stopped";
    case AgentState::Connecting:
      return "connecting";
    case AgentState::Handshake:
      return "handshake";
    case AgentState::FullResync:
      return "full-resync";
    case AgentState::Streaming:
      return "streaming";
  }
  return "unknown";
}

void carry_agent_counters(const AgentStatus& from, AgentStatus& to) noexcept {
  to.frames_sent = from.frames_sent;
  to.wire_bytes = from.wire_bytes;
  to.delta_bytes = from.delta_bytes;
  to.whole_bytes = from.whole_bytes;
  to.full_resyncs = from.full_resyncs;
  to.partial_resyncs = from.partial_resyncs;
  to.reconnects = from.reconnects;
  to.resends = from.resends;
}

namespace {

bool held_by(const AgentClaim& claim, const ProcessIdentity& self) noexcept {
  return claim.held && claim.pid == self.pid && claim.start_time == self.start_time;
}

// The claim mutex. A holder that died inside leaves nothing to repair: it
// was writing the copy that is not current, and the next writer starts that
// copy again at a new generation.
// A rebuild copies the block holding this lock, so a writer that finds the
// generation replaced goes on in the new one (GenerationMoved).
class ClaimGuard : public RobustLockGuard {
 public:
  explicit ClaimGuard(StoreRoot& root) : RobustLockGuard(root.agent.claim_mutex) {
    if (root.moved.load(std::memory_order_acquire) != 0) throw GenerationMoved{};
  }
};

}  // namespace

static bool claim_agent_in(Generation& g) {
  AgentStatusBlock& block = g.root->agent;
  const ProcessIdentity self = self_identity();
  // Look without the lock first, so that a standby agent polling for its
  // turn never delays the live agent's publishes.
  const AgentClaim seen = read_agent_status(block).claim;
  if (seen.held && !held_by(seen, self) && process_alive(seen.pid, seen.start_time)) return false;

  ClaimGuard guard(*g.root);
  const AgentClaim claim = current_agent_claim(block);
  if (held_by(claim, self)) return true;
  if (claim.held && process_alive(claim.pid, claim.start_time)) return false;
  // Free, released, or its holder died: a fresh status under our name,
  // keeping the counters of the agents before (AgentSeat::claim). A
  // previous agent killed asleep in ChangeFeed::wait left its count there
  // (the agent is the log's only sleeping follower): start from none, so
  // commits do not pay a futex wake for a dead sleeper.
  g.root->change_waiters.store(0, std::memory_order_seq_cst);
  const std::uint64_t now = unix_ms();
  AgentStatus fresh;
  carry_agent_counters(read_agent_status(block).status, fresh);
  fresh.updated_unix_ms = now;
  write_agent_status(block, AgentClaim{self.pid, self.start_time, now, true}, fresh);
  return true;
}

bool AgentSeat::claim() {
  return impl_->run([](Generation& g) { return claim_agent_in(g); });
}

// Writes waiting for the agent's lag (Store::set_replication_bound) look
// again at the status just published; no system call while none waits.
static void wake_bounded_writers(StoreRoot& root) noexcept {
  if (root.bound_waiters.load(std::memory_order_seq_cst) == 0) return;
  root.agent_signal.fetch_add(1, std::memory_order_seq_cst);
  futex_wake(root.agent_signal, std::numeric_limits<int>::max());
}

void AgentSeat::publish(const AgentStatus& status) {
  if (static_cast<std::uint8_t>(status.state) > static_cast<std::uint8_t>(AgentState::Streaming))
    throw Error(Errc::InvalidArgument,
                "agent state " + std::to_string(static_cast<unsigned>(status.state)) + " is not an AgentState");
  const ProcessIdentity self = self_identity();  // cached: no system call
  AgentClaim claim;
  const bool published = impl_->run([&](Generation& g) {
    AgentStatusBlock& block = g.root->agent;
    ClaimGuard guard(*g.root);
    claim = current_agent_claim(block);
    if (!held_by(claim, self)) return false;
    write_agent_status(block, claim, status);
    wake_bounded_writers(*g.root);
    return true;
  });
  if (published) return;
  throw Error(Errc::InvalidArgument,
              "process " + std::to_string(self.pid) + " does not hold the agent claim of store '" + impl_->name + "'" +
                  (claim.held ? " (process " + std::to_string(claim.pid) + " does)" : std::string()) +
                  "; claim the agent seat first");
}

bool AgentSeat::writers_waiting() const noexcept {
  return impl_->current_or_mapped().root->bound_waiters.load(std::memory_order_relaxed) != 0;
}

void AgentSeat::release() {
  const ProcessIdentity self = self_identity();
  impl_->run([&](Generation& g) {
    AgentStatusBlock& block = g.root->agent;
    ClaimGuard guard(*g.root);
    AgentClaim claim = current_agent_claim(block);
    if (!held_by(claim, self)) return;
    AgentStatus last = read_agent_status(block).status;
    last.state = AgentState::Stopped;
    last.updated_unix_ms = unix_ms();
    claim.held = false;
    write_agent_status(block, claim, last);
    wake_bounded_writers(*g.root);
  });
}

AgentStatus AgentSeat::status() const {
  AgentRecord record = read_agent_status(impl_->gen_checked().root->agent);
  record.status.alive = record.claim.held && process_alive(record.claim.pid, record.claim.start_time);
  return record.status;
}

}  // namespace shmsession
