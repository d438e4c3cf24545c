// Crash recovery (shm/recovery.md): moving between generations, the
// rebuild of a store into a fresh generation, check_store and
// recover_store (shm/recovery.hpp).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include "shm/detail/blob.hpp"
#include "shm/detail/change_ring.hpp"
#include "shm/detail/clock.hpp"
#include "shm/detail/futex.hpp"
#include "shm/detail/lock_queue.hpp"
#include "shm/detail/lock_table.hpp"
#include "shm/detail/process_identity.hpp"
#include "shm/detail/segment_file.hpp"
#include "shm/detail/session_table.hpp"
#include "shm/detail/store_impl.hpp"
#include "shm/detail/test_hooks.hpp"
#include "shm/recovery.hpp"
#include "shm/replica.hpp"

namespace shmsession {

using namespace shm::detail;

namespace {

constexpr std::size_t kListedIds = 16;  // ids a report names

// The private name a rebuild builds under; '~' is not allowed in store
// names, so it never meets a user's store.
std::string rebuild_name(const std::string& name) { return name + "~rebuild"; }

bool same_store(const Generation& a, const Generation& b) {
  return std::memcmp(a.header->store_id, b.header->store_id, sizeof a.header->store_id) == 0;
}

// Marks `g` replaced and wakes everyone asleep on one of its futex words,
// so they notice: the agent on the change log, waiters for a lock, the
// release-request watchers. Every shard lock of `g` is held by the caller,
// or was held by a rebuilder that died (no one else is inside).
void mark_moved(Generation& g) noexcept {
  StoreRoot& root = *g.root;
  for (std::uint32_t i = 0; i < root.shard_count; ++i) g.shards[i].moved.store(1, std::memory_order_release);
  root.moved.store(1, std::memory_order_release);
  root.change_signal.fetch_add(1, std::memory_order_seq_cst);
  futex_wake(root.change_signal, std::numeric_limits<int>::max());
  WaiterSlot* waiters = root.waiters.get();
  for (std::uint32_t i = 0; i < root.waiter_capacity; ++i)
    if (slot_in_use(waiters[i].state.load(std::memory_order_relaxed))) futex_wake(waiters[i].outcome, 1);
  ProcessSlot* processes = root.processes.get();
  for (std::uint32_t i = 0; i < root.process_capacity; ++i) {
    if (!slot_in_use(processes[i].state.load(std::memory_order_relaxed))) continue;
    processes[i].requests.fetch_add(1, std::memory_order_release);
    futex_wake(processes[i].requests, std::numeric_limits<int>::max());
  }
}

// A record and its blob as a rebuild or a check finds them: sound when
// the record fits in the segment with its magic, its id and hash agree and
// the blob passes blob_is_sound (bounds and every value's checksum).
bool record_is_sound(const SessionRecord* r, const SegmentBounds& bounds) noexcept {
  if (!record_fits(r, bounds)) return false;
  if (hash_session_id(record_id(r)) != r->hash) return false;
  const BlobHeader* b = r->blob.get();
  return b == nullptr || blob_is_sound(b, bounds);
}

// The allocator's bytes for a block of ours; 0 for a pointer a damaged
// link made up (its block header would be outside the segment).
std::uint64_t block_bytes(Generation& g, const void* p) {
  if (!g.bounds.holds(static_cast<const char*>(p) - 16, 16, 8)) return 0;
  return g.segment.get_segment_manager()->size(p) + g.root->block_overhead;
}

// Whether a record's lock state can be followed: its queue's waiter slots
// and holder's process slot in range, the queue no longer than the slots.
bool lock_state_fits(const LockContext& c, const LockState& lock) noexcept {
  const std::uint32_t cap = c.root->waiter_capacity;
  if (lock.queue_tail > cap || lock.holder_process > c.root->process_capacity) return false;
  std::uint32_t n = 0;
  for (std::uint32_t w = lock.queue_head; w != 0; w = c.waiters[w - 1].next)
    if (w > cap || ++n > cap) return false;
  return true;
}

// The name a report gives a damaged record, when its id can be read.
void name_damaged(const SessionRecord* r, const SegmentBounds& bounds, std::vector<std::string>& ids) {
  if (ids.size() < kListedIds && record_fits(r, bounds)) ids.emplace_back(record_id(r));
}

// The sound records of a generation that a rebuild keeps, by shard.
struct KeptRecords {
  std::vector<std::vector<const SessionRecord*>> by_shard;
  std::unordered_set<const SessionRecord*> chained;  // every record reached through a chain
  bool damage_seen = false;  // a cut chain, a loop, a bad table, an unsound record or a miscount
};

// Walks every shard of `from` (every shard lock held) and keeps its sound
// records; records that fail verification are dropped and named. (The
// caller holds every shard lock through a vector of guards, which the
// thread-safety analysis cannot follow.)
void collect_chained(Generation& from, KeptRecords& kept, RecoveryReport& report) NO_THREAD_SAFETY_ANALYSIS {
  kept.by_shard.assign(from.root->shard_count, {});
  for (std::uint32_t i = 0; i < from.root->shard_count; ++i) {
    Shard& src = from.shards[i];
    std::uint64_t walked = 0;
    const ChainDamage damage = for_each_record(src, from.bounds_of(src), [&](SessionRecord* r) {
      ++walked;
      if (!kept.chained.insert(r).second) {  // reached twice: a damaged link joined two chains
        kept.damage_seen = true;
        return;
      }
      if (!record_is_sound(r, from.bounds)) {
        ++report.sessions_dropped;
        name_damaged(r, from.bounds, report.dropped_ids);
        kept.damage_seen = true;
        return;
      }
      kept.by_shard[i].push_back(r);
    });
    if (damage.total() != 0 || walked != src.sessions) kept.damage_seen = true;
  }
}

// Sound records found outside every chain: what a broken link cut off.
// Looked for only when the walk saw damage, by scanning the segment's
// pages that hold data (holes are skipped, so a sparse segment is not
// made resident) for the record magic at every aligned offset. A candidate
// is kept only if it verifies as a record (magic, bounds, id hash, blob
// checksums), was published (incarnation set under the lock; a record a
// killed creator never linked has none) and does not lie inside a value
// of a kept session (a value may hold any bytes). Records are freed with
// their magic cleared (store_sessions.cpp, free_record), so a removed
// session is not brought back. Of two records of one id, the newer
// incarnation wins.
void collect_unlinked(Generation& from, KeptRecords& kept, RecoveryReport& report) {
  std::vector<std::pair<std::uintptr_t, std::uintptr_t>> values;  // kept blobs' byte ranges
  std::unordered_map<std::string_view, const SessionRecord*> by_id;
  for (auto& shard : kept.by_shard)
    for (const SessionRecord* r : shard) {
      by_id.emplace(record_id(r), r);
      if (const BlobHeader* b = r->blob.get())
        values.emplace_back(reinterpret_cast<std::uintptr_t>(b), reinterpret_cast<std::uintptr_t>(b) + b->size);
    }
  std::sort(values.begin(), values.end());
  auto inside_a_value = [&](std::uintptr_t a) {
    auto it = std::upper_bound(values.begin(), values.end(), std::make_pair(a, ~std::uintptr_t{0}));
    return it != values.begin() && a < std::prev(it)->second;
  };
  std::vector<const SessionRecord*> found;
  auto scan = [&](std::uintptr_t from_addr, std::uintptr_t to_addr) {
    constexpr std::uintptr_t step = alignof(SessionRecord);
    for (std::uintptr_t a = (from_addr + step - 1) & ~(step - 1); a + sizeof(SessionRecord) <= to_addr; a += step) {
      // A scan of raw segment memory by address, for records no link reaches.
      if (*reinterpret_cast<const std::uint32_t*>(a) != kRecordMagic) continue;  // NOLINT(performance-no-int-to-ptr)
      const auto* r = reinterpret_cast<const SessionRecord*>(a);                 // NOLINT(performance-no-int-to-ptr)
      if (kept.chained.count(r) != 0 || r->incarnation == 0 || inside_a_value(a)) continue;
      if (!record_is_sound(r, from.bounds)) continue;
      found.push_back(r);
    }
  };
  const SegmentBounds& bounds = from.bounds;
  const long page = ::sysconf(_SC_PAGESIZE);
  const std::uintptr_t map_base = bounds.begin & ~static_cast<std::uintptr_t>(page - 1);
  const int fd = ::open(segment_path(from.name).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    scan(bounds.begin, bounds.end);
  } else {
    off_t at = 0;
    const off_t file_end = static_cast<off_t>(bounds.end - map_base);
    while (at < file_end) {
      const off_t data = ::lseek(fd, at, SEEK_DATA);
      if (data < 0) break;
      off_t hole = ::lseek(fd, data, SEEK_HOLE);
      if (hole < 0) hole = file_end;
      scan(std::max<std::uintptr_t>(map_base + data, bounds.begin),
           std::min<std::uintptr_t>(map_base + hole, bounds.end));
      at = hole;
    }
    ::close(fd);
  }
  for (const SessionRecord* r : found) {
    auto [it, fresh] = by_id.emplace(record_id(r), r);
    if (!fresh) {
      if (it->second->incarnation >= r->incarnation) continue;
      // The newer one wins; the one it replaces leaves its shard's list.
      auto& list = kept.by_shard[(it->second->hash >> 32) & from.shard_mask];
      list.erase(std::remove(list.begin(), list.end(), it->second), list.end());
      it->second = r;
    }
    kept.by_shard[(r->hash >> 32) & from.shard_mask].push_back(r);
    ++report.sessions_relinked;
  }
}

// Copies the kept records of `from` into the fresh generation `to`; the
// copies have no lock state (locks are not carried, copy_root says why).
// The new generation is private to this rebuilder until it is published:
// its shard fields are written without its shard locks.
void copy_records(Generation& from, const KeptRecords& kept, Generation& to,
                  RecoveryReport& report) NO_THREAD_SAFETY_ANALYSIS {
  for (std::uint32_t i = 0; i < to.root->shard_count; ++i) {
    const std::vector<const SessionRecord*>& records = kept.by_shard[i];
    Shard& dst = to.shards[i];
    std::uint64_t buckets = kInitialBuckets;
    while (buckets < records.size()) buckets *= 2;
    if (buckets != kInitialBuckets) {
      void* mem = to.allocate(bucket_table_bytes(buckets));
      if (mem == nullptr) to.throw_full(bucket_table_bytes(buckets), "rebuilding the store");
      to.deallocate(dst.table.get());
      dst.table = init_bucket_table(mem, buckets, 0);
    }
    for (const SessionRecord* r : records) {
      const LockState* lock = lock_state_or_null(from, from.shard_for(r->hash), r);
      if (lock != nullptr && lock->token != 0) ++report.locks_revoked;
      const std::uint64_t record_bytes = sizeof(SessionRecord) + r->id_size;
      void* rec_mem = to.allocate(record_bytes);
      if (rec_mem == nullptr) to.throw_full(record_bytes, "rebuilding the store");
      auto* copy = new (rec_mem) SessionRecord{};
      copy->magic = kRecordMagic;
      copy->id_size = r->id_size;
      copy->idle_timeout_s = r->idle_timeout_s;
      copy->hash = r->hash;
      copy->incarnation = r->incarnation;
      copy->created_unix_s = r->created_unix_s;
      copy->last_access_unix_ms.store(r->last_access_unix_ms.load(std::memory_order_relaxed));
      std::memcpy(copy->id(), r->id(), r->id_size);
      if (const BlobHeader* b = r->blob.get()) {
        void* blob_mem = to.allocate(b->size);
        if (blob_mem == nullptr) to.throw_full(b->size, "rebuilding the store");
        std::memcpy(blob_mem, b, b->size);
        auto* blob = static_cast<BlobHeader*>(blob_mem);
        blob->capacity = b->size;
        copy->blob = blob;
        dst.attributes += b->attr_count;
        dst.payload_bytes += blob_payload_bytes(b);  // sound: blob_fits held
      }
      link_record(dst, copy);
      ++dst.sessions;
      ++report.sessions_copied;
    }
  }
}

void copy_store_state(StoreRoot& a, StoreRoot& b);

// The store-wide state a rebuild carries over: counters, the change log
// (so a follower goes on at the same sequence), the replica position, the
// agent's claim and status. Tokens keep growing from where they were; no
// lock is carried (every holder's token is stale in the new generation).
// The commit count is the old root's plus every old shard's (the caller
// holds every shard lock, which the thread-safety analysis cannot follow).
void copy_root(Generation& from, Generation& to, std::uint64_t locks_revoked) NO_THREAD_SAFETY_ANALYSIS {
  StoreRoot& a = *from.root;
  StoreRoot& b = *to.root;
  // The lanes were sequenced into the log (the caller holds the
  // sequencer's lock): the new lanes start where these stopped, empty.
  sequence_changes_locked(from);
  b.next_change_seq.store(a.next_change_seq.load());
  for (std::uint32_t l = 0; l < std::min(a.lane_count, b.lane_count); ++l) {
    const std::uint64_t head = std::min(from.lanes[l].head.load(), kMaxLanePosition);
    to.lanes[l].head.store(head);
    to.lanes[l].cursor.store(head);
  }
  b.next_incarnation.store(a.next_incarnation.load());
  std::uint64_t commits = a.commits.load();
  for (std::uint32_t i = 0; i < a.shard_count; ++i) commits += from.shards[i].commits;
  b.commits.store(commits);
  b.expirations.store(a.expirations.load());
  b.retired.store(a.retired.load());
  b.unflushed_edits.store(a.unflushed_edits.load());
  b.lock_recoveries.store(a.lock_recoveries.load());
  b.lock_revocations.store(a.lock_revocations.load() + locks_revoked);
  // The current position (the rebuilder holds its lock: no writer is
  // halfway), as the new generation's copy 0.
  b.replica_positions[0] = a.replica_positions[a.replica_current.load() & 1u];
  b.replica_current.store(0);
  copy_store_state(a, b);
  for (std::uint32_t i = 0; i < a.change_capacity; ++i) {
    ChangeSlot& src = from.ring[i];
    // The new ring reads as zeros (never written) and is left untouched
    // where the old one was never written either.
    if (src.stamp.load() == 0) continue;
    ChangeSlot& dst = to.ring[i];
    dst.version = src.version;
    dst.kind = src.kind;
    dst.id_size = src.id_size;
    std::memcpy(dst.id, src.id, sizeof dst.id);
    dst.stamp.store(src.stamp.load());
  }
}

// What a store keeps whatever its sessions: its failover state and
// replication bound (the caller holds the position's lock), the agent's
// claim and status (and its claim lock), lock tokens that only grow.
void copy_store_state(StoreRoot& a, StoreRoot& b) {
  b.next_token.store(std::max(a.next_token.load(), b.next_token.load()));
  b.failover.store(a.failover.load());
  b.replication_bound.store(a.replication_bound.load());
  b.bound_waits.store(a.bound_waits.load());
  b.bound_refusals.store(a.bound_refusals.load());
  b.fenced_by.store(a.fenced_by.load());
  b.promoted_from = a.promoted_from;
  b.agent.published.store(a.agent.published.load());
  for (int c = 0; c < 2; ++c) {
    const AgentStatusCopy& src = a.agent.copies[c];
    AgentStatusCopy& dst = b.agent.copies[c];
    // Copied word by word (atomics); a copy torn by a writer that died is
    // not current and stays so (its odd generation is copied with it).
    static_assert(sizeof(AgentStatusCopy) % 8 == 0);
    const auto* in = reinterpret_cast<const std::atomic<std::uint64_t>*>(&src);
    auto* out = reinterpret_cast<std::atomic<std::uint64_t>*>(&dst);
    for (std::size_t w = 0; w < sizeof(AgentStatusCopy) / 8; ++w) out[w].store(in[w].load());
  }
  // A current copy left odd is damage (a writer fills the other copy):
  // made readable again, whatever its figures say.
  AgentStatusCopy& current = b.agent.copies[b.agent.published.load() % 2];
  if ((current.generation.load() & 1) != 0) current.generation.fetch_add(1);
}

CreateOptions options_of(Generation& g) {
  CreateOptions o;
  o.size_bytes = g.segment.get_size();
  o.shards = g.root->shard_count;
  o.change_log_capacity = g.root->change_capacity;
  o.change_lanes = g.root->lane_count;
  o.default_idle_timeout_s = g.root->default_idle_timeout_s;
  o.lock_lease_ms = g.root->lock_lease_ms;
  o.max_lock_queue = g.root->max_lock_queue;
  struct stat st {};
  o.mode = ::stat(segment_path(g.name).c_str(), &st) == 0 ? (st.st_mode & 0777) : 0600;
  o.reserve = st.st_blocks * 512 >= st.st_size;  // a sparse store stays sparse
  return o;
}

// Every shard lock of `g`, each repaired if its holder died; held until
// the vector goes away.
std::vector<std::unique_ptr<RobustLockGuard>> lock_every_shard(Generation& g) {
  std::vector<std::unique_ptr<RobustLockGuard>> locks;
  locks.reserve(g.root->shard_count);
  for (std::uint32_t i = 0; i < g.root->shard_count; ++i)
    locks.push_back(std::make_unique<RobustLockGuard>(g.shards[i].mutex,
                                                      [&g, i]() NO_THREAD_SAFETY_ANALYSIS { g.repair(g.shards[i]); }));
  return locks;
}

// Builds the next generation of `g` and puts it in g's place under the
// store's name. The caller holds g's recovery mutex. Returns false if `g`
// turned out to be replaced already.
bool rebuild_generation(Generation& g, RecoveryReport& report) {
  StoreRoot& root = *g.root;
  const std::string temp = rebuild_name(g.name);
  bip::shared_memory_object::remove(temp.c_str());  // a rebuilder that died may have left one
  report.from_generation = root.generation;
  NewGeneration identity{root.generation + 1, g.header->store_id, g.header->created_unix_ms};
  // Created before the shard locks are taken: the store is stopped only
  // for the copy.
  std::unique_ptr<Generation> next = create_generation(temp, g.name, options_of(g), identity);
  try {
    const std::vector<std::unique_ptr<RobustLockGuard>> shard_locks = lock_every_shard(g);
    if (root.moved.load(std::memory_order_acquire) != 0) {  // settled by a shard's repair meanwhile
      bip::shared_memory_object::remove(temp.c_str());
      return false;
    }
    // A position writer that died left its current copy whole: nothing
    // to repair.
    RobustLockGuard replica(root.replica_mutex, [] {});
    RobustLockGuard claim(root.agent.claim_mutex, [] {});
    RobustLockGuard sequencer(root.sequencer_mutex, [] {});
    // From here until the move is marked, a rebuilder that dies leaves
    // every shard lock owner-dead and this flag set: the repairs settle it.
    root.rebuilding.store(1, std::memory_order_release);
    const std::uint64_t used_before = g.segment.get_size() - g.segment.get_free_memory();
    KeptRecords kept;
    collect_chained(g, kept, report);
    if (kept.damage_seen) collect_unlinked(g, kept, report);
    copy_records(g, kept, *next, report);
    copy_root(g, *next, report.locks_revoked);
    next->header->init_state.store(kInitReady, std::memory_order_release);
    run_test_hook(HookPoint::kRebuildBeforeRename);
    if (::rename(segment_path(temp).c_str(), segment_path(g.name).c_str()) != 0)
      throw Error(Errc::Io, "cannot put the rebuilt store '" + g.name + "' in place: " + shmsession::errno_text(errno));
    run_test_hook(HookPoint::kRebuildAfterRename);
    mark_moved(g);
    root.rebuilding.store(0, std::memory_order_release);
    report.to_generation = identity.generation;
    const std::uint64_t used_after = next->segment.get_size() - next->segment.get_free_memory();
    report.bytes_reclaimed = used_before > used_after ? used_before - used_after : 0;
  } catch (...) {
    bip::shared_memory_object::remove(temp.c_str());
    root.rebuilding.store(0, std::memory_order_release);
    throw;
  }
  return true;
}

// Rebuilds `g` unless another process has (or is about to: this waits for
// its recovery mutex). A rebuilder that died is settled first.
void rebuild_or_wait(Generation& g, RecoveryReport& report) {
  bool predecessor_died = false;
  RobustLockGuard recovery(g.root->recovery_mutex, [&] { predecessor_died = true; });
  if (predecessor_died && settle_abandoned_rebuild(g)) return;
  if (g.root->moved.load(std::memory_order_acquire) != 0) return;
  if (!rebuild_generation(g, report)) return;
  report.action = "rebuilt";
}

}  // namespace

bool shm::detail::settle_abandoned_rebuild(Generation& g) noexcept {
  if (g.root->moved.load(std::memory_order_acquire) != 0) return true;
  try {
    std::unique_ptr<Generation> named = attach_generation(g.name);
    if (!same_store(g, *named) || named->root->generation <= g.root->generation) return false;
  } catch (...) {
    return false;  // nothing newer under the name
  }
  mark_moved(g);
  g.root->rebuilding.store(0, std::memory_order_release);
  return true;
}

// ---- Store::Impl -------------------------------------------------------------

Store::Impl::Impl(std::unique_ptr<Generation> first) : name(first->name) {
  current.store(first.get(), std::memory_order_release);
  generations.push_back(std::move(first));
}

Generation& Store::Impl::gen_checked() {
  Generation& g = gen();
  if (g.root->moved.load(std::memory_order_acquire) == 0) [[likely]]
    return g;
  return move_on(g);
}

Generation& Store::Impl::move_on(Generation& from) {
  MutexLock lock(generations_mutex);
  Generation* now = current.load(std::memory_order_acquire);
  if (now != &from && now->root->moved.load(std::memory_order_acquire) == 0) return *now;  // another thread moved
  for (int attempt = 0;; ++attempt) {
    std::unique_ptr<Generation> next = attach_generation(name);
    if (!same_store(*now, *next))
      throw Error(Errc::Corrupt, "store '" + name + "' was replaced by another store while this process used it");
    if (next->root->generation > now->root->generation) {
      Generation& moved_to = *next;
      generations.push_back(std::move(next));
      current.store(&moved_to, std::memory_order_release);
      if (moved_to.root->moved.load(std::memory_order_acquire) == 0) return moved_to;
      now = &moved_to;  // rebuilt again meanwhile: follow on
      continue;
    }
    // The name still holds this generation: it is not replaced after all
    // (an operation raced a rebuild that failed).
    if (now->root->moved.load(std::memory_order_acquire) == 0 || attempt >= 3) {
      if (now->root->moved.load(std::memory_order_acquire) == 0) return *now;
      throw Error(Errc::Io, "store '" + name + "' was marked rebuilt but its name still holds generation " +
                                std::to_string(now->root->generation) + "; run 'shmctl recover " + name + "'");
    }
  }
}

void Store::Impl::rebuild_after(Generation& from, const std::string& why) {
  RecoveryReport report;
  try {
    rebuild_or_wait(from, report);
  } catch (const Error& e) {
    throw Error(e.code(), why + "; rebuilding the store failed: " + e.what());
  }
  gen_checked();
}

void Store::Impl::throw_unsettled() const {
  throw Error(Errc::Io, "store '" + name + "' kept being rebuilt under this operation; giving up after " +
                            std::to_string(kMaxMoves) + " generations");
}

// ---- full resync beside the standby (shm/replica.hpp) ------------------------

namespace {

// The private name a full resync builds under ('~': never a store's name).
std::string resync_name(const std::string& name) { return name + "~resync"; }

}  // namespace

ResyncDraft Replica::begin_resync() {
  std::string shm_name;
  std::optional<Store> draft;
  impl_->run([&](Generation& g) {
    shm_name = resync_name(g.name);
    bip::shared_memory_object::remove(shm_name.c_str());  // a daemon killed mid-resync left it
    NewGeneration identity{g.root->generation + 1, g.header->store_id, g.header->created_unix_ms};
    draft.emplace(Store(std::make_unique<Store::Impl>(create_generation(shm_name, g.name, options_of(g), identity))));
  });
  return ResyncDraft(impl_, std::move(*draft), std::move(shm_name));
}

ResyncDraft::ResyncDraft(Store::Impl* standby, Store draft, std::string shm_name) noexcept
    : standby_(standby), draft_(std::move(draft)), shm_name_(std::move(shm_name)) {}

ResyncDraft::ResyncDraft(ResyncDraft&& other) noexcept
    : standby_(other.standby_), draft_(std::move(other.draft_)), shm_name_(std::move(other.shm_name_)) {
  other.shm_name_.clear();
}

ResyncDraft::~ResyncDraft() {
  if (!shm_name_.empty()) bip::shared_memory_object::remove(shm_name_.c_str());
}

// As a rebuild puts its generation in place (rebuild_generation): under the
// standby's recovery lock and every shard lock, the position's, the agent
// claim's and the sequencer's, with `rebuilding` set, so that a publisher
// that dies between the rename and the move is settled like a rebuilder.
void ResyncDraft::publish(const ReplicaPosition& position) {
  if (shm_name_.empty()) throw Error(Errc::InvalidArgument, "this resync draft was published already");
  Generation& next = draft_.impl_->gen();
  standby_->run([&](Generation& g) NO_THREAD_SAFETY_ANALYSIS {
    StoreRoot& root = *g.root;
    bool predecessor_died = false;
    RobustLockGuard recovery(root.recovery_mutex, [&] { predecessor_died = true; });
    if (predecessor_died) settle_abandoned_rebuild(g);
    if (root.moved.load(std::memory_order_acquire) != 0) throw GenerationMoved{};
    const std::vector<std::unique_ptr<RobustLockGuard>> shard_locks = lock_every_shard(g);
    if (root.moved.load(std::memory_order_acquire) != 0) throw GenerationMoved{};
    RobustLockGuard replica(root.replica_mutex, [] {});
    check_writer(g, Writer::Replica);  // promoted meanwhile: the standby stays as it is
    RobustLockGuard claim(root.agent.claim_mutex, [] {});
    RobustLockGuard sequencer(root.sequencer_mutex, [] {});
    root.rebuilding.store(1, std::memory_order_release);
    try {
      StoreRoot& b = *next.root;
      b.generation = root.generation + 1;
      copy_store_state(root, b);
      std::memcpy(b.replica_positions[0].primary_store_id, position.primary_store_id.data(),
                  position.primary_store_id.size());
      b.replica_positions[0].applied_seq = position.applied_seq;
      b.replica_current.store(0);
      next.header->init_state.store(kInitReady, std::memory_order_release);
      run_test_hook(HookPoint::kResyncBeforeRename);
      if (::rename(segment_path(shm_name_).c_str(), segment_path(g.name).c_str()) != 0)
        throw Error(Errc::Io,
                    "cannot put the resynced standby '" + g.name + "' in place: " + shmsession::errno_text(errno));
    } catch (...) {
      root.rebuilding.store(0, std::memory_order_release);
      throw;
    }
    shm_name_.clear();  // the name is the standby's now
    mark_moved(g);
    root.rebuilding.store(0, std::memory_order_release);
  });
}

// ---- check -------------------------------------------------------------------

namespace {

// The header is found where it was found at attach. The index is not
// locked for it: nothing writes it once the segment is published.
bool index_sound(Generation& g) { return find_header(g.segment) == g.header; }

// Verifies one shard (its lock held) into the report; returns the bytes
// its tables, records and blobs occupy in the segment.
std::uint64_t check_shard(Generation& g, Shard& shard, CheckReport& report) REQUIRES(shard.mutex) {
  std::uint64_t bytes = table_fits(shard.table.get(), g.bounds) ? block_bytes(g, shard.table.get()) : 0;
  for (const bip::offset_ptr<BlobHeader>& kept : shard.spares) {
    const BlobHeader* spare = kept.get();
    if (spare == nullptr || !g.bounds.holds(spare)) continue;
    bytes += block_bytes(g, spare);
    // take_spare trusts the recorded capacity: more than the block holds
    // would let the next commit write past it.
    if (spare->capacity > g.segment.get_segment_manager()->size(spare)) ++report.damaged_spares;
  }
  std::uint64_t sessions = 0, attributes = 0, payload = 0;
  const LockContext c = g.lock_context();
  const ChainDamage damage = for_each_record(shard, g.bounds_of(shard), [&](SessionRecord* r) {
    ++sessions;
    if (!record_is_sound(r, g.bounds)) {
      ++report.damaged_sessions;
      name_damaged(r, g.bounds, report.damaged_ids);
      return;
    }
    bytes += block_bytes(g, r);
    if (const BlobHeader* b = r->blob.get()) {
      bytes += block_bytes(g, b);
      attributes += b->attr_count;
      payload += blob_payload_bytes(b);  // sound: blob_fits held
    }
    const LockState* lock = lock_state_or_null(g, shard, r);  // a damaged reference: counted below
    if (lock == nullptr) return;
    if (!lock_state_fits(c, *lock)) {
      ++report.damaged_lock_queues;
      return;
    }
    if (lock->token != 0 && !process_alive(lock->holder_pid, lock->holder_start)) ++report.dead_lock_holders;
  });
  const LockTableCheck locks = check_lock_table(g, shard);
  bytes += locks.bytes;
  report.lock_states += locks.in_use;
  report.damaged_lock_references += locks.bad_references;
  if (!locks.damage.empty()) {
    ++report.damaged_lock_tables;
    if (report.lock_table_damage.size() < kListedIds)
      report.lock_table_damage.push_back("shard " + std::to_string(&shard - g.shards) + ": " + locks.damage);
  }
  report.broken_links += damage.total();
  report.sessions += sessions;
  report.attributes += attributes;
  if (sessions != shard.sessions || attributes != shard.attributes || payload != shard.payload_bytes)
    ++report.miscounted_shards;
  return bytes;
}

void check_generation(Generation& g, CheckReport& report) {
  report = CheckReport{};
  report.generation = g.root->generation;
  report.index_ok = index_sound(g);
  std::string allocator_why;
  report.allocator_ok = g.allocator_sane(allocator_why);
  const std::uint64_t repairs_before = g.root->lock_recoveries.load();
  std::uint64_t reachable = g.root->fixed_bytes;
  for (std::uint32_t i = 0; i < g.root->shard_count; ++i) {
    Shard& shard = g.shards[i];
    ShardGuard guard(g, shard);
    reachable += check_shard(g, shard, report);
  }
  report.shard_repairs = g.root->lock_recoveries.load() - repairs_before;
  const LockContext c = g.lock_context();
  for (std::uint32_t i = 0; i < g.root->waiter_capacity; ++i) {
    const WaiterSlot& w = c.waiters[i];
    if (slot_in_use(w.state.load(std::memory_order_acquire)) && !process_alive(w.pid, w.start_time))
      ++report.dead_waiters;
  }
  for (std::uint32_t i = 0; i < g.root->process_capacity; ++i) {
    const ProcessSlot& p = c.processes[i];
    if (slot_in_use(p.state.load(std::memory_order_acquire)) && !process_alive(p.pid, p.start_time))
      ++report.dead_process_slots;
  }
  // The segment manager's size, as fixed_bytes was measured (the mapping
  // is a few bytes larger: Boost's own header precedes the manager).
  auto& sm = *g.segment.get_segment_manager();
  const std::uint64_t used = sm.get_size() - sm.get_free_memory();
  report.unreferenced_bytes = used > reachable ? used - reachable : 0;
  report.moved = g.root->moved.load(std::memory_order_acquire) != 0;

  if (report.damaged_sessions != 0)
    report.problems.push_back(std::to_string(report.damaged_sessions) +
                              " session(s) fail verification (magic, bounds or a value checksum); "
                              "'shmctl recover --rebuild' drops them (restore them from the backup)");
  if (report.broken_links != 0)
    report.problems.push_back(std::to_string(report.broken_links) +
                              " bucket table(s) or chain link(s) are damaged (out of the segment, not a record, "
                              "or looping); 'shmctl recover --rebuild' finds the sound records they cut off");
  if (report.damaged_lock_queues != 0)
    report.problems.push_back(std::to_string(report.damaged_lock_queues) +
                              " session lock state(s) are damaged; 'shmctl recover --rebuild' clears them "
                              "(every lock is revoked)");
  if (report.damaged_lock_references != 0)
    report.problems.push_back(std::to_string(report.damaged_lock_references) +
                              " session(s) reference a lock state that is out of range, free or another "
                              "session's; 'shmctl recover --rebuild' clears them (every lock is revoked)");
  if (report.damaged_lock_tables != 0) {
    std::string where;
    for (const std::string& d : report.lock_table_damage) where += (where.empty() ? " (" : "; ") + d;
    report.problems.push_back(std::to_string(report.damaged_lock_tables) +
                              " shard lock-state table(s) are inconsistent" + (where.empty() ? "" : where + ")") +
                              "; 'shmctl recover --rebuild' builds them anew (every lock is revoked)");
  }
  if (report.miscounted_shards != 0)
    report.problems.push_back(std::to_string(report.miscounted_shards) +
                              " shard(s) have counters that disagree with their records");
  if (report.damaged_spares != 0)
    report.problems.push_back(std::to_string(report.damaged_spares) +
                              " shard(s) keep a spare blob that claims more bytes than it was given; "
                              "'shmctl recover' rebuilds the store");
  if (!report.allocator_ok)
    report.problems.push_back(allocator_why + "; the next allocation (or 'shmctl recover') rebuilds the store");
  if (!report.index_ok)
    report.problems.push_back(
        "the named-object index no longer leads to the store's header (the segment is "
        "damaged); 'shmctl recover' rebuilds the store");
}

}  // namespace

CheckReport check_store(const Store& store) {
  CheckReport report;
  store.impl_->run([&](Generation& g) { check_generation(g, report); });
  return report;
}

// ---- recover -----------------------------------------------------------------

namespace {

// Record-level recovery of one shard (its lock held): revokes locks whose
// holder died, takes dead waiters out of the queues and frees their slots.
void repair_locks(Generation& g, const LockContext& c, Shard& shard, RecoveryReport& report) REQUIRES(shard.mutex) {
  const std::uint64_t now = segment_ms();
  for_each_record(shard, g.bounds_of(shard), [&](SessionRecord* r) {
    LockState* state = lock_state_or_null(g, shard, r);
    if (state == nullptr) return;  // none, or a damaged reference (check reports it)
    LockState& lock = *state;
    if (!lock_state_fits(c, lock)) return;  // check reports it; the rebuild clears it
    for (std::uint32_t w = lock.queue_head; w != 0;) {
      WaiterSlot& slot = c.waiters[w - 1];
      const std::uint32_t next = slot.next;
      if (!process_alive(slot.pid, slot.start_time) && dequeue_waiter(c, lock, w)) {
        free_waiter_slot(slot);
        ++report.slots_freed;
      }
      w = next;
    }
    if (lock.token != 0 && !process_alive(lock.holder_pid, lock.holder_start)) {
      revoke(c, lock, now);
      ++report.locks_revoked;
    }
    settle_lock_state(g, shard, r);
  });
}

}  // namespace

RecoveryReport recover_store(Store& store, bool rebuild) {
  RecoveryReport report;
  store.impl_->run([&](Generation& g) {
    report = RecoveryReport{};
    report.from_generation = report.to_generation = g.root->generation;
    const std::uint64_t repairs_before = g.root->lock_recoveries.load();
    const LockContext c = g.lock_context();
    for (std::uint32_t i = 0; i < g.root->shard_count; ++i) {
      ShardGuard guard(g, g.shards[i]);
      repair_locks(g, c, g.shards[i], report);
    }
    for (std::uint32_t i = 0; i < g.root->process_capacity; ++i) {
      ProcessSlot& p = c.processes[i];
      if (slot_in_use(p.state.load(std::memory_order_acquire)) && !process_alive(p.pid, p.start_time)) {
        free_process_slot(p);
        ++report.slots_freed;
      }
    }
    report.shard_repairs = g.root->lock_recoveries.load() - repairs_before;
    CheckReport found;
    check_generation(g, found);
    if (!found.allocator_ok)
      report.reason = "the allocator is poisoned";
    else if (!found.index_ok)
      report.reason = "the named-object index is damaged";
    else if (found.damaged_sessions != 0)
      report.reason = std::to_string(found.damaged_sessions) + " damaged session(s)";
    else if (found.broken_links != 0)
      report.reason = std::to_string(found.broken_links) + " damaged chain link(s)";
    else if (found.damaged_lock_queues != 0)
      report.reason = std::to_string(found.damaged_lock_queues) + " damaged lock state(s)";
    else if (found.damaged_lock_references != 0)
      report.reason = std::to_string(found.damaged_lock_references) + " damaged lock-state reference(s)";
    else if (found.damaged_lock_tables != 0)
      report.reason = std::to_string(found.damaged_lock_tables) + " inconsistent lock-state table(s)";
    else if (found.miscounted_shards != 0)
      report.reason = "shard counters disagree with their records";
    else if (found.damaged_spares != 0)
      report.reason = "a spare blob claims more bytes than it was given";
    else if (rebuild)
      report.reason = "requested";
    if (report.shard_repairs + report.locks_revoked + report.slots_freed != 0) report.action = "repaired";
    if (report.reason.empty()) return;
    const std::uint64_t revoked_before = report.locks_revoked;
    report.locks_revoked = 0;
    rebuild_or_wait(g, report);
    report.locks_revoked += revoked_before;
  });
  store.impl_->gen_checked();
  return report;
}

}  // namespace shmsession
