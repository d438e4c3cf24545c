#include "shm/detail/change_ring.hpp"

#include <algorithm>
#include <cstring>

namespace shmsession::shm::detail {

void write_change_slot(ChangeSlot* ring, std::uint32_t capacity, std::uint64_t seq, ChangeKind kind,
                       std::uint64_t version, std::string_view id) noexcept {
  ChangeSlot& slot = ring[seq % capacity];
  std::uint64_t stamp = slot.stamp.load(std::memory_order_acquire);
  // Never move a slot backwards: a newer sequence owns it.
  while (stamp == kStampWriting || stamp < seq) {
    if (slot.stamp.compare_exchange_weak(stamp, kStampWriting, std::memory_order_acq_rel)) break;
  }
  if (stamp != kStampWriting && stamp >= seq) return;
  slot.version = version;
  slot.kind = static_cast<std::uint8_t>(kind);
  std::size_t n = std::min(id.size(), kChangeIdBytes);
  slot.id_size = static_cast<std::uint8_t>(n);
  std::memcpy(slot.id, id.data(), n);
  slot.stamp.store(seq, std::memory_order_release);
}

SlotRead read_change_slot(const ChangeSlot* ring, std::uint32_t capacity, std::uint64_t seq, ChangeEntry& out) {
  const ChangeSlot& slot = ring[seq % capacity];
  std::uint64_t before = slot.stamp.load(std::memory_order_acquire);
  if (before == kStampWriting || before < seq) return SlotRead::kNotYetWritten;
  if (before > seq) return SlotRead::kOverwritten;
  out.seq = seq;
  out.version = slot.version;
  out.kind = static_cast<ChangeKind>(slot.kind);
  std::size_t n = std::min<std::size_t>(slot.id_size, kChangeIdBytes);
  out.session_id.assign(slot.id, n);
  std::atomic_thread_fence(std::memory_order_acquire);
  std::uint64_t after = slot.stamp.load(std::memory_order_relaxed);
  if (after != seq) return after == kStampWriting || after > seq ? SlotRead::kOverwritten : SlotRead::kNotYetWritten;
  return SlotRead::kOk;
}

}  // namespace shmsession::shm::detail
