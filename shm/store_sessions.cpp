// Store session operations. Lock discipline: each operation here holds one
// shard lock at a time, only for bounded work on that shard (find, copy
// out, build from memory already allocated, publish); allocation and
// freeing of segment memory happen outside it, except in the rare fallback
// noted in commit_round. (The rebuild, in recovery.cpp, holds every shard
// lock at once; README.md, "Lock order", has the whole order.)
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <vector>

#include "shm/change_feed.hpp"
#include "shm/detail/agent_block.hpp"
#include "shm/detail/blob.hpp"
#include "shm/detail/change_ring.hpp"
#include "shm/detail/clock.hpp"
#include "shm/detail/futex.hpp"
#include "shm/detail/lock_queue.hpp"
#include "shm/detail/lock_table.hpp"
#include "shm/detail/names.hpp"
#include "shm/detail/session_table.hpp"
#include "shm/detail/store_impl.hpp"
#include "shm/detail/test_hooks.hpp"
#include "shm/replica.hpp"
#include "shm/store.hpp"

namespace shmsession {

using namespace shm::detail;

Error shm::detail::writer_refusal(const Generation& g, Writer writer) {
  const std::uint64_t epoch = g.root->failover.load(std::memory_order_relaxed) >> 1;
  if (writer == Writer::App) {
    const std::uint64_t by = g.root->fenced_by.load(std::memory_order_relaxed);
    return Error(Errc::Fenced, "store '" + g.name + "' is fenced (" +
                                   (by > epoch ? "superseded by epoch " + std::to_string(by)
                                               : "demoted at epoch " + std::to_string(by)) +
                                   "): it takes no commits, creations or removals; write to the store promoted in "
                                   "its place");
  }
  return Error(Errc::Fenced, "store '" + g.name + "' was promoted to a primary (epoch " + std::to_string(epoch) +
                                 "): it applies nothing from the store it followed any more");
}

// ---- the replication bound (Store::set_replication_bound) -----------------

// How far behind the agent is, as a write sees it: the observed lag (the
// age of the oldest change the backup has not acknowledged, or the age of
// the agent's last status if that is older) and the projected one (how
// long the backlog takes to ship at the agent's measured pace).
namespace {
struct BoundView {
  std::uint64_t observed_ms = 0;
  std::uint64_t projected_ms = 0;
};
}  // namespace

static std::string bound_refusal(const Generation& g, std::optional<BoundView> lag, std::uint64_t max_lag,
                                 std::uint64_t wait_ms) {
  const std::string why = !lag ? "no replication agent runs, more than"
                          : lag->observed_ms > max_lag
                              ? "its replication agent lags " + std::to_string(lag->observed_ms) + " ms, more than"
                              : "its replication agent's backlog takes " + std::to_string(lag->projected_ms) +
                                    " ms to ship at the pace it measured, more than half";
  return "store '" + g.name + "': " + why + " the store's bound of " + std::to_string(max_lag) +
         " ms, and did not catch up within " + std::to_string(wait_ms) + " ms; nothing was written";
}

// How long a change made now will wait for the backup: the backlog (the
// changes logged or waiting in the lanes, past what the backup
// acknowledged) over what the agent ships a second. The observed lag is
// the age of the oldest change not yet acknowledged, which writers that
// outrun the agent many times over make grow only after they made a
// backlog far longer than the bound to ship; this holds them as soon as
// the backlog is. 0 while the agent has not measured what it ships, and
// for a backlog of four of the agent's default polls or fewer: writers
// held by a pace measured too low still make a backlog the agent measures
// again (it measures while behind by a quarter of a poll).
constexpr std::uint64_t kProjectedBacklog = 1024;
static std::uint64_t projected_lag_ms(const Generation& g, const AgentLag& agent) {
  if (agent.shipped_per_s == 0) return 0;
  std::uint64_t head = g.root->next_change_seq.load(std::memory_order_relaxed);
  for (std::uint32_t l = 0; l < g.lane_count; ++l) {
    const std::uint64_t lane_head = g.lanes[l].head.load(std::memory_order_relaxed);
    const std::uint64_t cursor = g.lanes[l].cursor.load(std::memory_order_relaxed);
    if (lane_head > cursor) head += lane_head - cursor;
  }
  if (head <= agent.acked_seq + kProjectedBacklog) return 0;
  return (head - agent.acked_seq) * 1000 / agent.shipped_per_s;
}

// Whether a write may go ahead under the bound: the observed lag within
// it, and the projected one within half of it. The pace is a measure of
// the recent past, and it falls while writers run beside the agent (they
// take the CPU it ships with): the half is the margin that keeps a change
// made now within the bound when the pace halves.
static bool within_bound(const BoundView& lag, std::uint64_t max_lag) {
  return lag.observed_ms <= max_lag && lag.projected_ms <= max_lag / 2;
}

// The bound is on: waits (on the futex the agent bumps at each status it
// publishes while a write waits) until the agent's lag is within it, or
// throws ReplicaBehind at the bound's wait.
[[gnu::noinline]] static void await_replication_slow(Store::Impl& impl, std::uint64_t bound) {
  using Steady = std::chrono::steady_clock;
  const std::uint64_t max_lag = bound >> 32;
  const std::uint64_t wait_ms = bound & 0xffffffffu;
  const Steady::time_point deadline = Steady::now() + std::chrono::milliseconds(wait_ms);
  bool waited = false;
  for (;;) {
    Generation& g = impl.gen();
    StoreRoot& root = *g.root;
    const std::uint32_t signal = root.agent_signal.load(std::memory_order_seq_cst);
    const AgentLag agent = read_agent_lag(root.agent);
    std::optional<BoundView> lag;  // none: no agent holds the seat
    if (agent.claimed) {
      const std::uint64_t now = unix_ms();
      lag = BoundView{std::max(agent.lag_ms, now > agent.updated_unix_ms ? now - agent.updated_unix_ms : 0),
                      projected_lag_ms(g, agent)};
    }
    if (lag && within_bound(*lag, max_lag)) {
      if (waited) root.bound_waits.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    const Steady::time_point now = Steady::now();
    if (now >= deadline) {
      root.bound_refusals.fetch_add(1, std::memory_order_relaxed);
      throw Error(Errc::ReplicaBehind, bound_refusal(g, lag, max_lag, wait_ms));
    }
    waited = true;
    // At most one status interval asleep: a publish that came before this
    // write said it waits does not wake it.
    root.bound_waiters.fetch_add(1, std::memory_order_seq_cst);
    futex_wait(root.agent_signal, signal, std::min<Steady::duration>(deadline - now, std::chrono::milliseconds(100)));
    root.bound_waiters.fetch_sub(1, std::memory_order_seq_cst);
  }
}

// Called by every application write before it changes anything: one
// relaxed load while no bound is set.
static void await_replication(Store::Impl& impl) {
  const std::uint64_t bound = impl.gen().root->replication_bound.load(std::memory_order_relaxed);
  if (bound >> 32 != 0) [[unlikely]]
    await_replication_slow(impl, bound);
}

void Store::set_replication_bound(const ReplicationBound& bound) {
  if (bound.max_lag_ms == 0 && bound.wait_ms != 0)
    throw Error(Errc::InvalidArgument, "a replication bound's wait needs a lag bound (max_lag_ms above 0)");
  impl_->run([&](Generation& g) {
    g.root->replication_bound.store(std::uint64_t{bound.max_lag_ms} << 32 | bound.wait_ms, std::memory_order_seq_cst);
    // Writes waiting under the old bound look again.
    g.root->agent_signal.fetch_add(1, std::memory_order_seq_cst);
    futex_wake(g.root->agent_signal, std::numeric_limits<int>::max());
  });
}

ReplicationBound Store::replication_bound() const {
  const std::uint64_t word =
      impl_->run([](Generation& g) { return g.root->replication_bound.load(std::memory_order_relaxed); });
  return ReplicationBound{static_cast<std::uint32_t>(word >> 32), static_cast<std::uint32_t>(word)};
}

namespace {

// Optimistic commits retried this often before building under the lock.
constexpr int kOptimisticAttempts = 8;

// Fencing: a holder's read or commit must present the current token (a
// session with no lock state is not locked: any token is stale).
// Throws: StaleToken; Corrupt for a damaged lock-state reference.
void check_token(Generation& g, Shard& shard, SessionRecord* r, std::optional<LockToken> token, std::string_view id) {
  if (!token) return;
  const LockState* lock = find_lock_state(g, shard, r);
  if (lock != nullptr && lock->token == token->value) return;
  throw Error(Errc::StaleToken, "lock token " + std::to_string(token->value) + " of session '" + std::string(id) +
                                    "' is no longer current (the lock was released, revoked or passed on)");
}

std::uint64_t version_of(const SessionRecord* r) { return r->blob ? r->blob->version : 0; }

// Requires: r's blob, if any, passed blob_fits.
void fill_info(const SessionRecord* r, SessionInfo& info) {
  const BlobHeader* b = r->blob.get();
  info.id.assign(record_id(r));
  info.version = b ? b->version : 0;
  info.incarnation = r->incarnation;
  info.created_unix_ms = std::uint64_t{r->created_unix_s} * 1000;
  info.last_access_unix_ms = to_unix_ms(r->last_access_unix_ms.load(std::memory_order_relaxed));
  info.idle_timeout_s = r->idle_timeout_s;
  info.attribute_count = b ? b->attr_count : 0;
  info.payload_bytes = b ? blob_payload_bytes(b) : 0;
}

// Shard statistics follow a record entering or leaving the table.
// Requires: r's blob, if any, passed blob_fits (or was just built).
void count_record(Shard& shard, const SessionRecord* r, int sign) REQUIRES(shard.mutex) {
  const BlobHeader* b = r->blob.get();
  shard.sessions += sign;
  shard.attributes += sign * static_cast<std::int64_t>(b ? b->attr_count : 0);
  shard.payload_bytes += sign * static_cast<std::int64_t>(b ? blob_payload_bytes(b) : 0);
}

// What a commit saw of a session when it planned the new blob; the plan
// holds if the session still looks exactly like this.
struct Observed {
  SessionRecord* record = nullptr;
  std::uint64_t incarnation = 0;
  BlobHeader* blob = nullptr;
  std::uint64_t blob_seq = 0;

  bool still_current(const SessionRecord* r) const {
    return r == record && r->incarnation == incarnation && r->blob.get() == blob &&
           (blob == nullptr || blob->commit_seq == blob_seq);
  }
};

}  // namespace

// Removes `r` from its table with a change-log entry; the caller frees it
// (and its blob) after unlocking.
static void retire_record(Generation& s, Shard& shard, SessionRecord* r, ChangeKind kind) REQUIRES(shard.mutex) {
  // A blob link that fails its bounds is not followed (counted, freed):
  // the block leaks until a rebuild, which copies only what verifies.
  if (r->blob && !blob_fits(r->blob.get(), s.bounds)) r->blob = nullptr;
  // Before the sequence is taken (both seq_cst): see StoreRoot::retired.
  s.root->retired.fetch_add(1, std::memory_order_seq_cst);
  std::uint64_t seq = s.begin_change(shard, r, kind);
  if (LockState* lock = lock_state_or_null(s, shard, r)) release_all_for_removal(s.lock_context(), *lock);
  drop_lock_state(s, shard, r);
  unlink_record(shard, r);
  count_record(shard, r, -1);
  s.end_change(shard, seq, kind, version_of(r), record_id(r));
}

// Frees a record nobody can reach any more. Its magic is cleared first, so
// that a rebuild looking for records a broken link cut off (recovery.cpp)
// never takes a freed one for a live session.
static void free_record(Generation& s, SessionRecord* r) {
  if (r == nullptr) return;
  s.deallocate(r->blob.get());
  r->magic = 0;
  s.deallocate(r);
}

static void grow(Generation& s, Shard& shard) {
  std::uint64_t buckets;
  {
    ShardGuard guard(s, shard);
    if (!table_wants_growth(shard)) return;
    buckets = shard.table->bucket_count * 2;
  }
  void* mem = s.allocate(bucket_table_bytes(buckets));
  if (mem == nullptr) return;  // a full segment only makes chains longer
  BucketTable* fresh = init_bucket_table(mem, buckets, 0);
  BucketTable* old;
  {
    ShardGuard guard(s, shard);
    old = grow_table(shard, fresh, s.bounds_of(shard));
  }
  s.deallocate(old != nullptr ? static_cast<void*>(old) : fresh);
}

// Grows the table if it is loaded; after the session was published, so
// nothing here may fail the caller: a replaced generation or a poisoned
// allocator only leaves the chains longer (a rebuild sizes them anew).
static void maybe_grow(Generation& s, Shard& shard) noexcept {
  try {
    grow(s, shard);
  } catch (...) {
  }
}

static bool create_session_in(Generation& s, std::string_view id, std::optional<std::uint32_t> idle_timeout_s,
                              Writer writer) {
  std::uint64_t hash = hash_session_id(id);
  Shard& shard = s.shard_for(hash);
  std::uint64_t bytes = sizeof(SessionRecord) + id.size();
  void* mem = s.allocate(bytes);
  if (mem == nullptr) s.throw_full(bytes, "creating a session");
  std::uint64_t now = segment_ms();
  auto* rec = new (mem) SessionRecord{};
  rec->magic = kRecordMagic;
  rec->id_size = static_cast<std::uint16_t>(id.size());
  rec->idle_timeout_s = idle_timeout_s.value_or(s.root->default_idle_timeout_s);
  rec->hash = hash;
  rec->created_unix_s = static_cast<std::uint32_t>(unix_ms() / 1000);  // a date to show; never compared
  rec->last_access_unix_ms.store(now);
  std::copy(id.begin(), id.end(), rec->id());

  SessionRecord* replaced = nullptr;
  bool created = false;
  bool grow = false;
  std::optional<Error> refused;
  {
    ShardGuard guard(s, shard);
    refused = writer_refused(s, writer);
    SessionRecord* existing = refused ? nullptr : find_session(s, shard, id, hash);
    if (!refused && (existing == nullptr || expired(existing, now))) {
      if (existing != nullptr) {
        retire_record(s, shard, existing, ChangeKind::Expired);
        s.root->expirations.fetch_add(1, std::memory_order_relaxed);
        replaced = existing;
      }
      std::uint64_t seq = s.begin_change(shard, rec, ChangeKind::Created);
      rec->incarnation = s.root->next_incarnation.fetch_add(1, std::memory_order_relaxed);
      link_record(shard, rec);
      count_record(shard, rec, +1);
      s.end_change(shard, seq, ChangeKind::Created, 0, id);
      created = true;
      grow = table_wants_growth(shard);
    }
  }
  if (!created) {
    rec->magic = 0;  // as free_record: never a record once freed
    s.deallocate(mem);
  }
  // (The record `mem` leaks if the guard above found the generation
  // replaced: it belongs to the old segment, which nobody allocates from.)
  free_record(s, replaced);
  if (refused) throw *refused;
  if (grow) maybe_grow(s, shard);
  return created;
}

static bool create_session_of(Store::Impl& impl, std::string_view id, std::optional<std::uint32_t> idle_timeout_s,
                              Writer writer) {
  validate_session_id(id);
  if (writer == Writer::App) await_replication(impl);
  const bool created = impl.run([&](Generation& s) { return create_session_in(s, id, idle_timeout_s, writer); });
  finish_changes(impl.current_or_mapped());
  return created;
}

bool Store::create_session(std::string_view id, std::optional<std::uint32_t> idle_timeout_s) {
  return create_session_of(*impl_, id, idle_timeout_s, Writer::App);
}

// Throws Corrupt if r's blob link leaves the segment: what reading the
// blob's version needs before anything else of it is trusted.
static void check_blob_link(const Generation& s, const SessionRecord* r, std::string_view id) {
  if (r->blob && !s.bounds.holds(r->blob.get()))
    throw Error(Errc::Corrupt, "session '" + std::string(id) +
                                   "' is damaged in the segment (its blob link leaves the segment); "
                                   "run 'shmctl check'");
}

// What a caller's copy holds already (Store::read_moved).
struct CopyHeld {
  SessionVersion seen;
  std::span<const KnownAttribute> known;
};

// Copies a session out under its shard lock; `touch` refreshes its last
// access. With `held`: nothing if the session is still at held->seen, and
// only the values the copy lacks.
static bool copy_session(Generation& s, std::string_view id, std::span<const std::string_view> names, bool touch,
                         std::optional<LockToken> token, SessionSnapshot& out, const CopyHeld* held = nullptr) {
  std::uint64_t now = segment_ms();
  LockedSession locked(s, id, now);
  SessionRecord* r = locked.record();
  if (r == nullptr) return false;
  check_token(s, locked.shard(), r, token, id);
  const BlobHeader* b = r->blob.get();
  if (held != nullptr) {
    check_blob_link(s, r, id);
    if (SessionVersion{version_of(r), r->incarnation} == held->seen) {
      out.id.assign(id);
      out.version = held->seen.version;
      out.incarnation = held->seen.incarnation;
      out.attributes.clear();
      return true;
    }
  }
  if (touch) r->last_access_unix_ms.store(now, std::memory_order_relaxed);
  const bool same_incarnation = held != nullptr && held->seen.incarnation == r->incarnation;
  copy_attributes(b, s.bounds, id, names, out.attributes,
                  same_incarnation ? held->known : std::span<const KnownAttribute>());  // verifies b first
  out.id.assign(id);
  out.version = b ? b->version : 0;
  out.incarnation = r->incarnation;
  out.created_unix_ms = std::uint64_t{r->created_unix_s} * 1000;
  out.last_access_unix_ms = to_unix_ms(r->last_access_unix_ms.load(std::memory_order_relaxed));
  out.idle_timeout_s = r->idle_timeout_s;
  return true;
}

bool Store::read_into(std::string_view id, std::span<const std::string_view> names, SessionSnapshot& out) {
  return impl_->run([&](Generation& g) { return copy_session(g, id, names, true, std::nullopt, out); });
}

std::optional<SessionSnapshot> Store::read(std::string_view id, std::span<const std::string_view> names) {
  SessionSnapshot snap;
  if (!impl_->run([&](Generation& g) { return copy_session(g, id, names, true, std::nullopt, snap); }))
    return std::nullopt;
  return snap;
}

std::optional<SessionSnapshot> Store::peek(std::string_view id, std::span<const std::string_view> names) const {
  SessionSnapshot snap;
  if (!impl_->run([&](Generation& g) { return copy_session(g, id, names, false, std::nullopt, snap); }))
    return std::nullopt;
  return snap;
}

bool Store::peek_moved(std::string_view id, SessionVersion seen, std::span<const KnownAttribute> known,
                       SessionSnapshot& out) const {
  const CopyHeld held{seen, known};
  return impl_->run([&](Generation& g) { return copy_session(g, id, {}, false, std::nullopt, out, &held); });
}

static std::optional<SessionVersion> version_of_session(Store::Impl& impl, std::string_view id) {
  return impl.run([&](Generation& g) -> std::optional<SessionVersion> {
    LockedSession locked(g, id, segment_ms());
    SessionRecord* r = locked.record();
    if (r == nullptr) return std::nullopt;
    check_blob_link(g, r, id);
    return SessionVersion{version_of(r), r->incarnation};
  });
}

std::optional<SessionVersion> Store::version(std::string_view id) const { return version_of_session(*impl_, id); }

std::optional<SessionInfo> Store::describe(std::string_view id) const {
  return impl_->run([&](Generation& g) -> std::optional<SessionInfo> {
    LockedSession locked(g, id, segment_ms());
    SessionRecord* r = locked.record();
    if (r == nullptr) return std::nullopt;
    const BlobHeader* b = r->blob.get();
    if (b != nullptr && !blob_fits(b, g.bounds))
      throw Error(Errc::Corrupt, "session '" + std::string(id) +
                                     "' is damaged in the segment (its attribute table fails its bounds); "
                                     "run 'shmctl check'");
    SessionInfo info;
    fill_info(r, info);
    if (b != nullptr) {
      const AttributeEntry* entries = blob_entries(b);
      for (std::uint32_t i = 0; i < b->attr_count; ++i)
        info.attributes.push_back(
            {std::string(entry_name(b, entries[i])), entries[i].version, entries[i].value_size, entries[i].flags});
    }
    return info;
  });
}

// Which of a shard's spares a commit running here takes and leaves
// (Shard::spares): the CPU's, so the blob it writes was last read here.
static unsigned spare_slot_here() noexcept {
  const int cpu = ::sched_getcpu();
  return cpu < 0 ? 0 : static_cast<unsigned>(cpu) % kShardSpares;
}

// Whether a blob of `capacity` bytes takes a commit of `size` bytes
// without wasting more than half of it.
static bool spare_fits(std::uint64_t capacity, std::uint64_t size) noexcept {
  return capacity >= size && capacity <= 2 * size + 64;
}

// The shard's spare blob of `slot` if the plan fits in it without wasting
// more than half of it; the caller then needs no allocation. Shard lock held.
static void* take_spare(Generation& s, Shard& shard, unsigned slot, std::uint64_t size, std::uint64_t& capacity)
    REQUIRES(shard.mutex) {
  BlobHeader* spare = shard.spares[slot].get();
  if (spare == nullptr) return nullptr;
  if (!s.bounds.holds(spare, sizeof(BlobHeader))) {  // a damaged link: leak the block (check reports it)
    shard.spares[slot] = nullptr;
    return nullptr;
  }
  // The header's capacity, but never more than the allocator's block: a
  // capacity a stray write raised must not let a commit write past it.
  // (The header's field is 32-bit: build_blob records at most 4 GiB - 1.)
  const std::uint64_t usable =
      std::min<std::uint64_t>(std::min<std::uint64_t>(spare->capacity, s.segment.get_segment_manager()->size(spare)),
                              std::numeric_limits<std::uint32_t>::max());
  if (!spare_fits(usable, size)) return nullptr;
  shard.spares[slot] = nullptr;
  capacity = usable;
  return spare;
}

// Keeps a built blob nobody references any more as the shard's spare of
// `slot` if that is free, or instead of a spare that did not fit this
// commit's `size` when the blob is larger (or the spare too large);
// returns what the caller must free after unlocking. The sessions of a
// shard differ in size: a spare too small for the next commit is not
// taken, and keeping it while larger blobs were freed made most commits of
// a steady workload allocate (and free) a block. Blobs built in a spare
// keep its capacity, so the spare grows to fit the shard's sessions,
// within take_spare's bound on waste.
// Requires: `blob`'s header was written by build_blob (its capacity is the
// bytes really allocated: take_spare trusts it). Shard lock held.
static void* keep_as_spare(const Generation& s, Shard& shard, unsigned slot, BlobHeader* blob, std::uint64_t size)
    REQUIRES(shard.mutex) {
  if (blob == nullptr) return nullptr;
  BlobHeader* spare = shard.spares[slot].get();
  if (spare == nullptr) {
    shard.spares[slot] = blob;
    return nullptr;
  }
  // A damaged link stays for take_spare to drop (and check to report).
  if (!s.bounds.holds(spare, sizeof(BlobHeader)) || spare_fits(spare->capacity, size)) return blob;
  if (blob->capacity <= spare->capacity && spare->capacity <= 2 * size + 64) return blob;
  shard.spares[slot] = blob;
  return spare;
}

// Keeps a block that was allocated for a commit and never built (the
// session moved while it was allocated) as a spare: memory from the
// allocator is raw, whatever an earlier blob left there, so its header is
// written first. Shard lock held; returns what the caller must free.
static void* keep_raw_as_spare(const Generation& s, Shard& shard, unsigned slot, void* mem, std::uint64_t allocated)
    REQUIRES(shard.mutex) {
  if (shard.spares[slot]) return mem;
  auto* b = new (mem) BlobHeader{};
  b->capacity = static_cast<std::uint32_t>(allocated);  // a plan's size: < 4 GiB
  return keep_as_spare(s, shard, slot, b, allocated);
}

// Builds and publishes the next version into `mem` (shard lock held). The
// blob it replaces becomes the spare or lands in `to_free`.
static std::uint64_t publish(Generation& s, Shard& shard, unsigned spare_slot, SessionRecord* r, const MergePlan& plan,
                             const PreparedBatch& batch, void* mem, std::uint64_t capacity, std::uint64_t now,
                             std::uint64_t version, void*& to_free) REQUIRES(shard.mutex) {
  BlobHeader* old = r->blob.get();
  std::uint64_t seq = s.begin_change(shard, r, ChangeKind::Committed);
  build_blob(mem, capacity, plan, old, batch, version, seq);
  run_test_hook(HookPoint::kCommitBeforePublish);
  count_record(shard, r, -1);
  r->blob = static_cast<BlobHeader*>(mem);  // the publishing store
  count_record(shard, r, +1);
  ++shard.commits;
  r->last_access_unix_ms.store(now, std::memory_order_relaxed);
  run_test_hook(HookPoint::kCommitAfterPublish);
  s.end_change(shard, seq, ChangeKind::Committed, version, record_id(r));
  run_test_hook(HookPoint::kCommitLogged);
  to_free = keep_as_spare(s, shard, spare_slot, old, plan.size);
  return version;
}

// One round of a commit. The common case publishes in one critical section
// (into the shard's spare blob). Otherwise it plans under the lock,
// allocates outside it, and publishes under the lock if the session did
// not move meanwhile; nullopt asks the caller for another round.
struct CommitRound {
  std::optional<std::uint64_t> version;  // set once published (or unchanged)
  bool conflict = false;                 // expected version did not match
};

// What a commit requires of the session and which version it makes.
struct CommitRules {
  std::optional<std::uint64_t> expected;  // the session must be at this version
  std::optional<LockToken> token;         // the session's lock token must be this one
  std::optional<std::uint64_t> version;   // the new version (a replica's), else current + 1
};

// The version the commit makes. Throws: InvalidArgument for a replica
// version that is not newer than the session's.
static std::uint64_t next_version(const SessionRecord* r, const CommitRules& rules, std::string_view id) {
  std::uint64_t current = version_of(r);
  if (!rules.version) return current + 1;
  if (*rules.version <= current)
    throw Error(Errc::InvalidArgument, "replicated version " + std::to_string(*rules.version) + " of session '" +
                                           std::string(id) + "' is not newer than its version " +
                                           std::to_string(current));
  return *rules.version;
}

static CommitRound commit_round(Generation& s, Shard& shard, std::string_view id, std::uint64_t hash,
                                const PreparedBatch& prepared, const CommitRules& rules, bool allocate_under_lock) {
  const std::optional<std::uint64_t>& expected = rules.expected;
  const std::optional<LockToken>& token = rules.token;
  const Writer writer = rules.version ? Writer::Replica : Writer::App;  // a replica's commit names its version
  std::uint64_t now = segment_ms();
  MergePlan plan;
  Observed seen;
  void* to_free = nullptr;
  CommitRound round;
  const unsigned spare_slot = spare_slot_here();
  {
    ShardGuard guard(s, shard);
    check_writer(s, writer);
    SessionRecord* r = find_session(s, shard, id, hash);
    if (r == nullptr || expired(r, now))
      throw Error(Errc::NotFound, "session '" + std::string(id) + "' does not exist");
    check_token(s, shard, r, token, id);
    if (r->blob && !blob_fits(r->blob.get(), s.bounds))  // plan_merge follows its entries
      throw Error(Errc::Corrupt, "session '" + std::string(id) +
                                     "' is damaged in the segment (its attribute table fails its bounds); "
                                     "run 'shmctl check'");
    if (expected && version_of(r) != *expected) return CommitRound{std::nullopt, true};
    plan = plan_merge(r->blob.get(), prepared);
    if (!plan.changes && !rules.version) {
      r->last_access_unix_ms.store(now, std::memory_order_relaxed);
      return CommitRound{version_of(r), false};
    }
    const std::uint64_t version = next_version(r, rules, id);
    std::uint64_t capacity = plan.size;
    void* mem = take_spare(s, shard, spare_slot, plan.size, capacity);
    if (mem == nullptr && allocate_under_lock) {  // contended beyond reason: cannot be overtaken now
      mem = s.allocate(plan.size);
      if (mem == nullptr) s.throw_full(plan.size, "this commit");
    }
    if (mem != nullptr) {
      round.version = publish(s, shard, spare_slot, r, plan, prepared, mem, capacity, now, version, to_free);
    } else {
      seen = {r, r->incarnation, r->blob.get(), r->blob ? r->blob->commit_seq : 0};
    }
  }
  if (!round.version) {
    void* mem = s.allocate(plan.size);
    if (mem == nullptr) s.throw_full(plan.size, "this commit");
    run_test_hook(HookPoint::kCommitAllocated);
    std::optional<Error> refused;  // fenced or promoted since the plan, or damage met
    {
      ShardGuard guard(s, shard);
      SessionRecord* r = nullptr;
      try {
        check_writer(s, writer);
        r = find_session(s, shard, id, hash);
      } catch (const Error& e) {
        refused = e;  // the block is kept or freed below, after the lock
      }
      // A token revoked meanwhile fails the plan too; the next round refuses it.
      const LockState* lock = r != nullptr && token ? lock_state_or_null(s, shard, r) : nullptr;
      if (r != nullptr && seen.still_current(r) && (!token || (lock != nullptr && lock->token == token->value))) {
        // Same blob as planned, so the same version to build on.
        round.version =
            publish(s, shard, spare_slot, r, plan, prepared, mem, plan.size, now, next_version(r, rules, id), to_free);
      } else {
        to_free = keep_raw_as_spare(s, shard, spare_slot, mem, plan.size);
      }
    }
    if (refused) {
      s.deallocate(to_free);
      throw *refused;
    }
  }
  s.deallocate(to_free);
  return round;
}

static std::optional<std::uint64_t> commit_impl(Store::Impl& impl, std::string_view id, const CommitRules& rules,
                                                const CommitBatch& batch) {
  validate_session_id(id);
  if (!rules.version) await_replication(impl);  // an application's commit (a replica's names its version)
  PreparedBatch prepared = prepare_batch(batch);
  std::uint64_t hash = hash_session_id(id);
  const std::optional<std::uint64_t> version = impl.run([&](Generation& s) -> std::optional<std::uint64_t> {
    Shard& shard = s.shard_for(hash);
    for (int attempt = 0;; ++attempt) {
      CommitRound round = commit_round(s, shard, id, hash, prepared, rules, attempt >= kOptimisticAttempts);
      if (round.conflict) return std::nullopt;
      if (round.version) return round.version;
    }
  });
  finish_changes(impl.current_or_mapped());
  return version;
}

std::uint64_t Store::commit(std::string_view id, const CommitBatch& batch) {
  return *commit_impl(*impl_, id, {}, batch);
}

std::optional<std::uint64_t> Store::commit_if_version(std::string_view id, std::uint64_t expected_version,
                                                      const CommitBatch& batch) {
  return commit_impl(*impl_, id, {expected_version, std::nullopt, std::nullopt}, batch);
}

// Replica::apply (shm/replica.hpp) lives here, beside the commit whose
// rules it shares; the rest of Replica is in shm/replica.cpp.
std::optional<std::uint64_t> Replica::apply(std::string_view id, std::optional<std::uint64_t> expected_base,
                                            std::uint64_t new_version, const CommitBatch& batch,
                                            std::optional<std::uint32_t> idle_timeout_s) {
  if (!version_of_session(*impl_, id)) {
    if (expected_base && *expected_base != 0) return std::nullopt;  // the standby lacks the base
    create_session_of(*impl_, id, idle_timeout_s, Writer::Replica);
    if (new_version == 0 && batch.empty()) return 0;  // created on the primary, nothing committed yet
  }
  return commit_impl(*impl_, id, {expected_base, std::nullopt, new_version}, batch);
}

std::uint64_t Store::commit(std::string_view id, LockToken token, const CommitBatch& batch) {
  return *commit_impl(*impl_, id, {std::nullopt, token, std::nullopt}, batch);
}

std::optional<SessionSnapshot> Store::read(std::string_view id, LockToken token,
                                           std::span<const std::string_view> names) {
  SessionSnapshot snap;
  if (!impl_->run([&](Generation& g) { return copy_session(g, id, names, true, token, snap); })) return std::nullopt;
  return snap;
}

bool Store::read_into(std::string_view id, LockToken token, std::span<const std::string_view> names,
                      SessionSnapshot& out) {
  return impl_->run([&](Generation& g) { return copy_session(g, id, names, true, token, out); });
}

bool Store::read_moved(std::string_view id, LockToken token, SessionVersion seen, std::span<const KnownAttribute> known,
                       SessionSnapshot& out) {
  const CopyHeld held{seen, known};
  return impl_->run([&](Generation& g) { return copy_session(g, id, {}, true, token, out, &held); });
}

static bool remove_session_of(Store::Impl& impl, std::string_view id, Writer writer) {
  validate_session_id(id);
  if (writer == Writer::App) await_replication(impl);
  std::uint64_t hash = hash_session_id(id);
  const bool removed = impl.run([&](Generation& s) {
    Shard& shard = s.shard_for(hash);
    SessionRecord* r;
    bool live;
    {
      ShardGuard guard(s, shard);
      check_writer(s, writer);
      r = find_session(s, shard, id, hash);
      if (r == nullptr) return false;
      live = !expired(r, segment_ms());
      retire_record(s, shard, r, live ? ChangeKind::Removed : ChangeKind::Expired);
    }
    free_record(s, r);
    return live;
  });
  finish_changes(impl.current_or_mapped());
  return removed;
}

bool Store::remove_session(std::string_view id) { return remove_session_of(*impl_, id, Writer::App); }

bool Replica::remove(std::string_view id) { return remove_session_of(*impl_, id, Writer::Replica); }

bool Store::touch(std::string_view id) {
  return impl_->run([&](Generation& g) {
    std::uint64_t now = segment_ms();
    LockedSession locked(g, id, now);
    SessionRecord* r = locked.record();
    if (r == nullptr) return false;
    r->last_access_unix_ms.store(now, std::memory_order_relaxed);
    return true;
  });
}

// Retires every record of every shard that `select` picks; returns how many.
// `writer`: checked in every shard (an expiry sweep checks none).
template <typename Select>
static void sweep_from(Generation& s, ChangeKind kind, Select& select, std::optional<Writer> writer,
                       std::uint32_t& next_shard, std::uint64_t& total) {
  std::vector<SessionRecord*> doomed;
  for (; next_shard < s.root->shard_count; ++next_shard) {
    Shard& shard = s.shards[next_shard];
    doomed.clear();
    {
      ShardGuard guard(s, shard);
      if (writer) check_writer(s, *writer);
      for_each_record(shard, s.bounds_of(shard), [&](SessionRecord* r) {
        if (select(r)) doomed.push_back(r);
      });
      for (SessionRecord* r : doomed) retire_record(s, shard, r, kind);
    }
    for (SessionRecord* r : doomed) free_record(s, r);
    total += doomed.size();
    finish_changes(s);
  }
}

// A rebuild keeps the shard count, so after a move the sweep goes on from
// the shard it had reached (the shards already swept were copied swept).
template <typename Select>
static std::uint64_t sweep(Store::Impl& impl, ChangeKind kind, std::optional<Writer> writer, Select&& select) {
  std::uint64_t total = 0;
  std::uint32_t next_shard = 0;
  impl.run([&](Generation& s) { sweep_from(s, kind, select, writer, next_shard, total); });
  return total;
}

std::uint64_t Store::remove_all_sessions() {
  return sweep(*impl_, ChangeKind::Removed, Writer::App, [](const SessionRecord*) { return true; });
}

std::uint64_t Store::expire() {
  std::uint64_t now = segment_ms();
  std::uint64_t n =
      sweep(*impl_, ChangeKind::Expired, std::nullopt, [now](const SessionRecord* r) { return expired(r, now); });
  impl_->gen().root->expirations.fetch_add(n, std::memory_order_relaxed);
  return n;
}

void Store::for_each_session(const std::function<bool(const SessionInfo&)>& visit) const {
  std::vector<SessionInfo> batch;
  std::uint32_t next_shard = 0;  // after a move, go on from here (a rebuild keeps the shards)
  impl_->run([&](Generation& s) {
    for (; next_shard < s.root->shard_count; ++next_shard) {
      Shard& shard = s.shards[next_shard];
      batch.clear();
      {
        ShardGuard guard(s, shard);
        std::uint64_t now = segment_ms();
        for_each_record(shard, s.bounds_of(shard), [&](SessionRecord* r) {
          // A damaged blob (its link or its attribute table) leaves the
          // record out (check reports it): its payload is summed over the table.
          if (expired(r, now) || (r->blob && !blob_fits(r->blob.get(), s.bounds))) return;
          fill_info(r, batch.emplace_back());
        });
      }
      for (const SessionInfo& info : batch)
        if (!visit(info)) {
          next_shard = s.root->shard_count;
          return;
        }
    }
  });
}

void Store::count_unflushed_edits() noexcept {
  impl_->current_or_mapped().root->unflushed_edits.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace shmsession
