// Store lifecycle (create, attach, remove), information and statistics, and
// the Impl helpers shared with store_sessions.cpp.
#include "shm/store.hpp"

#include <sched.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <limits>
#include <thread>

#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include "shm/change_feed.hpp"
#include "shm/detail/change_ring.hpp"
#include "shm/detail/clock.hpp"
#include "shm/detail/futex.hpp"
#include "shm/detail/lock_table.hpp"
#include "shm/detail/names.hpp"
#include "shm/detail/segment_file.hpp"
#include "shm/detail/session_table.hpp"
#include "shm/detail/store_impl.hpp"
#include "shm/detail/test_hooks.hpp"

namespace shmsession {

using namespace shm::detail;

namespace {

constexpr std::uint32_t kWaiterSlots = 4096;   // processes waiting for locks, store-wide
constexpr std::uint32_t kProcessSlots = 1024;  // processes holding locks, store-wide
// Bytes an allocator block may hold beyond what was asked (rounding, a
// remainder too small to split off): how bind_root tells an array's block.
constexpr std::uint64_t kBlockSlack = 256;

#ifdef SHMSESSION_TEST_HOOKS
// The segment allocator's own mutex, for the kInsideAllocator hook: Boost's
// rbtree_best_fit keeps it first in its header, which is the first member
// of the segment manager (no virtual functions, the algorithm is its first
// base). test/shm/recovery_test proves the address: a process
// killed holding it poisons allocate() for everyone.
bip::interprocess_mutex& boost_allocator_mutex(bip::managed_shared_memory& segment) {
  return *reinterpret_cast<bip::interprocess_mutex*>(segment.get_segment_manager());
}
#endif

bool is_power_of_two(std::uint64_t n) { return n != 0 && (n & (n - 1)) == 0; }

std::uint32_t power_of_two_at_most(std::uint64_t n, std::uint32_t low, std::uint32_t high) {
  std::uint32_t p = low;
  while (p < high && std::uint64_t{p} * 2 <= n) p *= 2;
  return p;
}

// Settles the settings left at 0 from the size, so that every size from
// kMinSegmentBytes up leaves most of the segment to sessions: a shard per
// 64 KiB (about 300 bytes each) up to 256 shards, a change-log entry (152
// bytes) per 2 KiB up to 16384 entries. A 1 MiB store gets 16 shards and
// 512 entries and keeps about 75% free; both maxima are reached by 32 MiB.
CreateOptions with_sized_defaults(CreateOptions o) {
  if (o.shards == 0) o.shards = power_of_two_at_most(o.size_bytes / (64 << 10), 1, 256);
  if (o.change_log_capacity == 0) o.change_log_capacity = power_of_two_at_most(o.size_bytes / (2 << 10), 16, 16384);
  if (o.change_lanes == 0) {
    const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
    o.change_lanes = 1;
    while (o.change_lanes < cpus && o.change_lanes < kMaxChangeLanes) o.change_lanes *= 2;
  }
  return o;
}

void validate_options(const CreateOptions& o) {
  auto bad = [](const std::string& why) { throw Error(Errc::InvalidArgument, why); };
  if (o.size_bytes < kMinSegmentBytes) bad("segment size must be at least 1 MiB");
  if (o.mode > 0777) bad("mode must be permission bits between 0 and 0777");
  if (!is_power_of_two(o.shards) || o.shards > 65536) bad("shard count must be a power of two from 1 to 65536");
  if (o.change_log_capacity < 16 || o.change_log_capacity > (1u << 24))
    bad("change log capacity must be between 16 and 16777216 entries");
  if (!is_power_of_two(o.change_lanes) || o.change_lanes > kMaxChangeLanes)
    bad("change lane count must be a power of two from 1 to 64");
  if (o.lock_lease_ms > kMaxLockLeaseMs) bad("lock lease must be at most 3600000 ms (0 disables it)");
  if (o.max_lock_queue < 1 || o.max_lock_queue > 1024) bad("lock queue length must be between 1 and 1024");
}

std::string describe_ipc_error(const bip::interprocess_exception& e) {
  return std::string(e.what()) + " (" + shmsession::errno_text(e.get_native_error()) + ")";
}

// Builds the root, shards, change ring and initial tables of a fresh segment.
// Returns false if the segment is too small for them.
// The segment is private to its builder (a draft): its shards are set up
// without their locks.
// `draft` and `shm_name`: the draft's file, and the name errors give.
bool build_root(Generation& g, const CreateOptions& o, std::uint64_t generation, const std::string& draft,
                const std::string& shm_name) NO_THREAD_SAFETY_ANALYSIS {
  auto& sm = *g.segment.get_segment_manager();
  // The allocator's overhead per block, for check_store's accounting: measured
  // here, where nothing else allocates yet.
  const std::uint64_t free_before_probe = sm.get_free_memory();
  void* probe = sm.allocate(1, std::nothrow);
  if (probe == nullptr) return false;
  const std::uint64_t block_overhead = free_before_probe - sm.get_free_memory() - sm.size(probe);
  sm.deallocate(probe);
  void* root_mem = sm.allocate(sizeof(StoreRoot), std::nothrow);
  void* shard_mem = sm.allocate_aligned(sizeof(Shard) * o.shards, alignof(Shard), std::nothrow);
  void* ring_mem =
      sm.allocate_aligned(sizeof(ChangeSlot) * std::uint64_t{o.change_log_capacity}, alignof(ChangeSlot), std::nothrow);
  void* waiter_mem = sm.allocate(sizeof(WaiterSlot) * kWaiterSlots, std::nothrow);
  void* process_mem = sm.allocate(sizeof(ProcessSlot) * kProcessSlots, std::nothrow);
  void* lock_table_mem = sm.allocate_aligned(sizeof(LockTable) * o.shards, alignof(LockTable), std::nothrow);
  const std::uint32_t lane_capacity = lane_capacity_for(o.change_log_capacity, o.change_lanes);
  void* lanes_mem = sm.allocate_aligned(sizeof(ChangeLane) * o.change_lanes, alignof(ChangeLane), std::nothrow);
  void* lane_slots_mem = sm.allocate_aligned(sizeof(ChangeSlot) * std::uint64_t{lane_capacity} * o.change_lanes,
                                             alignof(ChangeSlot), std::nothrow);
  void* sequenced_mem = sm.allocate(sizeof(std::uint64_t) * o.shards, std::nothrow);
  if (!root_mem || !shard_mem || !ring_mem || !waiter_mem || !process_mem || !lock_table_mem || !lanes_mem ||
      !lane_slots_mem || !sequenced_mem)
    return false;
  auto* root = new (root_mem) StoreRoot{};
  root->shard_count = o.shards;
  root->change_capacity = o.change_log_capacity;
  root->lane_count = o.change_lanes;
  root->lane_capacity = lane_capacity;
  root->default_idle_timeout_s = o.default_idle_timeout_s;
  root->next_change_seq.store(1);
  root->next_token.store(1);
  root->next_incarnation.store(1);
  root->lock_lease_ms = o.lock_lease_ms;
  root->max_lock_queue = o.max_lock_queue;
  root->waiter_capacity = kWaiterSlots;
  root->process_capacity = kProcessSlots;
  root->generation = generation;
  root->failover.store(kFirstEpoch << 1);
  root->block_overhead = block_overhead;
  auto* waiters = static_cast<WaiterSlot*>(waiter_mem);
  for (std::uint32_t i = 0; i < kWaiterSlots; ++i) new (&waiters[i]) WaiterSlot{};
  auto* processes = static_cast<ProcessSlot*>(process_mem);
  for (std::uint32_t i = 0; i < kProcessSlots; ++i) new (&processes[i]) ProcessSlot{};
  root->waiters = waiters;
  root->processes = processes;
  // Empty: a shard's first lock state allocates its first chunk.
  auto* lock_tables = static_cast<LockTable*>(lock_table_mem);
  for (std::uint32_t i = 0; i < o.shards; ++i) new (&lock_tables[i]) LockTable{};
  root->lock_tables = lock_tables;
  robust_mutex_init(root->replica_mutex);
  robust_mutex_init(root->agent.claim_mutex);
  robust_mutex_init(root->recovery_mutex);
  robust_mutex_init(root->allocator_mutex);
  robust_mutex_init(root->sequencer_mutex);
  auto* lanes = static_cast<ChangeLane*>(lanes_mem);
  for (std::uint32_t i = 0; i < o.change_lanes; ++i) new (&lanes[i]) ChangeLane{};
  // Change slots all zero (stamp 0: never written) are the empty ring: the
  // two rings are cleared without touching their pages (clear_draft_block),
  // not constructed slot by slot, so a large log costs memory, and maps
  // pages into processes, only as changes fill it.
  auto* lane_slots = static_cast<ChangeSlot*>(lane_slots_mem);
  clear_draft_block(g.segment, draft, shm_name, o, lane_slots,
                    sizeof(ChangeSlot) * std::uint64_t{lane_capacity} * o.change_lanes);
  root->lanes = lanes;
  root->lane_slots = lane_slots;
  auto* sequenced = static_cast<std::uint64_t*>(sequenced_mem);
  std::fill_n(sequenced, o.shards, std::uint64_t{0});
  root->shard_sequenced = sequenced;
  auto* shards = static_cast<Shard*>(shard_mem);
  for (std::uint32_t i = 0; i < o.shards; ++i) {
    Shard* sh = new (&shards[i]) Shard{};
    robust_mutex_init(sh->mutex);
    void* t = sm.allocate(bucket_table_bytes(kInitialBuckets), std::nothrow);
    if (!t) return false;
    sh->table = init_bucket_table(t, kInitialBuckets, 0);
  }
  auto* ring = static_cast<ChangeSlot*>(ring_mem);
  clear_draft_block(g.segment, draft, shm_name, o, ring, sizeof(ChangeSlot) * std::uint64_t{o.change_log_capacity});
  root->shards = shards;
  root->ring = ring;
  g.root = root;
  g.header->root_handle = static_cast<std::uint64_t>(g.segment.get_handle_from_address(root));
  return true;
}

// Finds the root from the header and checks that every array it points to
// lies inside the segment, so that damage to the root is an attach error
// (Corrupt) and never a fault in whatever reads it next.
void bind_root(Generation& g) {
  const auto base = reinterpret_cast<std::uintptr_t>(g.segment.get_address());
  g.bounds = SegmentBounds{base, base + g.segment.get_size()};
  auto damaged = [&](const std::string& what) {
    throw Error(Errc::Corrupt, "the root of store '" + g.name + "' is damaged (" + what +
                                   "); destroy it and restore it from the backup");
  };
  if (g.header->root_handle >= g.segment.get_size()) damaged("its offset is outside the segment");
  g.root = static_cast<StoreRoot*>(
      g.segment.get_address_from_handle(static_cast<bip::managed_shared_memory::handle_t>(g.header->root_handle)));
  // Each array is one block of the allocator, sized for it at creation: a
  // pointer a flipped bit moved elsewhere in the segment does not start
  // such a block (writes through it, as recover's to dead process slots,
  // would damage whatever it points into). The block header is Boost's
  // (16 bytes before the block); its size is read, never trusted further.
  auto& sm = *g.segment.get_segment_manager();
  auto is_block = [&](const void* p, std::uint64_t bytes, std::size_t align) {
    const char* block = static_cast<const char*>(p) - 16;
    if (!g.bounds.holds(p, bytes, align) || !g.bounds.holds(block, 16, 8)) return false;
    const std::uint64_t usable = sm.size(p);
    return usable >= bytes && usable - bytes <= kBlockSlack;
  };
  const StoreRoot& r = *g.root;
  if (!is_block(g.root, sizeof(StoreRoot), alignof(StoreRoot))) damaged("it is not where its offset says");
  if (!is_power_of_two(r.shard_count) || r.shard_count > 65536) damaged("shard count " + std::to_string(r.shard_count));
  if (r.change_capacity < 16 || r.change_capacity > (1u << 24))
    damaged("change log capacity " + std::to_string(r.change_capacity));
  if (!is_block(r.shards.get(), sizeof(Shard) * std::uint64_t{r.shard_count}, alignof(Shard)))
    damaged("the shard array");
  if (!is_block(r.ring.get(), sizeof(ChangeSlot) * std::uint64_t{r.change_capacity}, alignof(ChangeSlot)))
    damaged("the change log");
  if (!is_block(r.waiters.get(), sizeof(WaiterSlot) * std::uint64_t{r.waiter_capacity}, alignof(WaiterSlot)))
    damaged("the waiter slots");
  if (!is_block(r.processes.get(), sizeof(ProcessSlot) * std::uint64_t{r.process_capacity}, alignof(ProcessSlot)))
    damaged("the process slots");
  if (!is_block(r.lock_tables.get(), sizeof(LockTable) * std::uint64_t{r.shard_count}, alignof(LockTable)))
    damaged("the lock-state tables");
  // A pointer to the shards that a flipped bit moved within the segment
  // leads to bytes that are no mutexes: refuse them before anyone locks one.
  for (std::uint32_t i = 0; i < r.shard_count; ++i)
    if (!robust_mutex_plausible(r.shards[i].mutex, r.allocator_mutex)) damaged("the shard array");
  if (!is_power_of_two(r.lane_count) || r.lane_count > kMaxChangeLanes)
    damaged("change lane count " + std::to_string(r.lane_count));
  if (r.lane_capacity != lane_capacity_for(r.change_capacity, r.lane_count))
    damaged("change lane capacity " + std::to_string(r.lane_capacity));
  if (!is_block(r.lanes.get(), sizeof(ChangeLane) * std::uint64_t{r.lane_count}, alignof(ChangeLane)))
    damaged("the change lanes");
  if (!is_block(r.lane_slots.get(), sizeof(ChangeSlot) * std::uint64_t{r.lane_capacity} * r.lane_count,
                alignof(ChangeSlot)))
    damaged("the change lane slots");
  if (!robust_mutex_plausible(r.sequencer_mutex, r.allocator_mutex)) damaged("the change sequencer's lock");
  if (!is_block(r.shard_sequenced.get(), sizeof(std::uint64_t) * std::uint64_t{r.shard_count}, alignof(std::uint64_t)))
    damaged("the change sequencer's shard counts");
  g.shards = g.root->shards.get();
  g.lock_tables = g.root->lock_tables.get();
  g.ring = g.root->ring.get();
  g.shard_mask = g.root->shard_count - 1;
  g.change_capacity = g.root->change_capacity;
  g.lanes = g.root->lanes.get();
  g.lane_slots = g.root->lane_slots.get();
  g.lane_count = g.root->lane_count;
  g.lane_capacity = g.root->lane_capacity;
  g.shard_sequenced = g.root->shard_sequenced.get();
}

// Checks the header of a segment found under a store's name. A store is
// only ever published under its name once it is ready (create and rebuild
// build it under a private name first), so a header that is missing or not
// ready is never a creator still at work.
// Throws: Corrupt, LayoutMismatch.
void check_header(Generation& g) {
  g.header = find_header(g.segment);
  if (g.header == nullptr || g.header->init_state.load(std::memory_order_acquire) != kInitReady)
    throw Error(Errc::Corrupt, "store '" + g.name +
                                   "' was never fully created (its creator died while creating it, or it is "
                                   "not a shmsession store); destroy it and create it again");
  const SegmentHeader& h = *g.header;
  if (h.magic != kSegmentMagic) throw Error(Errc::Corrupt, "segment '" + g.name + "' is not a shmsession store");
  if (h.layout_version != kLayoutVersion)
    throw Error(Errc::LayoutMismatch, "store '" + g.name + "' has layout version " + std::to_string(h.layout_version) +
                                          " but this build reads layout version " + std::to_string(kLayoutVersion) +
                                          "; run one build everywhere or recreate the store");
  if (h.root_size != sizeof(StoreRoot))
    throw Error(Errc::LayoutMismatch, "store '" + g.name + "' has a root of " + std::to_string(h.root_size) +
                                          " bytes but this build expects " + std::to_string(sizeof(StoreRoot)));
}

}  // namespace

namespace shm::detail {

SegmentHeader* find_header(bip::managed_shared_memory& segment) {
  run_test_hook(HookPoint::kInsideIndex);
  return segment.find_no_lock<SegmentHeader>(kHeaderObjectName).first;
}

// (The draft is private to this builder: its shard tables are measured
// without their locks.)
std::unique_ptr<Generation> create_generation(const std::string& shm_name, const std::string& store_name,
                                              const CreateOptions& options,
                                              const NewGeneration& identity) NO_THREAD_SAFETY_ANALYSIS {
  // Cheap and early, so a taken name costs no reservation; publish_draft
  // decides.
  if (::access(segment_path(shm_name).c_str(), F_OK) == 0)
    throw Error(Errc::AlreadyExists, "store '" + shm_name + "' already exists");
  remove_abandoned_drafts(shm_name);
  auto g = std::make_unique<Generation>();
  g->name = store_name;
  const std::string draft = draft_name(shm_name);
  try {
    map_draft(g->segment, draft, shm_name, options);
    g->header = g->segment.construct<SegmentHeader>(kHeaderObjectName)();
    SegmentHeader& h = *g->header;
    h.init_state.store(kInitCreating);
    h.magic = kSegmentMagic;
    h.layout_version = kLayoutVersion;
    h.root_size = sizeof(StoreRoot);
    if (identity.generation == 1) {
      if (getrandom(h.store_id, sizeof h.store_id, 0) != static_cast<ssize_t>(sizeof h.store_id))
        throw Error(Errc::Io, "getrandom failed");
      h.created_unix_ms = unix_ms();
    } else {
      std::memcpy(h.store_id, identity.store_id, sizeof h.store_id);
      h.created_unix_ms = identity.created_unix_ms;
    }
    if (!build_root(*g, options, identity.generation, draft, shm_name))
      throw Error(Errc::InvalidArgument, "segment size " + std::to_string(options.size_bytes) + " is too small for " +
                                             std::to_string(options.shards) + " shards and a change log of " +
                                             std::to_string(options.change_log_capacity) +
                                             " entries (left unset, both are sized to fit)");
    bind_root(*g);
    // Everything but the tables, which grow and are counted with the shards.
    auto& sm = *g->segment.get_segment_manager();
    std::uint64_t tables = 0;
    for (std::uint32_t i = 0; i < g->root->shard_count; ++i) tables += sm.size(g->shards[i].table.get());
    g->root->fixed_bytes =
        sm.get_size() - sm.get_free_memory() - tables - g->root->shard_count * g->root->block_overhead;
    // A new store is ready once its root is built, and is published only
    // then: attach never waits for a creator (nor takes the index lock to
    // read a header being constructed). A rebuilt generation is published
    // under its private rebuild name and made ready by the rebuilder.
    if (identity.generation == 1) h.init_state.store(kInitReady, std::memory_order_release);
    publish_draft(draft, shm_name);
  } catch (...) {
    g.reset();
    bip::shared_memory_object::remove(draft.c_str());
    throw;
  }
  bip::shared_memory_object::remove(draft.c_str());  // the segment lives on under shm_name
  return g;
}

std::unique_ptr<Generation> attach_generation(const std::string& name) {
  auto g = std::make_unique<Generation>();
  g->name = name;
  try {
    g->segment = bip::managed_shared_memory(bip::open_only, name.c_str());
    check_header(*g);
  } catch (const bip::interprocess_exception& e) {
    switch (e.get_error_code()) {
      case bip::not_found_error:
        throw Error(Errc::NotFound, "store '" + name + "' does not exist");
      case bip::corrupted_error:
        throw Error(Errc::Corrupt, "segment '" + name +
                                       "' is not an initialized shared segment (its creator died while "
                                       "creating it, or it is not a shmsession store)");
      case bip::security_error:
        throw Error(Errc::Io, "permission denied attaching store '" + name + "'");
      default:
        throw Error(Errc::Io, "cannot attach store '" + name + "': " + describe_ipc_error(e));
    }
  }
  bind_root(*g);
  return g;
}

}  // namespace shm::detail

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::Store(Store&&) noexcept = default;
Store& Store::operator=(Store&&) noexcept = default;
Store::~Store() = default;

const std::string& Store::name() const noexcept { return impl_->name; }

Store Store::create(std::string_view name, const CreateOptions& requested) {
  validate_store_name(name);
  const CreateOptions options = with_sized_defaults(requested);
  validate_options(options);
  std::string n(name);
  return Store(std::make_unique<Impl>(create_generation(n, n, options, NewGeneration{})));
}

Store Store::attach(std::string_view name) {
  validate_store_name(name);
  auto impl = std::make_unique<Impl>(attach_generation(std::string(name)));
  Generation& g = impl->gen();
  if (g.root->moved.load(std::memory_order_acquire) != 0) impl->gen_checked();
  return Store(std::move(impl));
}

Store Store::open_or_create(std::string_view name, const CreateOptions& options) {
  for (int attempt = 0;; ++attempt) {
    try {
      return attach(name);
    } catch (const Error& e) {
      if (e.code() != Errc::NotFound || attempt == 3) throw;
    }
    try {
      return create(name, options);
    } catch (const Error& e) {
      if (e.code() != Errc::AlreadyExists) throw;  // lost a race with another creator: attach
    }
  }
}

bool Store::remove(std::string_view name) {
  validate_store_name(name);
  return bip::shared_memory_object::remove(std::string(name).c_str());
}

bool Store::exists(std::string_view name) {
  validate_store_name(name);
  try {
    bip::shared_memory_object shm(bip::open_only, std::string(name).c_str(), bip::read_only);
    return true;
  } catch (const bip::interprocess_exception& e) {
    if (e.get_error_code() == bip::not_found_error) return false;
    return true;  // exists but is not readable by us
  }
}

std::vector<AttachedProcess> Store::attached_processes(std::string_view name) {
  validate_store_name(name);
  return processes_mapping(std::string(name));
}

StoreInfo Store::info() const {
  Generation& g = impl_->gen_checked();
  const SegmentHeader& h = *g.header;
  StoreInfo info;
  info.name = impl_->name;
  info.layout_version = h.layout_version;
  std::memcpy(info.store_id.data(), h.store_id, info.store_id.size());
  info.created_unix_ms = h.created_unix_ms;
  info.size_bytes = g.segment.get_size();
  info.shard_count = g.root->shard_count;
  info.change_log_capacity = g.root->change_capacity;
  info.change_lanes = g.root->lane_count;
  info.default_idle_timeout_s = g.root->default_idle_timeout_s;
  info.lock_lease_ms = g.root->lock_lease_ms;
  info.max_lock_queue = g.root->max_lock_queue;
  return info;
}

StoreStats Store::stats() const {
  return impl_->run([](Generation& g) {
    StoreStats st;
    for (std::uint32_t i = 0; i < g.root->shard_count; ++i) {
      Shard& shard = g.shards[i];
      ShardGuard guard(g, shard);
      st.sessions += shard.sessions;
      st.attributes += shard.attributes;
      st.payload_bytes += shard.payload_bytes;
      st.commits += shard.commits;
      const LockTable& locks = g.lock_table(shard);
      st.lock_state_slots += locks.capacity;
      st.lock_states += locks.capacity - std::min(locks.free_count, locks.capacity);
    }
    st.size_bytes = g.segment.get_size();
    st.free_bytes = g.segment.get_free_memory();
    st.used_bytes = st.size_bytes - st.free_bytes;
    st.commits += g.root->commits.load(std::memory_order_relaxed);
    st.expirations = g.root->expirations.load(std::memory_order_relaxed);
    st.lock_recoveries = g.root->lock_recoveries.load(std::memory_order_relaxed);
    st.next_change_seq = sequence_changes(g, false);
    st.lock_revocations = g.root->lock_revocations.load(std::memory_order_relaxed);
    st.next_lock_token = g.root->next_token.load(std::memory_order_relaxed);
    st.generation = g.root->generation;
    st.unflushed_edits = g.root->unflushed_edits.load(std::memory_order_relaxed);
    st.bound_waits = g.root->bound_waits.load(std::memory_order_relaxed);
    st.bound_refusals = g.root->bound_refusals.load(std::memory_order_relaxed);
    return st;
  });
}

// ---- Impl helpers ---------------------------------------------------------

Generation::Place Generation::place(std::string_view id) {
  validate_session_id(id);
  std::uint64_t hash = hash_session_id(id);
  return {hash, shard_for(hash)};
}

// Every call into Boost's allocator holds the store's robust allocator
// mutex (StoreRoot::allocator_mutex says why): a process killed inside
// leaves it owner-dead for the next caller, who carries on (nothing of ours
// to repair) and finds Boost's mutex poisoned without sleeping on it.
class AllocatorGuard : public RobustLockGuard {
 public:
  explicit AllocatorGuard(Generation& g) : RobustLockGuard(g.root->allocator_mutex) {}
};

void* Generation::allocate(std::uint64_t bytes) {
  AllocatorGuard gate(*this);
  try {
#ifdef SHMSESSION_TEST_HOOKS
    if (test_hook_active()) {
      bip::scoped_lock<bip::interprocess_mutex> inside(boost_allocator_mutex(segment));
      run_test_hook(HookPoint::kInsideAllocator);
    }
#endif
    return segment.allocate(bytes, std::nothrow);
  } catch (const bip::lock_exception& e) {
    throw AllocatorPoisoned{"the allocator of store '" + name + "' is poisoned (" + e.what() +
                            "): a process died inside it"};
  }
}

void Generation::deallocate(void* p) noexcept {
  if (p == nullptr) return;
  try {
    AllocatorGuard gate(*this);
    segment.deallocate(p);
  } catch (...) {
    // A poisoned allocator: the block leaks until the store is rebuilt.
  }
}

bool Generation::allocator_sane(std::string& why) {
  AllocatorGuard gate(*this);
  try {
    if (segment.check_sanity()) return true;
    why = "the allocator's free tree is inconsistent";
  } catch (const bip::interprocess_exception& e) {
    why = std::string("the allocator is poisoned (") + e.what() + "): a process died inside it";
  }
  return false;
}

void Generation::throw_full(std::uint64_t bytes, const char* what) const {
  throw Error(Errc::SegmentFull, std::string(what) + " needs " + std::to_string(bytes) + " bytes but store '" + name +
                                     "' has only " + std::to_string(segment.get_free_memory()) +
                                     " bytes free (fragmented); nothing was changed");
}

// The lane of the CPU this runs on: processes committing at once on
// different CPUs write different lanes.
static std::uint32_t lane_here(std::uint32_t lane_count) noexcept {
  const int cpu = ::sched_getcpu();
  return cpu < 0 ? 0 : static_cast<std::uint32_t>(cpu) & (lane_count - 1);
}

std::uint64_t Generation::begin_change(Shard& shard, SessionRecord* record, ChangeKind kind) noexcept {
  const std::uint32_t lane = lane_here(lane_count);
  // seq_cst, like change_waiters in end_change and ChangeFeed::wait: either
  // a follower about to sleep sees this change, or end_change sees it.
  ++shard.changes;  // this change's number, which end_change writes to its slot
  const std::uint64_t position = lanes[lane].head.fetch_add(1, std::memory_order_seq_cst) + 1;
  shard.pending.record = record;
  shard.pending.kind = static_cast<std::uint32_t>(kind);
  shard.pending.lane.store(lane, std::memory_order_relaxed);
  shard.pending.seq.store(position, std::memory_order_release);
  return change_id(lane, position);
}

void Generation::end_change(Shard& shard, std::uint64_t change, ChangeKind kind, std::uint64_t version,
                            std::string_view id) noexcept {
  const std::uint32_t lane = change_lane(change);
  const ShardChange where{static_cast<std::uint32_t>(&shard - shards), shard.changes};
  write_change_slot(lane_ring(lane), lane_capacity, change_position(change), kind, version, id, where);
  shard.pending.seq.store(0, std::memory_order_release);
  if (change_position(change) - lanes[lane].cursor.load(std::memory_order_relaxed) >= lane_capacity / 2)
    note_lane_filling();
  note_change_made();  // followers are woken by finish_changes, once the shard lock is given back
}

void Generation::wake_followers() noexcept {
  if (root->change_waiters.load(std::memory_order_seq_cst) != 0) {
    root->change_signal.fetch_add(1, std::memory_order_seq_cst);
    futex_wake(root->change_signal, std::numeric_limits<int>::max());
  }
}

void Generation::repair(Shard& shard) noexcept {
  root->lock_recoveries.fetch_add(1, std::memory_order_relaxed);
  // A rebuilder that died holding every shard lock: if its new generation
  // already took this one's place, this one is marked moved (the guard
  // then moves on); if not, nothing can replace it while this lock is held.
  if (root->rebuilding.load(std::memory_order_acquire) != 0) settle_abandoned_rebuild(*this);
  ShardRepair fixed = repair_shard_table(shard, bounds_of(shard));
  // A lock state taken or given back halfway, a queue change cut short.
  repair_lock_table(*this, shard);
  if (std::uint64_t position = shard.pending.seq.load(std::memory_order_acquire)) {
    const std::uint32_t lane = shard.pending.lane.load(std::memory_order_relaxed);
    SessionRecord* r = shard.pending.record.get();
    bool sound = r != nullptr && bounds.holds(r, sizeof(SessionRecord)) && r->magic == kRecordMagic;
    std::uint64_t version = sound && r->blob ? r->blob->version : 0;
    std::string_view id = sound ? record_id(r) : std::string_view{};
    if (lane < lane_count && position <= kMaxLanePosition) {
      end_change(shard, change_id(lane, position), static_cast<ChangeKind>(shard.pending.kind), version, id);
      wake_followers();  // whatever this thread is doing may not be a write that finishes its changes
    } else
      shard.pending.seq.store(0, std::memory_order_release);  // damage: the sequencer reports a lost change
  }
  deallocate(fixed.abandoned_table);
}

}  // namespace shmsession
