// The change log's rings (shm/segment_format.md, Change log). Every
// creation, commit, removal and expiry writes an entry (session id,
// version, kind, its shard and shard change number) to the lane of the CPU
// it runs on, under the session's shard lock; followers sequence the lanes
// into the log, a bounded ring of (sequence, session id, version, kind)
// that they read, so that they find what changed without scanning the
// store (shm/change_feed.cpp). A change writes its lane only: processes
// changing sessions at once on different CPUs write no common line.
//
// Cross-process safety: every slot is guarded by its stamp (a seqlock; the
// fields are read and written as relaxed atomics, so a reader racing a
// writer copies garbage the stamp check discards, never a data race). A
// writer that dies mid-slot leaves the slot stamped "writing"; the shard's
// recovery finishes it (see PendingChange), and a sequencer that meets such
// a slot triggers that recovery by locking the shard.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string_view>

#include "shm/change_feed.hpp"
#include "shm/detail/segment_format.hpp"

namespace shmsession::shm::detail {

// The slot of entry `seq`: consecutive entries side by side, each slot in
// cache lines of its own (ChangeSlot), so that one process's entries are
// written in address order.
inline std::uint32_t change_slot_index(std::uint64_t seq, std::uint32_t capacity) noexcept {
  return static_cast<std::uint32_t>(seq % capacity);
}

// A change's lane and position in one word (Generation::begin_change).
inline constexpr std::uint64_t kMaxLanePosition = (std::uint64_t{1} << 56) - 1;
inline std::uint64_t change_id(std::uint32_t lane, std::uint64_t position) noexcept {
  return (std::uint64_t{lane} << 56) | (position & kMaxLanePosition);
}
inline std::uint32_t change_lane(std::uint64_t change) noexcept { return static_cast<std::uint32_t>(change >> 56); }
inline std::uint64_t change_position(std::uint64_t change) noexcept { return change & kMaxLanePosition; }

// The entries a lane holds: the log's share, from 16 to 65536. A lane
// needs to hold only what is changed on its CPUs between two sequencing
// passes of a follower (the replication agent makes one at every poll).
inline std::uint32_t lane_capacity_for(std::uint32_t log_capacity, std::uint32_t lanes) noexcept {
  return std::clamp<std::uint32_t>(log_capacity / lanes, 16, std::uint32_t{1} << 16);
}

// The kind byte of a log entry that stands for changes the lanes lost
// (a lane overflowed before a follower sequenced it, or damage): a
// follower that reads it fell behind (ChangeBatch::fell_behind).
inline constexpr std::uint8_t kLostChanges = 0;

// Which change of which shard a lane entry is (ChangeSlot::shard,
// shard_change); all zero in the log.
struct ShardChange {
  std::uint32_t shard = 0;
  std::uint64_t number = 0;
};

// Writes entry `seq` into its slot, unless a newer entry already took the
// slot (the ring wrapped while a dead writer's slot waited for recovery).
void write_change_slot(ChangeSlot* ring, std::uint32_t capacity, std::uint64_t seq, ChangeKind kind,
                       std::uint64_t version, std::string_view id, ShardChange where = {}) noexcept;

enum class SlotRead { kOk, kNotYetWritten, kOverwritten };

// Copies entry `seq` into `out` (and its shard change into `where`, if
// given) if its slot holds it, consistently.
SlotRead read_change_slot(const ChangeSlot* ring, std::uint32_t capacity, std::uint64_t seq, ChangeEntry& out,
                          ShardChange* where = nullptr);

}  // namespace shmsession::shm::detail
