// Store: the primary state of every session, in one named Boost.Interprocess
// shared segment that many processes attach to.
//
// A store holds sessions (id -> attributes, each attribute name -> bytes with
// a version and flags). Every commit is atomic: a reader sees a session's old
// version or its new one, never a mix. Sessions expire after an idle timeout.
// A bounded change log records every creation, commit and removal so that a
// follower (the sync agent) finds what changed without scanning.
//
// This header, shm/session.hpp (the values exchanged) and shm/lock.hpp
// (process locks) are what an application server needs. The other roles
// have their own headers, each a view of a Store or free functions over
// one:
//   shm/change_feed.hpp  ChangeFeed: follow the change log (sync::Client,
//                        the replication agent)
//   shm/agent_seat.hpp   AgentSeat: the replication agent's claim and the
//                        status it publishes
//   shm/replica.hpp      Replica: apply a primary's commits on a standby
//   shm/recovery.hpp     check_store, recover_store (shm/recovery.md)
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

struct CheckReport;     // shm/recovery.hpp
struct RecoveryReport;  // shm/recovery.hpp

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
  std::uint32_t shards = 0;               // power of two, 1..65536
  std::uint32_t change_log_capacity = 0;  // entries, 16..(1<<24)
  // Change lanes (shm/detail/change_ring.hpp): a change is first written
  // to the lane of the CPU it runs on, so that processes committing at
  // once write no common cache line. 0: the CPUs of this machine, as a
  // power of two up to 64. Each lane holds change_log_capacity / lanes
  // entries (16 to 65536) until a follower sequences them into the log.
  std::uint32_t change_lanes = 0;               // power of two, 1..64
  std::uint32_t default_idle_timeout_s = 1800;  // 0: sessions never expire
  // Process locks (see shm/lock.hpp).
  std::uint32_t lock_lease_ms = kDefaultLockLeaseMs;    // 0: no lease; at most kMaxLockLeaseMs
  std::uint32_t max_lock_queue = kDefaultMaxLockQueue;  // waiters per session, 1..1024
};

// A bound on how far the store's replication agent (shmsession-agent) may
// fall behind while applications write, like Redis's min-replicas-max-lag:
// see Store::set_replication_bound. All zero: no bound (the default).
struct ReplicationBound {
  std::uint32_t max_lag_ms = 0;  // 0: off
  std::uint32_t wait_ms = 0;     // how long a write waits for the agent to come within max_lag_ms
  friend bool operator==(const ReplicationBound&, const ReplicationBound&) = default;
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
  // A follower's catch-up (the sync agent's copy of what the backup holds):
  // as read_moved below, without a token and without touching the session.
  // Only the values that moved since `seen` are copied (and verified);
  // every attribute is listed. Returns false if absent.
  bool peek_moved(std::string_view id, SessionVersion seen, std::span<const KnownAttribute> known,
                  SessionSnapshot& out) const;

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

  // Bounds the replication lag. While the agent's lag (the age of its
  // oldest change the backup has not acknowledged, as the agent publishes
  // it every 100 ms; an agent that stopped publishing lags at least since
  // its last status; no agent running counts as an unbounded lag) is above
  // max_lag_ms, or its backlog would take more than half of max_lag_ms to
  // ship at the pace it measured (the margin for a pace that falls while
  // writers run), every application commit, session creation and removal
  // first waits up to wait_ms for it to come down (woken at each status
  // the agent publishes), then fails with Errc::ReplicaBehind, writing
  // nothing. So what a lost primary can lose is bounded by configuration.
  // Writes of a backup daemon (shm/replica.hpp), expiry and locks never
  // wait. StoreStats::bound_waits / bound_refusals count the writes that
  // waited and those refused. Stored in the segment: every process obeys
  // it from its next write. {0, 0} turns it off.
  // Throws: InvalidArgument for a wait without a lag bound.
  void set_replication_bound(const ReplicationBound& bound);
  ReplicationBound replication_bound() const;

  // Counts one commit of a sync::Client's pending edits that failed (the
  // edits kept or, if they could never be committed, reported dropped):
  // StoreStats::unflushed_edits, `shmctl info`. sync::Client calls it; it
  // is the write side of a figure stats() reads, so it lives here. One
  // relaxed atomic add.
  void count_unflushed_edits() noexcept;

  // Opaque to users; defined in shm/detail/store_impl.hpp.
  struct Impl;

 private:
  // The roles beyond the common case reach the attachment directly (each
  // is a view holding the Impl pointer, or a free function): no call
  // through them costs more than the Store method it replaced.
  friend class ChangeFeed;                                          // shm/change_feed.hpp
  friend class AgentSeat;                                           // shm/agent_seat.hpp
  friend class Replica;                                             // shm/replica.hpp
  friend class ResyncDraft;                                         // shm/replica.hpp
  friend CheckReport check_store(const Store& store);               // shm/recovery.hpp
  friend RecoveryReport recover_store(Store& store, bool rebuild);  // shm/recovery.hpp

  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace shmsession
