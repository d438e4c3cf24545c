// StandbyApplier: the backup-host half of replication, without the network.
// It applies session deltas to a standby store of the same layout so that
// every session reaches exactly the primary's version, verifying the
// checksum of every resulting value; anything it cannot apply exactly (a
// missing base, a checksum mismatch) is reported so the agent sends that
// session in full. The standby is consistent after every apply: app servers
// may attach to it at any moment (failover).
//
// Thread safety: one thread uses a StandbyApplier (the daemon's connection).
#pragma once

#include <cstdint>
#include <set>
#include <string>

#include "diff/delta.hpp"
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

  // A full resync: begin, apply every session, end. end() removes the
  // standby's sessions the snapshot did not contain.
  void begin_full();
  std::uint64_t end_full();  // returns how many stale sessions were removed

 private:
  Outcome apply_delta(const Outgoing& item);

  Store& standby_;
  bool in_full_ = false;
  std::set<std::string> full_ids_;
};

}  // namespace shmsession::sync::detail
