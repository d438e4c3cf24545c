// A shard's table of lock states (segment_format.hpp, LockTable): a session
// has a lock state only while its lock is held, waited for or asked back,
// so its record carries a 4-byte slot reference instead of the 56-byte
// state. Slots come from the shard's free list; the table grows by one
// chunk through the segment allocator when the list is empty (shard mutex,
// then the allocator's: the nesting a commit under contention also uses),
// so steady locking never calls the allocator.
//
// Thread and process safety: everything here runs under the shard's
// robust mutex. A process killed at any instruction leaves at worst a slot
// taken but not yet referenced, or no longer referenced but not yet free,
// or a published chunk not yet counted: repair_lock_table (run by the next
// locker of the shard) rebuilds the free list from the records, so a slot
// is then referenced by exactly one record or free.
#pragma once

#include <cstdint>
#include <string>

#include "shm/detail/segment_bounds.hpp"
#include "shm/detail/segment_format.hpp"

namespace shmsession::shm::detail {

struct Generation;

// What a slot records of its owner: a record's hash folded to 32 bits, never
// 0 (0 marks a free slot). A reference that leads to a slot with another
// tag is damage.
constexpr std::uint32_t lock_owner_tag(const SessionRecord* r) noexcept {
  return static_cast<std::uint32_t>(r->hash ^ (r->hash >> 32)) | 1u;
}

// The slot of `index` (1-based), or nullptr when the index or the chunk
// that holds it is out of range or out of the segment.
LockSlot* lock_slot_at(const LockTable& table, std::uint32_t index, const SegmentBounds& bounds) noexcept;

// Shard lock held for everything below.

// The lock state `r` references, nullptr if it has none.
// Throws: Error(Corrupt) when the reference is damaged (out of range, or a
// slot that is free or another record's).
LockState* find_lock_state(Generation& g, Shard& shard, SessionRecord* r);
// The same, nullptr for a damaged reference too (listings, removal).
LockState* lock_state_or_null(Generation& g, Shard& shard, const SessionRecord* r) noexcept;
// The lock state of `r`, taking a free slot for it (growing the table when
// none is free) if it has none.
// Throws: Error(Corrupt) as find_lock_state; Error(SegmentFull) when the
// table must grow and the segment has no room (nothing changed);
// AllocatorPoisoned.
LockState& take_lock_state(Generation& g, Shard& shard, SessionRecord* r);
// Gives r's slot back to the free list if its lock is free with nobody
// queued, no request standing and no queue change in flight; clears a
// damaged reference (the slot it named is left alone: check reports it).
void settle_lock_state(Generation& g, Shard& shard, SessionRecord* r) noexcept;
// `r` leaves the table: its slot (if sound) is given back whatever it holds.
void drop_lock_state(Generation& g, Shard& shard, SessionRecord* r) noexcept;

// Run by the repair of a shard whose locker died: recounts the published
// chunks, clears record references that are out of range, lead to another
// record's slot or repeat one already seen, settles each lock queue
// (repair_lock_queue) and rebuilds the free list from every slot no record
// references.
void repair_lock_table(Generation& g, Shard& shard) noexcept REQUIRES(shard.mutex);

// What check found in a shard's table.
struct LockTableCheck {
  std::uint64_t bytes = 0;   // the chunks' allocator blocks
  std::uint32_t in_use = 0;  // slots referenced by a record
  std::uint32_t capacity = 0;
  std::uint64_t bad_references = 0;  // records whose reference is out of range, or leads to a free or foreign slot
  std::string damage;                // the table's own damage, empty if none
};
LockTableCheck check_lock_table(Generation& g, Shard& shard) REQUIRES(shard.mutex);

}  // namespace shmsession::shm::detail
