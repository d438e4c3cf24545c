// The replication agent's status block in the segment (AgentStatusBlock):
// writing a status as the next copy under the seqlock, and reading the
// current copy without a lock. Store (shm/store_agent.cpp) adds the claim
// rules on top.
//
// Thread and process safety: any number of readers in any processes, at any
// time, never blocking: a reader retries only while a writer overwrites the
// very copy it is reading, which needs the writer to finish a whole other
// copy first. Writers must hold the block's claim_mutex (one at a time). A
// writer that dies or stalls mid-write leaves its copy torn but not
// current; the next writer rewrites that copy from a new generation.
#pragma once

#include <cstdint>

#include "shm/agent_seat.hpp"
#include "shm/detail/segment_format.hpp"

namespace shmsession::shm::detail {

static_assert(kAgentBackupWords * 8 == 1 + kMaxAgentBackupBytes);
static_assert(kAgentErrorWords * 8 == 1 + kMaxAgentErrorBytes);

// Who holds, or last held, the agent claim.
struct AgentClaim {
  std::int32_t pid = 0;  // 0: never claimed
  std::uint64_t start_time = 0;
  std::uint64_t started_unix_ms = 0;
  bool held = false;
};

// The claim of the current copy. Requires: the caller holds claim_mutex (so
// no writer runs and the current copy is complete).
AgentClaim current_agent_claim(const AgentStatusBlock& block) noexcept;

// Writes `claim` and `status` (its pid, alive and started_unix_ms ignored;
// texts cut to their limits; an updated_unix_ms of 0 stamped with the time)
// as the next copy and makes it current. No system call but the vDSO clock,
// no allocation. Requires: the caller holds claim_mutex.
void write_agent_status(AgentStatusBlock& block, const AgentClaim& claim, const AgentStatus& status) noexcept;

struct AgentRecord {
  AgentClaim claim;
  AgentStatus status;  // pid and started_unix_ms from the claim; alive left false
};

// A consistent copy of the current status (all zero if nobody ever claimed).
// Throws: Error(Corrupt) when the current copy never reads consistently
// (damage: no live writer leaves it so).
AgentRecord read_agent_status(const AgentStatusBlock& block);

// What a write bounded by the replication lag needs of the status: whether
// an agent holds the claim, when it last published, and its lag then.
struct AgentLag {
  bool claimed = false;
  std::uint64_t updated_unix_ms = 0;
  std::uint64_t lag_ms = 0;
  std::uint64_t acked_seq = 0;
  std::uint64_t shipped_per_s = 0;
};

// As read_agent_status, these words only (no allocation).
AgentLag read_agent_lag(const AgentStatusBlock& block);

}  // namespace shmsession::shm::detail
