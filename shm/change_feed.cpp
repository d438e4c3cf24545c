// The change log as followers read it (behaviour in shm/change_feed.hpp;
// the slots in shm/detail/change_ring.cpp). Every session operation writes
// its entry to the lane of its CPU (store.cpp, Generation::begin_change);
// followers sequence the lanes into the log here, under the sequencer's
// lock, and read the log without one.
#include "shm/change_feed.hpp"

#include <algorithm>
#include <vector>

#include "shm/detail/change_ring.hpp"
#include "shm/detail/futex.hpp"
#include "shm/detail/robust_mutex.hpp"
#include "shm/detail/store_impl.hpp"
#include "shm/detail/test_hooks.hpp"

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

namespace shm::detail {
namespace {

// Appends an entry to the log at `next` and publishes it (sequencer's
// lock held). A sequencer that dies between the slot and the sequence
// leaves the slot to be written again by the next one.
void log_entry(Generation& g, std::uint64_t& next, ChangeKind kind, std::uint64_t version, std::string_view id) {
  write_change_slot(g.ring, g.change_capacity, next, kind, version, id);
  ++next;
  g.root->next_change_seq.store(next, std::memory_order_release);
}

void log_lost(Generation& g, std::uint64_t& next) { log_entry(g, next, static_cast<ChangeKind>(kLostChanges), 0, {}); }

// The sequencer's view of one lane: where it stands and its next entry.
struct LaneHead {
  std::uint64_t head = 0;    // the lane's last position handed out
  std::uint64_t cursor = 0;  // its last position sequenced
  SlotRead next = SlotRead::kNotYetWritten;
  ChangeEntry entry;  // the entry at cursor + 1 when next is kOk
  ShardChange where;
  std::uint64_t read_at = 0;  // how many times the heads were loaded when it was read
};

// Moves the entries the lanes hold into the log (sequencer's lock held).
// The lanes are merged so that the entries of one shard, hence of one
// session, keep the order they were made in (ShardChange::number, checked
// against shard_sequenced), whichever lanes they went to; a lane stops at
// an entry still being written (a writer inside its critical section),
// whose position it returns, the first one met (0: none).
//
// Why the merge always moves on: a change takes its lane position inside
// its shard's critical section, so two complete entries that wait for
// each other's shard predecessors would need each lane's order to run
// against the other's, which the critical sections forbid; and an entry
// being written holds its shard's lock, so no complete entry of that
// shard comes after it.
//
// The heads are loaded one lane after another, so an entry may wait for a
// predecessor that took its position in another lane after that lane's
// head was loaded (two writers of one shard on two CPUs, between the two
// loads). Its predecessor took its position before it did, so heads
// loaded after the entry was read include it: the heads are loaded again
// before a waiting entry read since their last load is called an orphan.
// If complete entries still wait then, and no lane is stopped at a
// writer, their predecessors were lost (a lane overflowed, or damage): a
// lost-changes entry is logged and the oldest waiting entry goes ahead.
//
// Every entry is logged before its lane's cursor passes it: a sequencer
// that dies in between leaves it to be logged again (a follower reads a
// change twice; it never misses one). Lanes that lost entries (overflow,
// a slot overwritten under the sequencer, words that damage set) log a
// lost-changes entry.
struct Stuck {
  std::uint32_t lane = 0;
  std::uint64_t position = 0;  // 0: no lane waits for a writer
};

Stuck drain_lanes(Generation& g, std::uint64_t& next) {
  const std::uint32_t shards = g.root->shard_count;
  bool lost = false;  // the last entry logged is a lost-changes one
  auto lose = [&] {
    if (!lost) log_lost(g, next);
    lost = true;
  };
  std::vector<LaneHead> lanes(g.lane_count);
  std::uint64_t loads = 0;  // how many times the heads were loaded
  auto advance = [&](std::uint32_t l) {
    LaneHead& h = lanes[l];
    g.lanes[l].cursor.store(++h.cursor, std::memory_order_release);
  };
  // Reads lane l's next entry, dropping what it lost (kOverwritten: the
  // lane wrapped under this sequencer; a shard number out of range).
  auto look = [&](std::uint32_t l) {
    LaneHead& h = lanes[l];
    for (;;) {
      if (h.cursor >= h.head) {
        h.next = SlotRead::kNotYetWritten;
        return;
      }
      h.next = read_change_slot(g.lane_ring(l), g.lane_capacity, h.cursor + 1, h.entry, &h.where);
      h.read_at = loads;
      if (h.next == SlotRead::kOk && h.where.shard < shards) return;
      if (h.next == SlotRead::kNotYetWritten) return;
      lose();
      advance(l);
    }
  };
  // Loads every lane's head, and reads the next entry of each lane that
  // holds none (a lane holding one keeps it).
  auto load_heads = [&] {
    ++loads;
    for (std::uint32_t l = 0; l < g.lane_count; ++l) {
      LaneHead& h = lanes[l];
      h.head = std::min(g.lanes[l].head.load(std::memory_order_acquire), kMaxLanePosition);
      if (loads == 1) h.cursor = g.lanes[l].cursor.load(std::memory_order_relaxed);
      run_test_hook(HookPoint::kSequencerHeadLoaded);
      if (h.next == SlotRead::kOk) continue;
      if (h.cursor > h.head || h.head - h.cursor > g.lane_capacity) {  // damage, or a lane that overflowed
        lose();
        h.cursor = h.cursor > h.head ? h.head : h.head - g.lane_capacity;
        g.lanes[l].cursor.store(h.cursor, std::memory_order_release);
      }
      look(l);
    }
  };
  load_heads();
  auto emit = [&](std::uint32_t l) {
    LaneHead& h = lanes[l];
    log_entry(g, next, h.entry.kind, h.entry.version, h.entry.session_id);
    run_test_hook(HookPoint::kSequencerLogged);
    lost = false;
    std::uint64_t& done = g.shard_sequenced[h.where.shard];
    done = std::max(done, h.where.number);  // an entry logged again (a sequencer died) leaves it
    advance(l);
    look(l);
  };
  for (;;) {
    bool moved = false;
    for (std::uint32_t l = 0; l < g.lane_count; ++l) {
      while (lanes[l].next == SlotRead::kOk && lanes[l].where.number <= g.shard_sequenced[lanes[l].where.shard] + 1) {
        emit(l);
        moved = true;
      }
    }
    if (moved) continue;
    Stuck stuck;
    std::uint32_t oldest = g.lane_count;  // a complete entry waiting for a predecessor
    for (std::uint32_t l = 0; l < g.lane_count; ++l) {
      const LaneHead& h = lanes[l];
      if (h.next == SlotRead::kNotYetWritten && h.cursor < h.head && stuck.position == 0) stuck = {l, h.cursor + 1};
      if (h.next == SlotRead::kOk && (oldest == g.lane_count || h.where.number < lanes[oldest].where.number))
        oldest = l;
    }
    if (stuck.position != 0 || oldest == g.lane_count) return stuck;
    if (lanes[oldest].read_at == loads) {  // read since the heads were loaded: its predecessor may be past them
      load_heads();
      continue;
    }
    lose();  // its predecessors are gone
    emit(oldest);
  }
}

}  // namespace

bool lanes_pending(const Generation& g) noexcept {
  for (std::uint32_t l = 0; l < g.lane_count; ++l)
    if (g.lanes[l].head.load(std::memory_order_seq_cst) != g.lanes[l].cursor.load(std::memory_order_seq_cst))
      return true;
  return false;
}

namespace {

// Waits for the writer of lane entry `stuck`, or repairs it if it died,
// by taking its shard lock.
void unstick(Generation& g, const Stuck& stuck) {
  for (std::uint32_t i = 0; i < g.root->shard_count; ++i) {
    const PendingChange& p = g.shards[i].pending;
    if (p.seq.load(std::memory_order_acquire) == stuck.position &&
        p.lane.load(std::memory_order_relaxed) == stuck.lane) {
      ShardGuard guard(g, g.shards[i]);
      return;
    }
  }
}

}  // namespace

std::uint64_t sequence_changes(Generation& g, bool unstick_writers) {
  if (g.root->moved.load(std::memory_order_acquire) != 0) throw GenerationMoved{};
  if (!lanes_pending(g)) return g.root->next_change_seq.load(std::memory_order_seq_cst);
  for (int round = 0;; ++round) {
    std::uint64_t next = 0;
    Stuck stuck;
    {
      // A sequencer that died left nothing to repair: see log_entry, drain_lane.
      RobustLockGuard guard(g.root->sequencer_mutex);
      if (g.root->moved.load(std::memory_order_acquire) != 0) throw GenerationMoved{};
      next = g.root->next_change_seq.load(std::memory_order_relaxed);
      stuck = drain_lanes(g, next);
    }
    // The shard lock is taken without the sequencer's: a writer holding
    // its shard lock never waits for the sequencer.
    if (!unstick_writers || stuck.position == 0 || round == 1) return next;
    unstick(g, stuck);
  }
}

namespace {
thread_local bool t_change_made = false;
thread_local bool t_lane_filling = false;
}  // namespace

void note_change_made() noexcept { t_change_made = true; }

void note_lane_filling() noexcept { t_lane_filling = true; }

void finish_changes(Generation& g) noexcept {
  if (!t_change_made) [[likely]]
    return;
  t_change_made = false;
  g.wake_followers();
  if (!t_lane_filling) [[likely]]
    return;
  t_lane_filling = false;
  try {
    sequence_changes(g, false);  // a lane stopped at a writer waits for the next pass
  } catch (...) {
    // A moved generation was sequenced by its rebuild; damage is the followers' to report.
  }
}

void sequence_changes_locked(Generation& g) {
  std::uint64_t next = g.root->next_change_seq.load(std::memory_order_relaxed);
  if (drain_lanes(g, next).position != 0) log_lost(g, next);  // no writer is left to finish it
}

}  // namespace shm::detail

