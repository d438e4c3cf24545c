// ChangeFeed: a store's change log as a follower reads it. Every creation,
// commit, removal and expiry of a session is logged with a sequence number
// that only grows, in a bounded ring in the segment; a follower (the
// replication agent, a sync::Client keeping its copies current) reads the
// entries from where it stopped and learns what changed without scanning
// the sessions. A follower that falls more than the ring's capacity behind
// is told so (ChangeBatch::fell_behind) and must rescan the store.
//
// A change writes its entry to a lane of the CPU it runs on, not to the
// log (so that processes committing at once share no cache line); the
// followers' calls below move the lanes' entries into the log first
// ("sequencing", shm/segment_format.md). The entries of one session are
// logged in the order they were made. A lane holds change_log_capacity /
// lanes entries (CreateOptions::change_lanes); changes it could not hold
// until a follower came make the followers that read past them fall
// behind, like an overflow of the log. A follower killed while sequencing
// may leave one entry to be logged twice: a follower can read a change
// twice, and never misses one.
//
// A ChangeFeed is a view: it holds a pointer to its Store's attachment and
// nothing else, so making one costs a pointer copy and every call costs what
// the Store method it replaces cost (logged_seq and retired_count are one
// atomic load each; no allocation, no lock). Lifetime: a view must not
// outlive its Store (moving the Store moves the attachment, and the view
// with it; a view of a moved-from Store must not be used).
//
// Thread safety: any number of threads may use views of one Store, and
// copies of a view, at once. Cross-process safety: any number of processes
// may follow the same log; readers never block writers, and a writer
// killed mid-entry is repaired by the reader that meets it (it takes the
// writer's shard lock, which runs the shard's repair). fork(): a view is
// as usable in the child as its Store (shm/store.hpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "shm/store.hpp"

namespace shmsession {

enum class ChangeKind : std::uint8_t {
  Created = 1,
  Committed = 2,
  Removed = 3,
  Expired = 4,
};

std::string_view change_kind_name(ChangeKind kind) noexcept;

struct ChangeEntry {
  std::uint64_t seq = 0;
  std::uint64_t version = 0;  // session version after the change
  ChangeKind kind = ChangeKind::Committed;
  std::string session_id;
};

struct ChangeBatch {
  std::vector<ChangeEntry> entries;  // ascending seq, no gaps
  std::uint64_t next_seq = 0;        // where to continue reading
  // The ring no longer holds the requested sequence: entries were lost to
  // overflow and the follower must fall back to a full scan of the store.
  bool fell_behind = false;
};

class ChangeFeed {
 public:
  // Requires: `store` is not moved-from.
  explicit ChangeFeed(const Store& store) noexcept : impl_(store.impl_.get()) {}

  // Reads up to `max` entries starting at `from_seq`, after sequencing the
  // lanes (waiting for a writer inside its change, or repairing a dead one
  // by taking its shard lock).
  ChangeBatch read(std::uint64_t from_seq, std::size_t max) const;
  // The sequence the next change will get: sequences the lanes first (not
  // waiting for a writer still inside its change, whose entry comes later),
  // so the changes that ended before the call are below it. A load per
  // lane when the lanes hold nothing, else a pass under the sequencer's
  // lock.
  std::uint64_t next_seq() const noexcept;
  // The sequence the log's next entry will get, without sequencing: every
  // change not logged yet (one still in its lane, or one to come) is
  // logged at this sequence or later. One atomic load: for a follower that
  // only needs a point from which to read on (sync::Client on every open).
  std::uint64_t logged_seq() const noexcept;
  // For a follower that has read every change below `seq`: sleeps until a
  // change at `seq` or later is logged or waits in a lane to be, at most
  // `timeout`; true if one is (read() then sequences it).
  // A commit wakes it at once (a futex wake, paid only while a follower
  // sleeps), so a follower need not poll. May return early (a signal):
  // check the result. Throws nothing. Meant for the store's agent (the one
  // sleeping follower): AgentSeat::claim clears the count a killed one left.
  bool wait(std::uint64_t seq, std::chrono::microseconds timeout) const;
  // Sessions removed or expired so far (every process; one atomic load).
  // It moves before the removal's change is logged: read next_seq first,
  // then this; if it did not move since an earlier look, no removal lies
  // below that sequence.
  std::uint64_t retired_count() const noexcept;

 private:
  Store::Impl* impl_;
};

}  // namespace shmsession
