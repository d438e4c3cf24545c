// Store process-lock operations (behaviour in shm/lock.hpp; mechanics under
// the shard lock in shm/detail/lock_queue.cpp). Waiting happens outside every
// lock, on the waiter slot's futex word, woken by the hand-over.
#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "shm/detail/clock.hpp"
#include "shm/detail/futex.hpp"
#include "shm/detail/lock_probe.hpp"
#include "shm/detail/lock_queue.hpp"
#include "shm/detail/lock_table.hpp"
#include "shm/detail/names.hpp"
#include "shm/detail/session_table.hpp"
#include "shm/detail/store_impl.hpp"
#include "shm/detail/test_hooks.hpp"
#include "shm/store.hpp"

namespace shmsession {

using namespace shm::detail;
using Clock = std::chrono::steady_clock;

namespace {

// How often a waiter looks at the holder (dead-holder detection bound).
constexpr auto kHolderCheckInterval = std::chrono::milliseconds(25);
// How often the watcher thread looks for a stop request.
constexpr auto kWatcherPoll = std::chrono::milliseconds(200);

Error not_found(std::string_view id) {
  return Error(Errc::NotFound, "session '" + std::string(id) + "' does not exist");
}

Error stale(std::string_view id, LockToken token) {
  return Error(Errc::StaleToken, "lock token " + std::to_string(token.value) + " of session '" + std::string(id) +
                                     "' is no longer current");
}

// The live record held by `locked`, or NotFound.
SessionRecord* live_record(const LockedSession& locked, std::string_view id) {
  if (locked.record() == nullptr) throw not_found(id);
  return locked.record();
}

}  // namespace

// ---- per-process bookkeeping ---------------------------------------------

std::uint32_t Generation::own_process_slot() {
  MutexLock g(locks_mutex);
  ProcessIdentity self = self_identity();
  if (process_slot_pid != self.pid) {
    process_slot = claim_process_slot(lock_context(), self);
    process_slot_pid = self.pid;
    held.clear();  // after a fork: the parent's locks are not ours
  }
  return process_slot;
}

void Generation::remember_lock(std::string_view id, std::uint64_t token) {
  MutexLock g(locks_mutex);
  held[std::string(id)] = token;
}

void Generation::forget_lock(std::string_view id, std::uint64_t token) {
  MutexLock g(locks_mutex);
  auto it = held.find(std::string(id));
  if (it != held.end() && it->second == token) held.erase(it);
}

void Generation::nudge_watcher() noexcept {
  std::uint32_t slot = 0;
  {
    MutexLock g(locks_mutex);
    slot = process_slot;
  }
  if (slot == 0) return;
  std::atomic<std::uint32_t>& requests = lock_context().processes[slot - 1].requests;
  requests.fetch_add(1, std::memory_order_acq_rel);
  futex_wake(requests, INT32_MAX);
}

void Store::Impl::stop_watcher() {
  if (!watcher) return;
  if (watcher_pid != self_identity().pid) {
    // A forked child: the thread runs in the parent only. Its handle can be
    // neither joined nor destroyed here (std::thread's destructor would
    // terminate), so the child lets go of it: one small object leaked.
    static_cast<void>(watcher.release());
    return;
  }
  watcher_stop.store(true);
  {
    MutexLock g(generations_mutex);
    for (const auto& generation : generations) {
      MutexLock locks(generation->locks_mutex);
      if (generation->process_slot != 0)
        futex_wake(generation->lock_context().processes[generation->process_slot - 1].requests, INT32_MAX);
    }
  }
  watcher->join();
  watcher.reset();
  watcher_stop.store(false);
}

// ---- fork ----------------------------------------------------------------

namespace {

// Every live Impl of this process, for the fork handlers.
std::mutex g_fork_registry_mutex;
std::vector<Store::Impl*>& fork_registry() {
  static std::vector<Store::Impl*> registry;
  return registry;
}

// Before fork(): takes every Store's process-private mutexes (registry,
// then per Store generations_mutex, watcher_mutex, each locks_mutex), so
// that no other thread holds one at the fork. Each is held only for
// bounded work (no user code runs under them), so this waits briefly.
// (Locks taken here are released by after_fork: beyond the analysis.)
void before_fork() NO_THREAD_SAFETY_ANALYSIS {
  run_test_hook(HookPoint::kForkPrepare);
  g_fork_registry_mutex.lock();
  for (Store::Impl* impl : fork_registry()) {
    impl->generations_mutex.lock();
    impl->watcher_mutex.lock();
    for (const auto& generation : impl->generations) generation->locks_mutex.lock();
  }
}

// After fork(), in the parent and in the child: the forking thread owns
// them all and lets them go. The child's bookkeeping then notices its new
// pid (own_process_slot) and starts from nothing held.
void after_fork() NO_THREAD_SAFETY_ANALYSIS {
  for (Store::Impl* impl : fork_registry()) {
    for (const auto& generation : impl->generations) generation->locks_mutex.unlock();
    impl->watcher_mutex.unlock();
    impl->generations_mutex.unlock();
  }
  g_fork_registry_mutex.unlock();
}

}  // namespace

Store::Impl::ForkRegistration::ForkRegistration(Impl* registered) : impl(registered) {
  static const bool handlers = [] { return ::pthread_atfork(before_fork, after_fork, after_fork) == 0; }();
  if (!handlers) throw Error(Errc::Io, "cannot register the store's fork handlers (pthread_atfork)");
  std::lock_guard<std::mutex> g(g_fork_registry_mutex);
  fork_registry().push_back(impl);
}

Store::Impl::ForkRegistration::~ForkRegistration() {
  std::lock_guard<std::mutex> g(g_fork_registry_mutex);
  auto& registry = fork_registry();
  registry.erase(std::remove(registry.begin(), registry.end(), impl), registry.end());
}

// Runs as the Store is destroyed, its watcher stopped: no other thread uses
// this bookkeeping any more (and taking locks_mutex before the shard locks
// would invert the lock order).
void Generation::release_held_locks() noexcept NO_THREAD_SAFETY_ANALYSIS {
  if (root == nullptr || process_slot_pid != self_identity().pid) return;
  // Locks still held through this Store end with it.
  for (const auto& [id, token] : held) {
    std::uint64_t hash = hash_session_id(id);
    Shard& shard = shard_for(hash);
    try {
      ShardGuard guard(*this, shard);
      SessionRecord* r = find_record_checked(shard, bounds_of(shard), id, hash).record;
      LockState* lock = r != nullptr ? lock_state_or_null(*this, shard, r) : nullptr;
      if (lock != nullptr && lock->token == token) {
        hand_over(lock_context(), *lock, segment_ms());
        settle_lock_state(*this, shard, r);
      }
    } catch (...) {
      // Best effort: waiters revoke a holder that is gone anyway (and a
      // rebuild revoked every lock of a replaced generation).
    }
  }
  if (process_slot != 0) free_process_slot(lock_context().processes[process_slot - 1]);
}

Store::Impl::~Impl() {
  stop_watcher();
  for (const auto& generation : generations) generation->release_held_locks();
}

// ---- acquire / release ----------------------------------------------------

static std::optional<LockToken> try_acquire_in(Generation& s, std::string_view id) {
  std::uint32_t process = s.own_process_slot();
  std::uint64_t now = segment_ms();
  LockedSession locked(s, id, now);
  SessionRecord* r = live_record(locked, id);
  std::optional<std::uint64_t> token =
      try_grant(s.lock_context(), take_lock_state(s, locked.shard(), r), self_identity(), process, now);
  if (!token) return std::nullopt;  // held or queued: the lock state stays
  r->last_access_unix_ms.store(now, std::memory_order_relaxed);
  s.remember_lock(id, *token);  // under the shard lock: known as held before anyone can ask for it back
  return LockToken{*token};
}

std::optional<LockToken> Store::try_acquire(std::string_view id) {
  return impl_->run([&](Generation& s) { return try_acquire_in(s, id); });
}

// The lock state a waiter's look works on, taken if the session has none
// (a hand-over that died after dequeuing the waiter may have left the lock
// idle, and the repair free). A look must not fail: a state that cannot be
// taken now (a full segment, a damaged reference) waits for the next look.
static LockState* lock_state_for_look(Generation& s, Shard& shard, SessionRecord* r) noexcept REQUIRES(shard.mutex) {
  try {
    return &take_lock_state(s, shard, r);
  } catch (...) {
    return nullptr;
  }
}

// Sleeps on the waiter slot until granted, told the session is gone, or out
// of time; checks the holder every kHolderCheckInterval.
static LockToken wait_for_grant(Generation& s, std::string_view id, std::uint64_t hash, std::uint32_t waiter,
                                Clock::time_point deadline) {
  WaiterSlot& slot = s.lock_context().waiters[waiter - 1];
  Shard& shard = s.shard_for(hash);
  for (;;) {
    std::uint32_t outcome = slot.outcome.load(std::memory_order_acquire);
    if (outcome == kWaitGranted) {
      LockToken token{slot.token};
      free_waiter_slot(slot);
      run_test_hook(HookPoint::kWaiterGranted);
      run_lock_probe(shm::LockProbe::kGranted, id);
      s.remember_lock(id, token.value);
      // The hand-over may have asked for the lock back already (others
      // queued), before this process knew it held it: its watcher, if it
      // has one, looks again now that it does.
      s.nudge_watcher();
      return token;
    }
    if (outcome == kWaitGone) {
      free_waiter_slot(slot);
      throw Error(Errc::NotFound, "session '" + std::string(id) + "' was removed while waiting for its lock");
    }
    auto now = Clock::now();
    if (now >= deadline) {
      ShardGuard guard(s, shard);
      if (slot.outcome.load(std::memory_order_acquire) != kWaitPending) continue;  // granted at the last moment
      if (SessionRecord* r = find_record_checked(shard, s.bounds_of(shard), id, hash).record) {
        if (LockState* lock = lock_state_or_null(s, shard, r)) dequeue_waiter(s.lock_context(), *lock, waiter);
        settle_lock_state(s, shard, r);
      }
      free_waiter_slot(slot);
      throw Error(Errc::LockTimeout, "timed out waiting for the lock of session '" + std::string(id) + "'");
    }
    futex_wait(slot.outcome, kWaitPending, std::min<Clock::duration>(kHolderCheckInterval, deadline - now));
    if (slot.outcome.load(std::memory_order_acquire) != kWaitPending) continue;
    ShardGuard guard(s, shard);
    if (SessionRecord* r = find_record_checked(shard, s.bounds_of(shard), id, hash).record) {
      if (LockState* lock = lock_state_for_look(s, shard, r))
        look_after_lock(s.lock_context(), *lock, waiter, segment_ms());
      settle_lock_state(s, shard, r);
    }
  }
}

// A rebuild under a waiter ends its wait in the old generation (the guard
// throws GenerationMoved); acquire then queues again in the new one, with
// what is left of its time.
static LockToken acquire_in(Generation& s, std::string_view id, Clock::time_point deadline) {
  if (std::optional<LockToken> token = try_acquire_in(s, id)) return *token;
  std::uint32_t process = s.own_process_slot();
  ProcessIdentity self = self_identity();
  std::uint32_t waiter = 0;
  {
    std::uint64_t now = segment_ms();
    LockedSession locked(s, id, now);
    SessionRecord* r = live_record(locked, id);
    LockState& lock = take_lock_state(s, locked.shard(), r);
    if (std::optional<std::uint64_t> token = try_grant(s.lock_context(), lock, self, process, now)) {
      s.remember_lock(id, *token);  // released between the two looks
      return LockToken{*token};
    }
    // Not granted: held or queued, so the lock state stays taken.
    if (lock.queue_length >= s.root->max_lock_queue)
      throw Error(Errc::LockTimeout, "the lock queue of session '" + std::string(id) + "' is full (" +
                                         std::to_string(s.root->max_lock_queue) + " waiting processes)");
    waiter = claim_waiter_slot(s.lock_context(), self, process);
    if (waiter == 0) throw Error(Errc::LockTimeout, "every lock waiter slot of the store is in use");
    enqueue_waiter(s.lock_context(), lock, waiter);
    request_release(s.lock_context(), lock, now);
  }
  run_lock_probe(shm::LockProbe::kReleaseRequested, id);
  return wait_for_grant(s, id, hash_session_id(id), waiter, deadline);
}

LockToken Store::acquire(std::string_view id, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  return impl_->run([&](Generation& s) { return acquire_in(s, id, deadline); });
}

// Only the bookkeeping of `token` itself is forgotten: a stale token must
// not make this process forget a lock it acquired again since (release
// requests would never reach it, and its Store would not free it).
void Store::release(std::string_view id, LockToken token) {
  impl_->run([&](Generation& s) {
    LockedSession locked(s, id, segment_ms());
    s.forget_lock(id, token.value);  // a lock lost or gone is no longer held either
    SessionRecord* r = live_record(locked, id);
    LockState* lock = find_lock_state(s, locked.shard(), r);
    if (lock == nullptr || lock->token != token.value) throw stale(id, token);
    run_lock_probe(shm::LockProbe::kHandingOver, id);
    hand_over(s.lock_context(), *lock, segment_ms());
    settle_lock_state(s, locked.shard(), r);  // free with nobody queued: the slot goes back
  });
}

static bool release_requested_in(Generation& s, std::string_view id, LockToken token) {
  LockedSession locked(s, id, segment_ms());
  SessionRecord* r = live_record(locked, id);
  const LockState* lock = find_lock_state(s, locked.shard(), r);
  if (lock == nullptr || lock->token != token.value) throw stale(id, token);
  return lock->release_requested_unix_ms != 0;
}

std::optional<std::uint32_t> Store::release_request_epoch() const noexcept {
  try {
    Generation& g = impl_->gen_checked();
    const pid_t self = self_identity().pid;
    std::uint32_t slot = 0;
    {
      MutexLock l(g.locks_mutex);
      if (g.process_slot_pid == self) slot = g.process_slot;
    }
    if (slot == 0) return std::nullopt;
    return g.lock_context().processes[slot - 1].requests.load(std::memory_order_acquire);
  } catch (...) {
    return std::nullopt;
  }
}

bool Store::release_requested(std::string_view id, LockToken token) const {
  return impl_->run([&](Generation& s) { return release_requested_in(s, id, token); });
}

bool Store::force_unlock(std::string_view id) {
  return impl_->run([&](Generation& s) {
    LockedSession locked(s, id, segment_ms());
    SessionRecord* r = live_record(locked, id);
    LockState* lock = find_lock_state(s, locked.shard(), r);
    if (lock == nullptr || lock->token == 0) return false;
    revoke(s.lock_context(), *lock, segment_ms());
    settle_lock_state(s, locked.shard(), r);
    return true;
  });
}

static std::vector<LockInfo> locks_in(Generation& s) {
  std::vector<LockInfo> out;
  for (std::uint32_t i = 0; i < s.root->shard_count; ++i) {
    Shard& shard = s.shards[i];
    ShardGuard guard(s, shard);
    std::uint64_t now = segment_ms();
    for_each_record(shard, s.bounds_of(shard), [&](SessionRecord* r) {
      const LockState* lock = lock_state_or_null(s, shard, r);  // a damaged reference: check reports it
      if (lock == nullptr || (lock->token == 0 && lock->queue_head == 0)) return;
      LockInfo& info = out.emplace_back();
      info.session.assign(record_id(r));
      fill_lock_info(s.lock_context(), *lock, now, info);
    });
  }
  std::sort(out.begin(), out.end(), [](const LockInfo& a, const LockInfo& b) { return a.session < b.session; });
  return out;
}

std::vector<LockInfo> Store::locks() const {
  return impl_->run([](Generation& s) { return locks_in(s); });
}

// ---- release requests -----------------------------------------------------

namespace {

// Runs the user's callback; whatever it throws stays on the watcher thread
// (an exception leaving a thread's function would end the process). A
// lock lost or a session removed meanwhile (StaleToken, NotFound from a
// release or commit in the callback) is a race the callback may meet, not a
// fault; anything else is reported once per Store on stderr. The lock stays
// as the callback left it (held, the request standing, the lease running).
void run_callback(Store::Impl& s, const std::function<void(const std::string&, LockToken)>& callback,
                  const std::string& id, LockToken token) noexcept {
  std::string what;
  try {
    callback(id, token);
    return;
  } catch (const Error& e) {
    if (e.code() == Errc::StaleToken || e.code() == Errc::NotFound) return;
    what = e.what();
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
    what = "an exception not derived from std::exception";
  }
  if (s.callback_failure_reported.exchange(true)) return;
  std::fprintf(stderr,
               "shmsession: a release-request callback of store '%s' threw (%s) for session '%s'; "
               "the lock stays held (reported once per Store)\n",
               s.name.c_str(), what.c_str(), id.c_str());
}

}  // namespace

// The watcher: sleeps on this process's request counter and runs the
// callback for each held lock with a new release request. After a rebuild
// it follows the store to the new generation (the rebuild revoked the old
// locks and wakes it); while the new one cannot be mapped it keeps
// watching the one it has.
static void watch_release_requests(Store::Impl* s) {
  Generation* watched = nullptr;
  ProcessSlot* slot = nullptr;
  std::unordered_map<std::string, std::uint64_t> notified;  // session -> token already told
  std::uint32_t seen = 0;
  while (!s->watcher_stop.load()) {
    run_test_hook(HookPoint::kWatcherLooks);
    Generation* current = watched != nullptr ? watched : &s->gen();
    try {
      current = &s->gen_checked();
    } catch (const Error&) {
      // The new generation cannot be mapped now: keep watching this one.
    }
    if (current != watched || slot == nullptr) {
      std::uint32_t index = current->own_process_slot();
      if (index == 0) {  // every slot in use: look again later
        std::this_thread::sleep_for(kWatcherPoll);
        continue;
      }
      watched = current;
      slot = &watched->lock_context().processes[index - 1];
      seen = slot->requests.load(std::memory_order_acquire) - 1;  // look once at start
      notified.clear();
    }
    std::uint32_t now = slot->requests.load(std::memory_order_acquire);
    if (now == seen) {
      futex_wait(slot->requests, seen, kWatcherPoll);
      continue;
    }
    seen = now;
    std::vector<std::pair<std::string, std::uint64_t>> held;
    std::function<void(const std::string&, LockToken)> callback;
    {
      MutexLock g(watched->locks_mutex);
      run_test_hook(HookPoint::kWatcherHoldingLocks);
      held.assign(watched->held.begin(), watched->held.end());
    }
    {
      MutexLock g(s->watcher_mutex);
      callback = s->on_release;
    }
    for (const auto& [id, token] : held) {
      try {
        if (notified[id] == token || !release_requested_in(*watched, id, LockToken{token})) continue;
      } catch (const Error&) {
        continue;  // lost or released meanwhile: nothing to ask
      } catch (const GenerationMoved&) {
        break;  // the next turn follows the store
      }
      notified[id] = token;  // one call per grant, even if the callback throws
      run_lock_probe(shm::LockProbe::kReleaseRequestDelivered, id);
      if (callback) run_callback(*s, callback, id, LockToken{token});
    }
  }
}

// The thread's function: nothing may leave it (the process would end).
static void run_watcher(Store::Impl* s) noexcept {
  for (;;) {
    try {
      watch_release_requests(s);
      return;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "shmsession: the release-request watcher of store '%s' failed (%s); it starts again\n",
                   s->name.c_str(), e.what());
    } catch (...) {
      std::fprintf(stderr, "shmsession: the release-request watcher of store '%s' failed; it starts again\n",
                   s->name.c_str());
    }
    std::this_thread::sleep_for(kWatcherPoll);
  }
}

void Store::on_release_request(std::function<void(const std::string& session, LockToken token)> callback) {
  Impl& s = *impl_;
  if (s.watcher && s.watcher_pid == self_identity().pid && s.watcher->get_id() == std::this_thread::get_id())
    throw Error(Errc::InvalidArgument, "on_release_request cannot be called from a release-request callback");
  s.stop_watcher();
  bool start = static_cast<bool>(callback);
  {
    MutexLock g(s.watcher_mutex);
    s.on_release = std::move(callback);
  }
  if (!start) return;
  if (s.gen_checked().own_process_slot() == 0)
    throw Error(Errc::Io, "every process slot of the store is in use: release requests cannot be delivered");
  s.watcher_pid = self_identity().pid;
  s.watcher = std::make_unique<std::thread>(run_watcher, &s);
}

}  // namespace shmsession
