// Store: the primary state of every session, in one named Boost.Interprocess
// shared segment that many processes attach to.
//
// A store holds sessions (id -> attributes, each attribute name -> bytes with
// a version and flags). Every commit is atomic: a reader sees a session's old
// version or its new one, never a mix. Sessions expire after an idle timeout.
// A bounded change log records every creation, commit and removal so that a
// follower (the sync agent) finds what changed without scanning.
//
// Thread safety: a Store may be used by any number of threads at once.
// Cross-process safety: any number of processes may attach the same segment
// and call any operation concurrently. Internal locks are robust, per-shard
// pthread mutexes held only for short, bounded work (never while user code
// runs, never while waiting for anything else); a process killed while
// holding one is detected by the next locker, which repairs the shard and
// carries on. Values are copied out under the lock; nothing returned points
// into shared memory.
// fork(): a Store stays usable in the child, whatever the parent's threads
// (the release-request watcher included) were doing: fork handlers
// (pthread_atfork) take the Store's process-private mutexes across the
// fork, so the child inherits none of them held. The child is another
// process: it holds none of the parent's process locks (it acquires its
// own), and no watcher thread runs in it (call on_release_request in the
// child to have release requests delivered there). A Store call another
// parent thread was in the middle of does not continue in the child; a
// shard lock that thread held is its parent's to release, as usual.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

#include "shm/error.hpp"
#include "shm/lock.hpp"
#include "shm/session.hpp"

namespace shmsession {

inline constexpr std::uint64_t kDefaultSegmentBytes = std::uint64_t{256} << 20;
inline constexpr std::uint64_t kMinSegmentBytes = std::uint64_t{1} << 20;

struct CreateOptions {
  // Segment size, fixed for the life of the store. With `reserve` (the
  // default) all of it is taken from memory (tmpfs /dev/shm, charged to
  // the creator's memory cgroup) when the store is created, used or not:
  // size it for the sessions you expect, not generously.
  std::uint64_t size_bytes = kDefaultSegmentBytes;
  // Reserve every page at creation (posix_fallocate). Then running out of
  // memory is what the design promises: a clean SegmentFull for the commit
  // that does not fit, or a create that fails at once if the host cannot
  // back the size. Without it pages cost memory only once touched, but a
  // process that touches a page tmpfs cannot back (/dev/shm full, memory
  // cgroup at its limit) dies of SIGBUS or the OOM killer, possibly inside
  // the segment's allocator, which then needs a rebuild (shm/recovery.md).
  bool reserve = true;
  unsigned mode = 0600;  // permission bits of the segment
  // 0 for both: sized from size_bytes (a shard per 64 KiB up to 256, a log
  // entry per 2 KiB up to 16384), so that every size from 1 MiB fits.
  std::uint32_t shards = 0;                     // power of two, 1..65536
  std::uint32_t change_log_capacity = 0;        // entries, 16..(1<<24)
  std::uint32_t default_idle_timeout_s = 1800;  // 0: sessions never expire
  // Process locks (see shm/lock.hpp).
  std::uint32_t lock_lease_ms = kDefaultLockLeaseMs;    // 0: no lease; at most kMaxLockLeaseMs
  std::uint32_t max_lock_queue = kDefaultMaxLockQueue;  // waiters per session, 1..1024
};

// A live process that has a store's segment mapped (see
// Store::attached_processes).
struct AttachedProcess {
  pid_t pid = 0;
  std::string command;  // its name, /proc/<pid>/comm
};

class Store {
 public:
  // Creates a new store. A creation that fails leaves nothing under the
  // name (the segment is built under a private draft name and published
  // only once built; a draft left by a creator that was killed is removed
  // by the next create of that name). Throws: AlreadyExists,
  // InvalidArgument (bad name or options, too small), Io (including: the
  // memory cannot be reserved).
  static Store create(std::string_view name, const CreateOptions& options = {});
  // Attaches an existing store. Throws: NotFound, LayoutMismatch (naming both
  // versions), Corrupt (not a shmsession segment, or its creator died during
  // creation), InvalidArgument, Io.
  static Store attach(std::string_view name);
  // Attaches the store, creating it with `options` if it does not exist.
  static Store open_or_create(std::string_view name, const CreateOptions& options = {});
  // Removes the segment's name; attached processes keep their mapping until
  // they detach. Returns false if there was none. Throws: InvalidArgument, Io.
  static bool remove(std::string_view name);
  static bool exists(std::string_view name);
  // The live processes other than the caller that have the store's segment
  // mapped (hold a Store of it, or are creating it), found in /proc/*/maps:
  // exact, needing no registration, and a process that died is gone from
  // it. Not seen: processes whose maps the caller may not read (another
  // user's, without privilege) and processes still on a generation that a
  // rebuild replaced (they move to the new one on their next access).
  // Empty if the store does not exist. Throws: InvalidArgument.
  static std::vector<AttachedProcess> attached_processes(std::string_view name);

