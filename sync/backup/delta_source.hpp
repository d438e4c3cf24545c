// DeltaSource: the primary-host half of replication, without the network.
// It follows the store's change log and turns what changed into session
// deltas against its benchmark of what the backup holds (per session: the
// version and the attribute bytes last shipped), coalescing several commits
// of one session into one delta. When the log no longer covers the gap (or
// on request) it produces a full snapshot instead.
//
// Thread safety: one thread uses a DeltaSource (the agent's shipping loop).
// Cross-process safety: it only reads the store (peek, read_changes), so app
// servers are never blocked by it; a slow agent only grows the lag.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "diff/delta.hpp"
#include "shm/store.hpp"

namespace shmsession::sync {

struct Outgoing {
  enum class Kind { Delta, Removal };
  Kind kind = Kind::Delta;
  diff::SessionDelta delta;  // Removal: only session_id and base_version
  std::uint32_t idle_timeout_s = 0;
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

  // Deltas for what changed since the last poll, at most `max_entries` log
  // entries' worth. Throws: as Store.
  SourceBatch poll(std::size_t max_entries);
  // Every live session in full (from an empty base), resetting the
  // benchmark; the log position moves to where the snapshot began, so later
  // polls cover whatever changed during it.
  SourceBatch snapshot();
  // The delta that brings a backup holding nothing of `id` to its current
  // state (the backup asked for it after a checksum mismatch).
  std::optional<Outgoing> full_session(const std::string& id);

  std::uint64_t next_seq() const noexcept { return next_seq_; }
  // Bytes of the deltas produced and of the whole sessions they stand for.
  std::uint64_t delta_bytes() const noexcept { return delta_bytes_; }
  std::uint64_t whole_bytes() const noexcept { return whole_bytes_; }

 private:
  struct Benchmark {
    std::uint64_t incarnation = 0;  // a re-created session starts from empty
    std::uint64_t version = 0;
    diff::AttributeMap attributes;
  };
  std::optional<Outgoing> delta_for(const std::string& id);

  Store& primary_;
  std::uint64_t next_seq_;
  std::unordered_map<std::string, Benchmark> benchmark_;
  std::uint64_t delta_bytes_ = 0;
  std::uint64_t whole_bytes_ = 0;
};

}  // namespace shmsession::sync
