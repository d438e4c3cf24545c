// Replica: a store as the standby of another (its primary). The backup
// daemon (shmsession-backupd, sync/backup/) applies each commit the primary
// made so that the standby's session reaches exactly the primary's version,
// and keeps in the standby's segment how far in the primary's change log it
// has applied, so that a restarted daemon resumes where it stopped.
//
// A Replica is a view: it holds a pointer to its Store's attachment and
// nothing else (making one costs a pointer copy; each call costs what the
// Store method it replaces cost). Lifetime: a view must not outlive its
// Store (moving the Store moves the attachment, and the view with it; a
// view of a moved-from Store must not be used).
//
// Thread safety: any number of threads may use views of one Store at once.
// Cross-process safety: apply is a commit like any other (atomic, under the
// session's shard lock; a process killed mid-apply leaves the session at
// its old version or its new one). The position is read and written under
// its own robust mutex in the segment; a writer killed there leaves the
// position cleared (all zero: the next handshake starts over). One daemon
// per standby is expected to write it. fork(): as the Store.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "shm/store.hpp"

namespace shmsession {

// Where a standby stands in its primary's change log. All zero on a store
// that follows no primary.
struct ReplicaPosition {
  std::array<std::uint8_t, 16> primary_store_id{};
  std::uint64_t applied_seq = 0;
  bool follows_a_primary() const noexcept;
  std::string primary_store_id_hex() const;
  friend bool operator==(const ReplicaPosition&, const ReplicaPosition&) = default;
};

class Replica {
 public:
  // Requires: `store` is not moved-from. A non-const Store, as for the
  // Store methods that write: apply and set_position change the segment.
  explicit Replica(Store& store) noexcept : impl_(store.impl_.get()) {}

  // Applies a commit made on the primary so that the session reaches
  // exactly the primary's `new_version` (its written attributes take that
  // version too). A session absent here is created (idle timeout as given,
  // else the store's) when `expected_base` is empty or 0. Returns nullopt
  // if `expected_base` is given and the session is not at it (the caller
  // then asks for the session in full). A full copy of a session is a batch
  // that also removes every local attribute the primary lacks.
  // Throws: InvalidArgument (new_version not newer than the session's, bad
  // names), SegmentFull.
  std::optional<std::uint64_t> apply(std::string_view id, std::optional<std::uint64_t> expected_base,
                                     std::uint64_t new_version, const CommitBatch& batch,
                                     std::optional<std::uint32_t> idle_timeout_s = {});

  // The standby's position in its primary's change log. The daemon sets it
  // after applying and before acknowledging.
  ReplicaPosition position() const;
  void set_position(const ReplicaPosition& position);

 private:
  Store::Impl* impl_;
};

}  // namespace shmsession
