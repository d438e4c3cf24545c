// The change log as followers read it (behaviour in shm/change_feed.hpp;
// the ring's slots in shm/detail/change_ring.cpp, written by every session
// operation in store_sessions.cpp). Readers take no lock, except to unstick
// a slot whose writer is inside (or died inside) its shard's critical
// section.
#include "shm/change_feed.hpp"

#include <algorithm>

#include "shm/detail/change_ring.hpp"
#include "shm/detail/futex.hpp"
#include "shm/detail/store_impl.hpp"

namespace shmsession {

using namespace shm::detail;

std::string_view change_kind_name(ChangeKind kind) noexcept {
  switch (kind) {
    case ChangeKind::Created:
      return "created";
    case ChangeKind::Committed:
      return "committed";
    case ChangeKind::Removed:
      return "removed";
    case ChangeKind::Expired:
      return "expired";
  }
  return "unknown";
}

std::uint64_t ChangeFeed::next_seq() const noexcept {
  return impl_->current_or_mapped().root->next_change_seq.load(std::memory_order_acquire);
}

std::uint64_t ChangeFeed::retired_count() const noexcept {
  return impl_->current_or_mapped().root->retired.load(std::memory_order_seq_cst);
}

bool ChangeFeed::wait(std::uint64_t seq, std::chrono::microseconds timeout) const {
  Generation* g = &impl_->gen();
  try {
    g = &impl_->gen_checked();
  } catch (...) {
    return false;  // the caller's next call reports why
  }
  StoreRoot& root = *g->root;
  if (root.next_change_seq.load(std::memory_order_acquire) > seq) return true;
  root.change_waiters.fetch_add(1, std::memory_order_seq_cst);
  const std::uint32_t signal = root.change_signal.load(std::memory_order_seq_cst);
  if (root.next_change_seq.load(std::memory_order_seq_cst) <= seq) futex_wait(root.change_signal, signal, timeout);
  root.change_waiters.fetch_sub(1, std::memory_order_seq_cst);
  return root.next_change_seq.load(std::memory_order_acquire) > seq;
}

namespace {

ChangeBatch read_changes_in(Generation& s, std::uint64_t from_seq, std::size_t max) {
  if (s.root->moved.load(std::memory_order_acquire) != 0) throw GenerationMoved{};
  const std::uint32_t cap = s.root->change_capacity;
  ChangeBatch out;
  std::uint64_t next = s.root->next_change_seq.load(std::memory_order_acquire);
  std::uint64_t oldest = next > cap ? next - cap : 1;
  std::uint64_t seq = std::max<std::uint64_t>(from_seq, 1);
  if (seq < oldest) {
    out.fell_behind = true;
    out.next_seq = next;
    return out;
  }
  bool unstuck = false;
  while (seq < next && out.entries.size() < max) {
    ChangeEntry entry;
    SlotRead r = read_change_slot(s.ring, cap, seq, entry);
    if (r == SlotRead::kOk) {
      out.entries.push_back(std::move(entry));
      ++seq;
      continue;
    }
    if (r == SlotRead::kOverwritten || seq + cap <= s.root->next_change_seq.load(std::memory_order_acquire)) {
      out.fell_behind = true;
      out.next_seq = s.root->next_change_seq.load(std::memory_order_acquire);
      return out;
    }
    // Its writer is still inside the critical section: return what is
    // there rather than wait (the next read continues from here).
    if (unstuck || !out.entries.empty()) break;
    // The writer of this slot is inside its shard's critical section, or
    // died there: taking that shard's lock waits for it or repairs it.
    unstuck = true;
    for (std::uint32_t i = 0; i < s.root->shard_count; ++i) {
      if (s.shards[i].pending.seq.load(std::memory_order_acquire) == seq) {
        ShardGuard guard(s, s.shards[i]);
        break;
      }
    }
  }
  out.next_seq = seq;
  return out;
}

}  // namespace

ChangeBatch ChangeFeed::read(std::uint64_t from_seq, std::size_t max) const {
  return impl_->run([&](Generation& s) { return read_changes_in(s, from_seq, max); });
}

}  // namespace shmsession
