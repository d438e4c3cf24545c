// DeltaSource: the primary-host half of replication, without the network.
// It follows the store's change log and turns what changed into session
// deltas against its benchmark of what the backup holds (per session: the
// version and the attribute bytes last shipped), coalescing several commits
// of one session into one delta. It reads from the store only the values
// whose attribute version moved since the benchmark's (the commits that
// wrote them stamped them), not whole sessions. When the log no longer covers the gap (or
// on request) it produces a full snapshot instead.
//
// Thread safety: one thread uses a DeltaSource (the agent's shipping loop).
// Cross-process safety: it only reads the store (peek, ChangeFeed::read), so app
// servers are never blocked by it; a slow agent only grows the lag.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "diff/delta.hpp"
#include "shm/store.hpp"

namespace shmsession::sync::detail {

struct Outgoing {
  enum class Kind { Delta, Removal };
  Kind kind = Kind::Delta;
  diff::SessionDelta delta;  // Removal: only session_id and base_version
  std::uint32_t idle_timeout_s = 0;
  // The change-log position a backup reaches once it has applied this item
  // and every item before it: every change below it is reflected. Items of
  // one poll are in the order of their session's first change, so this is
  // the first change of the next item's session (the batch's next_seq for
  // the last); it strictly grows from item to item.
  std::uint64_t seq = 0;
};

struct SourceBatch {
  std::vector<Outgoing> items;
  std::uint64_t next_seq = 0;  // the change-log position these items reach
  bool full_resync = false;    // the log fell behind: call snapshot()
};

class DeltaSource {
 public:
  // Starts at the store's current log position with an empty benchmark:
  // call snapshot() first for a backup that holds nothing yet.
  explicit DeltaSource(Store& primary);

  // Continues from `seq` (a backup's last applied position) with a
  // benchmark that may not know every session the backup holds: a session
  // it does not know is shipped whole, and a removal is shipped even for a
  // session it never saw. `forget` names sessions whose last shipment may
  // not have arrived (sent, not acknowledged): their benchmark is dropped.
  void resume(std::uint64_t seq, const std::vector<std::string>& forget);

  // Deltas for what changed since the last poll, at most `max_entries` log
  // entries' worth. Throws: as Store.
  SourceBatch poll(std::size_t max_entries);
  // Every live session in full (from an empty base), resetting the
  // benchmark; the log position moves to where the snapshot began, so later
  // polls cover whatever changed during it.
  SourceBatch snapshot();
  // The same, streamed: begin_snapshot resets the benchmark, moves the log
  // position and lists the sessions (ids only, cheap); snapshot_item then
  // gives one session in full (nullopt if it went meanwhile: a later poll
  // ships the removal). Every item's seq is the snapshot's position.
  struct SnapshotPlan {
    std::uint64_t seq = 0;
    std::vector<std::string> ids;
  };
  SnapshotPlan begin_snapshot();
  std::optional<Outgoing> snapshot_item(const std::string& id, std::uint64_t seq);
  // The delta that brings a backup holding nothing of `id` to its current
  // state (the backup asked for it after a checksum mismatch).
  std::optional<Outgoing> full_session(const std::string& id);

  std::uint64_t next_seq() const noexcept { return next_seq_; }
  // Bytes of the deltas produced, and of the delta frames that would carry
  // the whole sessions instead (whole-session replication, same format).
  std::uint64_t delta_bytes() const noexcept { return delta_bytes_; }
  std::uint64_t whole_bytes() const noexcept { return whole_bytes_; }
  // Changes too large for one delta frame, skipped (the backup keeps the
  // session's last shipped version), and the last such session and reason.
  std::uint64_t oversized() const noexcept { return oversized_; }
  const std::string& last_oversized() const noexcept { return last_oversized_; }
  // Sessions whose bytes failed their checksums on the primary (Corrupt),
  // skipped: damage is never shipped, the backup keeps the session's last
  // shipped version (what `shmctl restore` brings back); and the last one.
  std::uint64_t damaged() const noexcept { return damaged_; }
  const std::string& last_damaged() const noexcept { return last_damaged_; }

 private:
  // What the backup holds of an attribute: its bytes and flags, and the
  // session version that wrote it (Attribute::version), by which the store
  // tells which values moved since (Store::peek_moved).
  struct Shipped {
    std::string bytes;
    std::uint32_t flags = 0;
    std::uint64_t version = 0;
  };
  struct Benchmark {
    std::uint64_t incarnation = 0;  // a re-created session starts from empty
    std::uint64_t version = 0;
    std::map<std::string, Shipped, std::less<>> attributes;
  };
  std::optional<Outgoing> delta_for(const std::string& id);

  Store& primary_;
  std::uint64_t next_seq_;
  std::unordered_map<std::string, Benchmark> benchmark_;
  // The benchmark knows every session the backup holds (after a snapshot;
  // not after resume): a removal of an unknown session need not be shipped.
  bool complete_ = true;
  std::uint64_t delta_bytes_ = 0;
  std::uint64_t whole_bytes_ = 0;
  std::uint64_t oversized_ = 0;
  std::string last_oversized_;
  std::uint64_t damaged_ = 0;
  std::string last_damaged_;
};

}  // namespace shmsession::sync::detail
