#include "shm/detail/lock_table.hpp"

#include <atomic>
#include <bit>
#include <vector>

#include "shm/detail/lock_queue.hpp"
#include "shm/detail/session_table.hpp"
#include "shm/detail/store_impl.hpp"
#include "shm/detail/test_hooks.hpp"

namespace shmsession::shm::detail {
namespace {

constexpr std::uint32_t chunk_slots(std::uint32_t c) noexcept { return kLockChunkBase << c; }
constexpr std::uint32_t chunk_first(std::uint32_t c) noexcept { return kLockChunkBase * ((1u << c) - 1); }

// A kill leaves exactly the stores made before it: these keep the compiler
// from moving a store across the points the repair relies on.
void keep_order() noexcept { std::atomic_signal_fence(std::memory_order_seq_cst); }

std::uint32_t shard_index(const Generation& g, const Shard& shard) noexcept {
  return static_cast<std::uint32_t>(&shard - g.shards);
}

Error damaged_reference(const Generation& g, const SessionRecord* r) {
  return Error(Errc::Corrupt, "the lock state of session '" + std::string(record_id(r)) + "' in store '" + g.name +
                                  "' is damaged (its slot reference leads nowhere it owns); run 'shmctl check'");
}

Error damaged_table(const Generation& g, const Shard& shard) {
  return Error(Errc::Corrupt, "the lock-state table of shard " + std::to_string(shard_index(g, shard)) + " of store '" +
                                  g.name + "' is damaged (its free list); run 'shmctl check'");
}

// Adds chunk `chunk_count` to the table, all of it free. Its slots are
// written before the chunk is published and counted after: a kill before
// the publish leaks the block (a rebuild reclaims it), one after it leaves
// a chunk the repair counts again.
void grow(Generation& g, LockTable& t) {
  const std::uint32_t c = t.chunk_count;
  if (c >= kLockChunks)
    throw Error(Errc::SegmentFull, "a shard of store '" + g.name + "' has " + std::to_string(t.capacity) +
                                       " lock states in use, its table's maximum; nothing was changed");
  const std::uint32_t n = chunk_slots(c);
  const std::uint64_t bytes = std::uint64_t{n} * sizeof(LockSlot);
  void* mem = g.allocate(bytes);
  if (mem == nullptr) g.throw_full(bytes, "taking a lock state");
  auto* slots = static_cast<LockSlot*>(mem);
  const std::uint32_t first = chunk_first(c) + 1;
  for (std::uint32_t i = 0; i < n; ++i) {
    new (&slots[i]) LockSlot{};
    slots[i].next_free = i + 1 < n ? first + i + 1 : t.free_head;
  }
  keep_order();
  t.chunks[c] = slots;
  keep_order();
  t.chunk_count = c + 1;
  t.capacity = chunk_first(c + 1);
  t.free_head = first;
  t.free_count += n;
}

// r's slot, checked: in range, in the segment, and owned by r.
LockSlot* owned_slot(Generation& g, const LockTable& t, const SessionRecord* r) noexcept {
  LockSlot* slot = lock_slot_at(t, r->lock_slot, g.bounds);
  return slot != nullptr && slot->owner == lock_owner_tag(r) ? slot : nullptr;
}

void give_back(LockTable& t, SessionRecord* r, LockSlot* slot) noexcept {
  const std::uint32_t index = r->lock_slot;
  r->lock_slot = 0;
  keep_order();
  run_test_hook(HookPoint::kLockStateGivenBack);
  slot->owner = 0;
  slot->next_free = t.free_head;
  keep_order();
  t.free_head = index;
  ++t.free_count;
}

bool idle(const LockState& l) noexcept {
  return l.token == 0 && l.queue_head == 0 && l.release_requested_unix_ms == 0 && l.moving_waiter == 0;
}

}  // namespace

LockSlot* lock_slot_at(const LockTable& t, std::uint32_t index, const SegmentBounds& bounds) noexcept {
  if (index == 0 || index > t.capacity) return nullptr;
  const std::uint32_t i = index - 1;
  const auto c = static_cast<std::uint32_t>(std::bit_width(i / kLockChunkBase + 1) - 1);
  if (c >= t.chunk_count || c >= kLockChunks) return nullptr;
  LockSlot* chunk = t.chunks[c].get();
  if (!bounds.holds(chunk, std::uint64_t{chunk_slots(c)} * sizeof(LockSlot))) return nullptr;
  return chunk + (i - chunk_first(c));
}

LockState* find_lock_state(Generation& g, Shard& shard, SessionRecord* r) {
  if (r->lock_slot == 0) return nullptr;
  LockSlot* slot = owned_slot(g, g.lock_table(shard), r);
  if (slot == nullptr) throw damaged_reference(g, r);
  return &slot->lock;
}

LockState* lock_state_or_null(Generation& g, Shard& shard, const SessionRecord* r) noexcept {
  if (r->lock_slot == 0) return nullptr;
  LockSlot* slot = owned_slot(g, g.lock_table(shard), r);
  return slot != nullptr ? &slot->lock : nullptr;
}

LockState& take_lock_state(Generation& g, Shard& shard, SessionRecord* r) {
  if (LockState* lock = find_lock_state(g, shard, r)) return *lock;
  LockTable& t = g.lock_table(shard);
  if (t.free_head == 0) grow(g, t);
  const std::uint32_t index = t.free_head;
  LockSlot* slot = lock_slot_at(t, index, g.bounds);
  if (slot == nullptr || slot->owner != 0) throw damaged_table(g, shard);
  // Owned before it is referenced: a kill in between leaves a slot no
  // record references, which the repair frees.
  slot->lock = LockState{};
  slot->owner = lock_owner_tag(r);
  keep_order();
  t.free_head = slot->next_free;
  --t.free_count;
  keep_order();
  run_test_hook(HookPoint::kLockStateTaken);
  r->lock_slot = index;
  return slot->lock;
}

void settle_lock_state(Generation& g, Shard& shard, SessionRecord* r) noexcept {
  if (r->lock_slot == 0) return;
  LockTable& t = g.lock_table(shard);
  LockSlot* slot = owned_slot(g, t, r);
  if (slot == nullptr) {
    r->lock_slot = 0;
    return;
  }
  if (idle(slot->lock)) give_back(t, r, slot);
}

void drop_lock_state(Generation& g, Shard& shard, SessionRecord* r) noexcept {
  if (r->lock_slot == 0) return;
  LockTable& t = g.lock_table(shard);
  if (LockSlot* slot = owned_slot(g, t, r)) {
    give_back(t, r, slot);
  } else {
    r->lock_slot = 0;
  }
}

// The records are the truth: a slot is in use if and only if one record
// references it and the slot names that record as its owner. next_free
// serves as the mark while the references are counted (every free slot's
// link is written again at the end).
void repair_lock_table(Generation& g, Shard& shard) noexcept {
  LockTable& t = g.lock_table(shard);
  std::uint32_t chunks = 0;
  while (chunks < kLockChunks &&
         g.bounds.holds(t.chunks[chunks].get(), std::uint64_t{chunk_slots(chunks)} * sizeof(LockSlot)))
    ++chunks;
  for (std::uint32_t c = chunks; c < kLockChunks; ++c) t.chunks[c] = nullptr;  // a damaged link: the block leaks
  t.chunk_count = chunks;
  t.capacity = chunk_first(chunks);
  constexpr std::uint32_t kUnmarked = 0, kMarked = 1;
  for (std::uint32_t i = 1; i <= t.capacity; ++i) lock_slot_at(t, i, g.bounds)->next_free = kUnmarked;
  const LockContext locks = g.lock_context();
  for_each_record(shard, g.bounds_of(shard), [&](SessionRecord* r) {
    if (r->lock_slot == 0) return;
    LockSlot* slot = owned_slot(g, t, r);
    if (slot == nullptr || slot->next_free == kMarked) {
      r->lock_slot = 0;  // out of range, not r's, or r's twin was here first
      return;
    }
    slot->next_free = kMarked;
    // A queue change cut short (a hand-over's dequeue, a waiter joining
    // or giving up): recount the queue and settle its moving waiter.
    repair_lock_queue(locks, slot->lock);
  });
  t.free_head = 0;
  t.free_count = 0;
  for (std::uint32_t i = t.capacity; i >= 1; --i) {
    LockSlot* slot = lock_slot_at(t, i, g.bounds);
    if (slot->next_free == kMarked) {
      slot->next_free = 0;
      continue;
    }
    slot->owner = 0;
    slot->next_free = t.free_head;
    t.free_head = i;
    ++t.free_count;
  }
}

LockTableCheck check_lock_table(Generation& g, Shard& shard) {
  LockTableCheck out;
  const LockTable& t = g.lock_table(shard);
  auto damage = [&](const std::string& why) {
    if (out.damage.empty()) out.damage = why;
  };
  std::uint32_t chunks = 0;
  for (; chunks < t.chunk_count && chunks < kLockChunks; ++chunks) {
    const LockSlot* chunk = t.chunks[chunks].get();
    if (!g.bounds.holds(chunk, std::uint64_t{chunk_slots(chunks)} * sizeof(LockSlot))) {
      damage("chunk " + std::to_string(chunks) + " lies outside the segment");
      break;
    }
    out.bytes += std::uint64_t{chunk_slots(chunks)} * sizeof(LockSlot) + g.root->block_overhead;
  }
  if (t.chunk_count > kLockChunks) damage("it counts " + std::to_string(t.chunk_count) + " chunks");
  if (t.capacity != chunk_first(chunks)) damage("its capacity disagrees with its chunks");
  out.capacity = std::min(t.capacity, chunk_first(chunks));
  // 0: unseen, 1: on the free list, 2: referenced.
  std::vector<std::uint8_t> seen(std::size_t{out.capacity} + 1, 0);
  std::uint32_t listed = 0;
  for (std::uint32_t i = t.free_head; i != 0;) {
    const LockSlot* slot = i <= out.capacity ? lock_slot_at(t, i, g.bounds) : nullptr;
    if (slot == nullptr) {
      damage("its free list leaves the table");
      break;
    }
    if (seen[i] != 0) {
      damage("its free list loops");
      break;
    }
    if (slot->owner != 0) damage("its free list holds a slot in use");
    seen[i] = 1;
    ++listed;
    i = slot->next_free;
  }
  if (listed != t.free_count)
    damage("its free list holds " + std::to_string(listed) + " slots, not " + std::to_string(t.free_count));
  for_each_record(shard, g.bounds_of(shard), [&](SessionRecord* r) {
    if (r->lock_slot == 0) return;
    const LockSlot* slot = r->lock_slot <= out.capacity ? lock_slot_at(t, r->lock_slot, g.bounds) : nullptr;
    if (slot == nullptr || slot->owner != lock_owner_tag(r) || seen[r->lock_slot] != 0) {
      ++out.bad_references;
      return;
    }
    seen[r->lock_slot] = 2;
    ++out.in_use;
  });
  if (listed + out.in_use < out.capacity)
    damage(std::to_string(out.capacity - listed - out.in_use) + " slot(s) are neither free nor referenced");
  return out;
}

}  // namespace shmsession::shm::detail
