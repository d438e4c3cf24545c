// StandbyApplier: the backup-host half of replication, without the network.
// It applies session deltas to a standby store of the same layout so that
// every session reaches exactly the primary's version, verifying the
// checksum of every resulting value; anything it cannot apply exactly (a
// missing base, a checksum mismatch) is reported so the agent sends that
// session in full. The standby is consistent after every apply, and
// through a full resync (built beside it): app servers may attach to it at
// any moment (failover).
//
// Thread safety: one thread uses a StandbyApplier (the daemon's connection).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "diff/delta.hpp"
#include "shm/change_feed.hpp"
#include "shm/replica.hpp"
#include "shm/store.hpp"
#include "sync/backup/detail/delta_source.hpp"

namespace shmsession::sync::detail {

class StandbyApplier {
 public:
  enum class Outcome {
    Applied,
    NeedFull,  // ask the agent for this session in full
  };

  explicit StandbyApplier(Store& standby) : standby_(standby) {}

  // Throws: Error(SegmentFull) and other store errors (the standby keeps
  // what it had).
  Outcome apply(const Outgoing& item);

  // A full resync: begin, apply every session, end. The sessions go to a
  // draft beside the standby (Replica::begin_resync), which the standby
  // does not see until end_full puts it in the standby's place at
  // `position`; dropped (another begin_full, or this applier destroyed)
  // it is removed and the standby stays as it was.
  // Throws (begin_full): Io when the draft's memory cannot be reserved;
  // (end_full): Fenced when the standby was promoted meanwhile, Io.
  void begin_full();
  void end_full(const ReplicaPosition& position);

  // Moves what the applies left in the change lanes of the store they
  // write into its change log. Nobody follows a standby's log until it is
  // promoted, so without this the apply that finds its lane half full
  // moved half a lane at once (4,096 entries of the default log: 1-3 ms in
  // which nothing was applied, and the backup's lag showed it). Called once
  // per read of the link, it moves what that read applied. Never throws.
  void sequence_log() noexcept { ChangeFeed(target()).next_seq(); }

 private:
  Outcome apply_delta(const Outgoing& item);
  Store& target() noexcept { return draft_ ? draft_->store() : standby_; }

  Store& standby_;
  std::optional<ResyncDraft> draft_;
};

}  // namespace shmsession::sync::detail