  Store(Store&&) noexcept;
  Store& operator=(Store&&) noexcept;
  ~Store();

  const std::string& name() const noexcept;
  StoreInfo info() const;
  StoreStats stats() const;

  // Creates an empty session (version 0). Returns false if a live session of
  // that id exists (an expired one is replaced). idle_timeout_s defaults to
  // the store's. Throws: InvalidArgument, SegmentFull.
  bool create_session(std::string_view id, std::optional<std::uint32_t> idle_timeout_s = {});

  // Copies out a consistent version of a session: every attribute, or only
  // those named (names that are absent are skipped). Refreshes the session's
  // last access. Returns nullopt if it does not exist or has expired.
  // Every value copied is verified against its checksum first (one XXH3
  // pass over the bytes copied). Throws: Corrupt naming the session (and
  // the attribute) when the segment is damaged there: a value fails its
  // checksum, its attribute table or a link on the way to it fails its
  // bounds (shm/recovery.md, Damage); InvalidArgument for a bad id.
  std::optional<SessionSnapshot> read(std::string_view id, std::span<const std::string_view> names = {});
  // The same into `out`, reusing its buffers; returns false if absent.
  bool read_into(std::string_view id, std::span<const std::string_view> names, SessionSnapshot& out);

  // Like read, but leaves the last access as it was: for operators' views,
  // which must not keep a session alive.
  std::optional<SessionSnapshot> peek(std::string_view id, std::span<const std::string_view> names = {}) const;

  // The session's version and incarnation, nothing copied, no touch: how a
  // client tells cheaply whether its copy is still current. Throws: Corrupt
  // when the search for the session meets a damaged link (as every
  // operation on one session but a commit, create or remove does).
  std::optional<SessionVersion> version(std::string_view id) const;

  // Metadata and attribute names/versions/sizes, no values, no touch.
  // Throws: Corrupt when the session's attribute table fails its bounds.
  std::optional<SessionInfo> describe(std::string_view id) const;

  // Applies the batch atomically and returns the new version (the current one
  // unchanged if the batch changes nothing). Throws: NotFound (absent or
  // expired), InvalidArgument (bad names, duplicates, sizes), SegmentFull
  // (nothing changed).
  std::uint64_t commit(std::string_view id, const CommitBatch& batch);
  // Commits only if the session is still at `expected_version`; nullopt if
  // it moved (optimistic concurrency). Throws as commit.
  std::optional<std::uint64_t> commit_if_version(std::string_view id, std::uint64_t expected_version,
                                                 const CommitBatch& batch);

  // Backup side: applies a commit made on the primary so that the session
  // reaches exactly the primary's `new_version` (its written attributes take
  // that version too). A session absent here is created (idle timeout as
  // given, else the store's) when `expected_base` is empty or 0. Returns
  // nullopt if `expected_base` is given and the session is not at it (the
  // caller then asks for the session in full). A full copy of a session is
  // a batch that also removes every local attribute the primary lacks.
  // Throws: InvalidArgument (new_version not newer than the session's, bad
  // names), SegmentFull.
  std::optional<std::uint64_t> apply_replica(std::string_view id, std::optional<std::uint64_t> expected_base,
                                             std::uint64_t new_version, const CommitBatch& batch,
                                             std::optional<std::uint32_t> idle_timeout_s = {});