std::uint64_t ChangeFeed::next_seq() const noexcept {
  try {
    return impl_->run([](Generation& g) { return sequence_changes(g, false); });
  } catch (...) {
    return logged_seq();  // the caller's next call that may throw reports why
  }
}

std::uint64_t ChangeFeed::logged_seq() const noexcept {
  // seq_cst: see StoreRoot::retired.
  return impl_->current_or_mapped().root->next_change_seq.load(std::memory_order_seq_cst);
}

std::uint64_t ChangeFeed::retired_count() const noexcept {
  return impl_->current_or_mapped().root->retired.load(std::memory_order_seq_cst);
}

// A change at `seq` or later is logged, or waits in a lane for a follower.
static bool change_beyond(const Generation& g, std::uint64_t seq) noexcept {
  return g.root->next_change_seq.load(std::memory_order_seq_cst) > seq || shm::detail::lanes_pending(g);
}

bool ChangeFeed::wait(std::uint64_t seq, std::chrono::microseconds timeout) const {
  Generation* g = &impl_->gen();
  try {
    g = &impl_->gen_checked();
  } catch (...) {
    return false;  // the caller's next call reports why
  }
  StoreRoot& root = *g->root;
  if (change_beyond(*g, seq)) return true;
  root.change_waiters.fetch_add(1, std::memory_order_seq_cst);
  const std::uint32_t signal = root.change_signal.load(std::memory_order_seq_cst);
  if (!change_beyond(*g, seq)) futex_wait(root.change_signal, signal, timeout);
  root.change_waiters.fetch_sub(1, std::memory_order_seq_cst);
  return change_beyond(*g, seq);
}

