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
// its old version or its new one). The position and the failover state
// are read and written under their own robust mutex in the segment; a
// writer killed there leaves the last complete position. One daemon per
// standby is expected to write it. fork(): as the Store.
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

// A store's place in a failover (Replica::failover_state). Every store
// has an epoch, 1 when created. A standby takes the epoch of the primary
// its backup daemon admits (Replica::admit); a promotion goes one past it.
// So a store promoted in place of another always has a newer epoch than
// it, and a backup daemon, a standby and an agent can refuse a peer that
// was superseded (sync/wire/wire_format.md, "Epochs").
struct FailoverState {
  std::uint64_t epoch = 0;
  // Promoted from a standby (Replica::promote): it follows no primary, and
  // a backup daemon applies nothing to it any more.
  bool promoted = false;
  // 0: the store takes commits. Otherwise it was fenced (Replica::fence):
  // the epoch that superseded it (its own when an operator demoted it);
  // commits, creations and removals fail with Errc::Fenced.
  std::uint64_t fenced_by = 0;
  ReplicaPosition promoted_from;  // the position it held when promoted (zeros if never)
  friend bool operator==(const FailoverState&, const FailoverState&) = default;
};

class ResyncDraft;

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
  // names), SegmentFull, Fenced (the store was promoted: it follows no
  // primary any more).
  std::optional<std::uint64_t> apply(std::string_view id, std::optional<std::uint64_t> expected_base,
                                     std::uint64_t new_version, const CommitBatch& batch,
                                     std::optional<std::uint32_t> idle_timeout_s = {});

  // Removes a session as the primary did: a removal refused on a promoted
  // store only (Errc::Fenced), not on a fenced one (Store::remove_session
  // is refused there). Returns as Store::remove_session.
  bool remove(std::string_view id);

  // The standby's position in its primary's change log (zeros once
  // promoted). The daemon sets it after applying and before
  // acknowledging. Throws (set_position): Error(Fenced) once promoted.
  ReplicaPosition position() const;
  void set_position(const ReplicaPosition& position);

  // Failover. The state is kept in the segment under the position's
  // robust mutex; a process killed in promote or fence leaves the state
  // before or after its one deciding store (promote: epoch and promoted
  // together; fence: fenced_by), never a mix that takes writes it should not.
  FailoverState failover_state() const;

  // Makes this store a primary in place of the one it follows: epoch one
  // past its own, promoted, no longer fenced, its position moved to
  // promoted_from and cleared. Returns the new epoch once no apply or
  // removal of a backup daemon can land any more (one in progress
  // finishes first; later ones fail with Errc::Fenced).
  std::uint64_t promote();

  // Fences the store (shmctl demote, or an agent that learns its store
  // was superseded): from when this returns, commits, creations and
  // removals by applications fail with Errc::Fenced (one publishing now
  // finishes first); reads, locks and replication into it continue (it
  // may become the standby of the store that superseded it). `by`: the
  // superseding epoch, 0 to record the store's own (an operator's demote).
  // Clears promoted. Returns the recorded fenced_by.
  std::uint64_t fence(std::uint64_t by = 0);

  // A full resync built beside the standby (ResyncDraft, below): an empty
  // store of the standby's options (a second segment of its size while the
  // resync runs), that the snapshot is applied to while the standby stays
  // exactly as it was. A draft an earlier daemon left behind is removed.
  // Throws: Io (the memory of the second copy cannot be reserved).
  ResyncDraft begin_resync();

  // A backup daemon admitting an agent whose store has `epoch`: false,
  // changing nothing, when this store was promoted or has a newer epoch
  // (that agent's store was superseded); else raises this store's epoch to
  // `epoch` and returns true.
  bool admit(std::uint64_t epoch);

 private:
  Store::Impl* impl_;
};

// A full resync in progress (Replica::begin_resync): the standby keeps
// its last consistent state and position until publish() puts the draft
// in its place at once; a draft dropped unpublished (a link lost midway, a
// refused snapshot) is removed, and the standby never held a mix of the
// two. Move-only; one thread at a time.
class ResyncDraft {
 public:
  ResyncDraft(ResyncDraft&&) noexcept;
  ResyncDraft& operator=(ResyncDraft&&) = delete;
  ResyncDraft(const ResyncDraft&) = delete;
  ResyncDraft& operator=(const ResyncDraft&) = delete;
  ~ResyncDraft();  // removes an unpublished draft

  // Where the snapshot goes: Replica(draft.store()).apply(...). An ordinary
  // store, under a private name nobody else attaches.
  Store& store() noexcept { return draft_; }

  // Puts the draft in the standby's place under its name, at `position`:
  // one rename (every process attached to the standby moves to the new
  // segment at its next access, as after a rebuild; their process locks
  // are revoked, and their client copies reload). The standby's epoch,
  // failover state, replication bound, agent status and lock tokens carry
  // over. Throws: Fenced if the standby was promoted meanwhile (nothing
  // changes; the draft is removed when dropped), Io.
  void publish(const ReplicaPosition& position);

 private:
  friend class Replica;
  ResyncDraft(Store::Impl* standby, Store draft, std::string shm_name) noexcept;

  Store::Impl* standby_;
  Store draft_;
  std::string shm_name_;  // the draft's segment name; empty once published or moved from
};

}  // namespace shmsession