  // A standby's position in its primary's change log, kept in the segment
  // so a restarted backup daemon resumes where it stopped. The daemon sets
  // it after applying and before acknowledging.
  ReplicaPosition replica_position() const;
  void set_replica_position(const ReplicaPosition& position);

  // Removes a session; false if it was not there.
  bool remove_session(std::string_view id);
  // Removes every session; returns how many.
  std::uint64_t remove_all_sessions();
  // Refreshes the last access; false if absent or expired.
  bool touch(std::string_view id);
  // Frees every expired session; returns how many.
  std::uint64_t expire();

  // Calls `visit` for each live session (no values, attributes not filled),
  // one shard at a time, outside any lock; stop by returning false. Sessions
  // created or removed meanwhile may or may not be visited.
  void for_each_session(const std::function<bool(const SessionInfo&)>& visit) const;

  // ---- Process locks (shm/lock.hpp) ----

  // Grants the session's lock to this process at once, or returns nullopt
  // if another process holds it (nothing is queued). If this process holds
  // it already, returns the current token. Throws: NotFound; SegmentFull
  // when the session needs a lock state and its shard's table must grow
  // in a full segment (nothing changed); Corrupt for a damaged lock state.
  std::optional<LockToken> try_acquire(std::string_view id);
  // Grants the lock, queueing behind the holder (and asking it to release)
  // for at most `timeout`. Throws: LockTimeout (left the queue cleanly),
  // NotFound (absent, or removed while waiting), LockTimeout with "queue
  // full" when max_lock_queue processes already wait; SegmentFull and
  // Corrupt as try_acquire.
  LockToken acquire(std::string_view id, std::chrono::milliseconds timeout);
  // Releases the lock and hands it to the first live waiter.
  // Throws: StaleToken if `token` is no longer current, NotFound.
  void release(std::string_view id, LockToken token);
  // Whether another process asked the holder of `token` to release.
  // Throws: StaleToken, NotFound.
  bool release_requested(std::string_view id, LockToken token) const;
  // A counter every release request for a lock this process holds moves
  // (after marking the lock; the watcher sleeps on it): while it stays put,
  // no lock of this process was asked for anew. One atomic load; nullopt
  // (ask the store instead) before this process first acquired a lock, or
  // while the store's newest generation cannot be mapped.
  std::optional<std::uint32_t> release_request_epoch() const noexcept;
  // Reads and commits on behalf of a lock holder: as read/commit, refused
  // with StaleToken unless `token` is the session's current token.
  std::optional<SessionSnapshot> read(std::string_view id, LockToken token,
                                      std::span<const std::string_view> names = {});
  bool read_into(std::string_view id, LockToken token, std::span<const std::string_view> names, SessionSnapshot& out);
  // Catches a copy up in one look (on behalf of the lock holder): false if
  // the session is absent. `out` gets the session's version and incarnation;
  // if they are still `seen`, no attributes. Else every attribute is listed
  // and its value copied (checksum verified) unless the incarnation is
  // `seen`'s and `known` (sorted by name) holds that name at that version:
  // such a value is left empty with value_omitted set. Touches the session
  // when something moved. Throws: StaleToken, Corrupt.
  bool read_moved(std::string_view id, LockToken token, SessionVersion seen, std::span<const KnownAttribute> known,
                  SessionSnapshot& out);
  std::uint64_t commit(std::string_view id, LockToken token, const CommitBatch& batch);
  // Runs `callback(session, token)` on a watcher thread of this process
  // whenever another process asks for a lock this Store holds. Replaces a
  // previous callback; an empty function stops the watcher. The callback may
  // release, read and commit, but not call on_release_request (InvalidArgument).
  // It is called once per grant of a lock. What it throws stays on the
  // watcher thread: StaleToken and NotFound (a lock lost or a session removed
  // meanwhile) quietly, anything else reported once per Store on stderr; the
  // lock stays as the callback left it (held, the request standing, the
  // lease running). A process should hold its locks through one Store per segment: locks
  // belong to the process, and a Store releases what it acquired when it is
  // destroyed.
  void on_release_request(std::function<void(const std::string& session, LockToken token)> callback);
  // Every session whose lock is held or waited for (operators' view).
  std::vector<LockInfo> locks() const;
  // Revokes the lock whoever holds it (the old token stays refused) and
  // hands it to the first waiter. Returns false if it was not held.
  bool force_unlock(std::string_view id);