namespace {

ChangeBatch read_changes_in(Generation& s, std::uint64_t from_seq, std::size_t max) {
  const std::uint64_t next = sequence_changes(s, true);
  const std::uint32_t cap = s.root->change_capacity;
  ChangeBatch out;
  std::uint64_t oldest = next > cap ? next - cap : 1;
  std::uint64_t seq = std::max<std::uint64_t>(from_seq, 1);
  auto fell_behind = [&] {
    out.entries.clear();
    out.fell_behind = true;
    out.next_seq = s.root->next_change_seq.load(std::memory_order_acquire);
    return out;
  };
  if (seq < oldest) return fell_behind();
  while (seq < next && out.entries.size() < max) {
    ChangeEntry entry;
    // Below `next`, every slot was written before `next` moved past it:
    // one that does not hold its entry was overwritten (or is damaged).
    if (read_change_slot(s.ring, cap, seq, entry) != SlotRead::kOk) return fell_behind();
    const auto kind = static_cast<std::uint8_t>(entry.kind);
    if (kind < static_cast<std::uint8_t>(ChangeKind::Created) || kind > static_cast<std::uint8_t>(ChangeKind::Expired))
      return fell_behind();  // lost changes (kLostChanges), or a damaged slot
    out.entries.push_back(std::move(entry));
    ++seq;
  }
  out.next_seq = seq;
  return out;
}

}  // namespace

ChangeBatch ChangeFeed::read(std::uint64_t from_seq, std::size_t max) const {
  return impl_->run([&](Generation& s) { return read_changes_in(s, from_seq, max); });
}

}  // namespace shmsession
