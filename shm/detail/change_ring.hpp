// The change log: a bounded ring of (sequence, session id, version, kind)
// that every creation, commit, removal and expiry appends to, so that a
// follower finds what changed without scanning the store.
//
// Cross-process safety: a writer appends under the shard lock of the session
// concerned (so one session's entries are in version order); writers of
// different shards fill their slots concurrently, each slot guarded by its
// stamp (a seqlock; the fields are read and written as relaxed atomics,
// so a reader racing a writer copies garbage the stamp check discards,
// never a data race). Readers take no lock. A writer that dies mid-slot leaves
// the slot stamped "writing"; the shard's recovery finishes it (see
// PendingChange), and a reader that meets such a slot triggers that recovery
// by locking the shard.
#pragma once

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

// Writes entry `seq` into its slot, unless a newer entry already took the
// slot (the ring wrapped while a dead writer's slot waited for recovery).
void write_change_slot(ChangeSlot* ring, std::uint32_t capacity, std::uint64_t seq, ChangeKind kind,
                       std::uint64_t version, std::string_view id) noexcept;

enum class SlotRead { kOk, kNotYetWritten, kOverwritten };

// Copies entry `seq` into `out` if its slot holds it, consistently.
SlotRead read_change_slot(const ChangeSlot* ring, std::uint32_t capacity, std::uint64_t seq, ChangeEntry& out);

}  // namespace shmsession::shm::detail