  // Reads up to `max` change-log entries starting at `from_seq`.
  ChangeBatch read_changes(std::uint64_t from_seq, std::size_t max) const;

  // ---- Replication agent ----
  // One process at a time is a store's agent: it claims the store, publishes
  // its status every few milliseconds, and releases the claim when it stops.
  // The claim belongs to the process (pid + start time), not to this Store
  // object: it ends with release_agent, or when the process dies. Readers
  // (agent_status) never wait for the agent and never see a status half
  // written, even when the agent stalls or dies mid-publish.

  // Makes the calling process this store's agent. Returns false if another
  // live process is the agent (agent_status().pid names it). A claim by a
  // process that died is taken over; a second claim by the same process
  // returns true and changes nothing. A new claim starts from a blank
  // status (state Stopped, every figure 0). Throws: Corrupt, Io (the claim
  // lock is unusable).
  bool claim_agent();
  // Publishes the status. pid, alive and started_unix_ms are filled by the
  // store from the claim (the caller's values are ignored); texts longer
  // than kMaxAgentBackupBytes / kMaxAgentErrorBytes are cut; an
  // updated_unix_ms of 0 is stamped with the current time. No system call,
  // no allocation: meant for the agent's hot path.
  // Throws: InvalidArgument if this process does not hold the claim, or the
  // state is not an AgentState.
  void publish_agent_status(const AgentStatus& status);
  // Gives the claim up: the state becomes Stopped, the other figures stay
  // for inspection, and another process may claim. No-op if this process
  // does not hold the claim.
  void release_agent();
  // The last published status (all zero when no agent ever ran), with
  // `alive` computed now: whether the claim is held and its process runs.
  AgentStatus agent_status() const;
  // The sequence the next change will get (stats().next_change_seq without
  // visiting the shards): one atomic load.
  std::uint64_t next_change_seq() const noexcept;
  // For a follower that has read every change below `seq`: sleeps until a
  // change at `seq` or later is logged, at most `timeout`; true if one is.
  // A commit wakes it at once (a futex wake, paid only while a follower
  // sleeps), so a follower need not poll. May return early (a signal):
  // check the result. Throws nothing. Meant for the store's agent (the one
  // sleeping follower): claim_agent() clears the count a killed one left.
  bool wait_for_change(std::uint64_t seq, std::chrono::microseconds timeout) const;
  // Sessions removed or expired so far (every process; one atomic load).
  // It moves before the removal's change is logged: read next_change_seq
  // first, then this; if it did not move since an earlier look, no removal
  // lies below that sequence.
  std::uint64_t retired_count() const noexcept;
  // Counts one commit of a sync::Client's pending edits that failed (the
  // edits kept or, if they could never be committed, reported dropped):
  // StoreStats::unflushed_edits, `shmctl info`.
  void count_unflushed_edits() noexcept;

  // ---- Crash recovery (shm/recovery.md) ----

  // Verifies the store: the header, every record and blob (magic, bounds,
  // every value's checksum), every chain link and bucket table (bounds,
  // bucket, loops), shard counters, lock and process slots whose
  // owners are dead, the allocator's mutex and free tree, the named-object
  // index. Repairs nothing beyond what any access repairs (a shard whose
  // lock holder died). Throws: Io.
  CheckReport check() const;
  // Runs the recovery by hand: repairs every shard, revokes locks held by
  // dead processes, frees their slots; and when the allocator or the index
  // is poisoned, a record, link, lock state, lock-state reference or
  // lock-state table is damaged, or `rebuild` is
  // true, copies every verified live record (also those a broken link cut
  // off its chain) into a fresh generation of the segment (under the
  // same name and store id) that attached processes move to on their next
  // access. A rebuild revokes every process lock (holders get StaleToken).
  // Throws: SegmentFull (the new generation could not be built; the store
  // is left as it was), Io.
  RecoveryReport recover(bool rebuild = false);

  // Opaque to users; defined in shm/detail/store_impl.hpp.
  struct Impl;

 private:
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace shmsession
