// AgentSeat: the seat of a store's replication agent (shmsession-agent).
// One process at a time holds it: it claims the seat, publishes its status
// there every few milliseconds, and releases the seat when it stops. The
// claim belongs to the process (pid + start time), not to a Store or a
// view: it ends with release, or when the process dies. Readers (status,
// `shmctl agent`) never wait for the agent and never see a status half
// written, even when the agent stalls or dies mid-publish.
//
// An AgentSeat is a view: it holds a pointer to its Store's attachment and
// nothing else (making one costs a pointer copy; publish makes no system
// call and allocates nothing). Lifetime: a view must not outlive its Store
// (moving the Store moves the attachment, and the view with it; a view of
// a moved-from Store must not be used).
//
// Thread safety: any number of threads may use views of one Store at once;
// the claim is the process's, so every thread of the holder may publish.
// Cross-process safety: claims from several processes are serialized by a
// robust mutex in the segment, held for a few hundred nanoseconds; a
// publisher killed while holding it leaves nothing to repair (it was
// writing the copy readers do not read). fork(): the child does not hold
// its parent's claim (its pid differs); it may claim a seat the parent
// released.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "shm/store.hpp"

namespace shmsession {

// What the replication agent (shmsession-agent) is doing.
enum class AgentState : std::uint8_t {
  Stopped = 0,     // no agent runs, or it released its claim
  Connecting = 1,  // dialling the backup
  Handshake = 2,   // connected, comparing change-log positions
  FullResync = 3,  // shipping every session
  Streaming = 4,   // following the change log
};

// "stopped", "connecting", "handshake", "full-resync", "streaming" ("unknown"
// for a value outside the enum).
std::string_view agent_state_name(AgentState state) noexcept;

// Longest texts of an AgentStatus the segment keeps; longer ones are cut
// (never inside a UTF-8 sequence), not refused.
inline constexpr std::size_t kMaxAgentBackupBytes = 63;
inline constexpr std::size_t kMaxAgentErrorBytes = 191;

// The replication agent's status as it last published it (see
// AgentSeat::publish). A change-log position is as
// ChangeBatch::next_seq: the first sequence not yet covered.
struct AgentStatus {
  std::int32_t pid = 0;  // the agent, or the last one; 0: no agent has ever claimed this store
  bool alive = false;  // filled by AgentSeat::status(): that process (pid + start time) still runs and holds the claim
  AgentState state = AgentState::Stopped;
  std::string backup;                   // "host:port" of the backup daemon; cut to kMaxAgentBackupBytes
  std::string last_error;               // last connection error, one line; cut to kMaxAgentErrorBytes
  std::uint64_t started_unix_ms = 0;    // when the agent claimed the store (it claims as it starts)
  std::uint64_t updated_unix_ms = 0;    // last publish (0 when publishing: the store stamps the time)
  std::uint64_t connected_unix_ms = 0;  // current connection established (0: not connected)
  std::uint64_t sent_seq = 0;           // change-log position of the last frame sent
  std::uint64_t acked_seq = 0;          // change-log position the backup acknowledged
  std::uint64_t lag_ms = 0;             // age of the oldest change not yet acknowledged
  // Sessions (deltas) the backup acknowledged a second while it was behind:
  // what the agent can ship, last measured (0: not measured yet). With the
  // backlog (the log's head minus acked_seq, counted as if each change were
  // a delta of its own) it tells how long a change made now may wait, which
  // the replication bound holds writes on too. At most 2^32 - 1.
  std::uint64_t shipped_per_s = 0;
  std::uint64_t frames_sent = 0;
  std::uint64_t frames_per_s = 0;
  std::uint64_t wire_bytes = 0;  // sealed frame bytes sent, lengths, headers and tags included
  // Session payload bytes shipped (wire_format.md), each counted with its
  // session id in full (the wire names a known session by its slot), and
  // what whole-session replication in that format would have shipped.
  std::uint64_t delta_bytes = 0;
  std::uint64_t whole_bytes = 0;
  std::uint64_t full_resyncs = 0;
  std::uint64_t partial_resyncs = 0;
  std::uint64_t reconnects = 0;
  std::uint64_t resends = 0;  // sessions re-sent in full at the backup's request
};

// Copies the figures that count over the agent's whole history (frames
// sent, wire, delta and whole bytes, full and partial resyncs, reconnects,
// resends) from `from` into `to`.
void carry_agent_counters(const AgentStatus& from, AgentStatus& to) noexcept;

class AgentSeat {
 public:
  // Requires: `store` is not moved-from. A non-const Store, as for the
  // Store methods that write: claim, publish and release change the segment.
  explicit AgentSeat(Store& store) noexcept : impl_(store.impl_.get()) {}

  // Makes the calling process this store's agent. Returns false if another
  // live process is the agent (status().pid names it). A claim by a
  // process that died is taken over; a second claim by the same process
  // returns true and changes nothing. A new claim starts from a status
  // that keeps the counters of the agents before it (carry_agent_counters:
  // frames, bytes, resyncs, reconnects, resends, so they survive an agent
  // restart) and blanks the rest (state Stopped, positions, lag, rates and
  // texts 0 or empty). Throws: Corrupt, Io (the claim lock is unusable).
  bool claim();
  // Publishes the status. pid, alive and started_unix_ms are filled by the
  // store from the claim (the caller's values are ignored); texts longer
  // than kMaxAgentBackupBytes / kMaxAgentErrorBytes are cut; an
  // updated_unix_ms of 0 is stamped with the current time. No system call,
  // no allocation: meant for the agent's hot path.
  // Throws: InvalidArgument if this process does not hold the claim, or the
  // state is not an AgentState.
  void publish(const AgentStatus& status);
  // Whether application writes are waiting for this agent's lag to come
  // within the store's replication bound (Store::set_replication_bound):
  // the agent then publishes as soon as the backup acknowledges more. One
  // relaxed load.
  bool writers_waiting() const noexcept;
  // Gives the claim up: the state becomes Stopped, the other figures stay
  // for inspection, and another process may claim. No-op if this process
  // does not hold the claim.
  void release();
  // The last published status (all zero when no agent ever ran), with
  // `alive` computed now: whether the claim is held and its process runs.
  AgentStatus status() const;

 private:
  Store::Impl* impl_;
};

}  // namespace shmsession
