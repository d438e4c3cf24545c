#include "shm/detail/change_ring.hpp"

#include <algorithm>
#include <atomic>

namespace shmsession::shm::detail {
namespace {

// A slot's fields are plain members (the segment layout), but readers copy
// them while a writer may be filling the slot: every access goes through a
// relaxed atomic_ref, so that a torn read is a value the stamp check then
// discards rather than a data race (undefined behaviour). Same machine code
// as plain loads and stores on x86-64 and arm64.
template <class T>
T load(const T& field) noexcept {
  return std::atomic_ref<T>(const_cast<T&>(field)).load(std::memory_order_relaxed);
}

template <class T>
void store(T& field, T value) noexcept {
  std::atomic_ref<T>(field).store(value, std::memory_order_relaxed);
}

}  // namespace

void write_change_slot(ChangeSlot* ring, std::uint32_t capacity, std::uint64_t seq, ChangeKind kind,
                       std::uint64_t version, std::string_view id, ShardChange where) noexcept {
  ChangeSlot& slot = ring[change_slot_index(seq, capacity)];
  std::uint64_t stamp = slot.stamp.load(std::memory_order_acquire);
  // Never move a slot backwards: a newer sequence owns it.
  while (stamp == kStampWriting || stamp < seq) {
    if (slot.stamp.compare_exchange_weak(stamp, kStampWriting, std::memory_order_acq_rel)) break;
  }
  if (stamp != kStampWriting && stamp >= seq) return;
  // A reader that sees any of the stores below then sees the stamp as
  // kStampWriting (or newer) on its second load.
  std::atomic_thread_fence(std::memory_order_release);
  store(slot.version, version);
  store(slot.kind, static_cast<std::uint8_t>(kind));
  std::size_t n = std::min(id.size(), kChangeIdBytes);
  store(slot.id_size, static_cast<std::uint8_t>(n));
  for (std::size_t i = 0; i < n; ++i) store(slot.id[i], id[i]);
  store(slot.shard, where.shard);
  store(slot.shard_change, where.number);
  slot.stamp.store(seq, std::memory_order_release);
}

SlotRead read_change_slot(const ChangeSlot* ring, std::uint32_t capacity, std::uint64_t seq, ChangeEntry& out,
                          ShardChange* where) {
  const ChangeSlot& slot = ring[change_slot_index(seq, capacity)];
  std::uint64_t before = slot.stamp.load(std::memory_order_acquire);
  if (before == kStampWriting || before < seq) return SlotRead::kNotYetWritten;
  if (before > seq) return SlotRead::kOverwritten;
  out.seq = seq;
  out.version = load(slot.version);
  out.kind = static_cast<ChangeKind>(load(slot.kind));
  std::size_t n = std::min<std::size_t>(load(slot.id_size), kChangeIdBytes);
  out.session_id.resize(n);
  for (std::size_t i = 0; i < n; ++i) out.session_id[i] = load(slot.id[i]);
  if (where != nullptr) *where = {load(slot.shard), load(slot.shard_change)};
  std::atomic_thread_fence(std::memory_order_acquire);
  std::uint64_t after = slot.stamp.load(std::memory_order_relaxed);
  if (after != seq) return after == kStampWriting || after > seq ? SlotRead::kOverwritten : SlotRead::kNotYetWritten;
  return SlotRead::kOk;
}

}  // namespace shmsession::shm::detail
