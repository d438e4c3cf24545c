// Store::Impl: one process's attachment to a segment, shared by the files
// that implement Store (store.cpp: lifecycle and statistics;
// store_sessions.cpp: session operations).
//
// Thread safety: the segment fields are set at attach and never change
// afterwards; all shared state is in the segment, guarded by shard locks.
// The per-process lock bookkeeping (process slot, held locks, watcher) is
// guarded by `locks_mutex`.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include <boost/interprocess/managed_shared_memory.hpp>

#include "shm/detail/lock_queue.hpp"
#include "shm/detail/robust_mutex.hpp"
#include "shm/detail/session_table.hpp"
#include "shm/detail/segment_format.hpp"
#include "shm/store.hpp"

namespace shmsession {

struct Store::Impl {
  std::string name;
  shm::detail::bip::managed_shared_memory segment;
  shm::detail::SegmentHeader* header = nullptr;
  shm::detail::StoreRoot* root = nullptr;
  shm::detail::Shard* shards = nullptr;
  shm::detail::ChangeSlot* ring = nullptr;
  std::uint32_t shard_mask = 0;

  // Process locks held through this Store, and the release-request watcher.
  std::mutex locks_mutex;
  std::uint32_t process_slot = 0;  // ProcessSlot index + 1, claimed on first acquire
  pid_t process_slot_pid = 0;      // the pid it was claimed for (a fork must claim anew)
  std::unordered_map<std::string, std::uint64_t> held;  // session -> token
  std::function<void(const std::string&, LockToken)> on_release;
  std::thread watcher;
  std::atomic<bool> watcher_stop{false};

  ~Impl();

  shm::detail::LockContext lock_context() const noexcept { return {root, root->waiters.get(), root->processes.get()}; }
  // This process's slot (claimed lazily; 0 if the table is full).
  std::uint32_t own_process_slot();
  void remember_lock(std::string_view id, std::uint64_t token);
  void forget_lock(std::string_view id);
  void stop_watcher();

  shm::detail::Shard& shard_for(std::uint64_t hash) noexcept { return shards[(hash >> 32) & shard_mask]; }

  // A validated session id, its hash and its shard. Throws: InvalidArgument.
  struct Place {
    std::uint64_t hash;
    shm::detail::Shard& shard;
  };
  Place place(std::string_view id);

  // Segment memory, or nullptr when the segment is full.
  // Throws: Error(Corrupt) when the segment allocator is unusable (a process
  // died inside it).
  void* allocate(std::uint64_t bytes);
  void deallocate(void* p) noexcept;
  [[noreturn]] void throw_full(std::uint64_t bytes, const char* what) const;

  // Runs when a shard lock is taken over from a dead holder.
  void repair(shm::detail::Shard& shard) noexcept;

  // A change-log entry in two halves around the change itself (shard lock
  // held): begin takes the sequence and records the pending change; end
  // stamps the slot and clears it.
  std::uint64_t begin_change(shm::detail::Shard& shard, shm::detail::SessionRecord* record,
                             ChangeKind kind) noexcept;
  void end_change(shm::detail::Shard& shard, std::uint64_t seq, ChangeKind kind, std::uint64_t version,
                  std::string_view id) noexcept;
};

namespace shm::detail {

// The shard lock with the store's repair routine attached.
class ShardGuard : public RobustLockGuard {
 public:
  ShardGuard(Store::Impl& impl, Shard& shard) : RobustLockGuard(shard.mutex, [&] { impl.repair(shard); }) {}
};

// Whether a session has idled past its timeout at `now_ms`.
inline bool expired(const SessionRecord* r, std::uint64_t now_ms) noexcept {
  if (r->idle_timeout_s == 0) return false;
  return now_ms > r->last_access_unix_ms.load(std::memory_order_relaxed) + std::uint64_t{r->idle_timeout_s} * 1000;
}

// The shard lock of a session's shard, held for this object's life, and the
// session's record if it is there and not expired (else nullptr).
class LockedSession {
 public:
  LockedSession(Store::Impl& s, std::string_view id, std::uint64_t now_ms)
      : place_(s.place(id)), guard_(s, place_.shard), record_(find_record(place_.shard, id, place_.hash)) {
    if (record_ != nullptr && expired(record_, now_ms)) record_ = nullptr;
  }
  SessionRecord* record() const noexcept { return record_; }
  Shard& shard() const noexcept { return place_.shard; }

 private:
  Store::Impl::Place place_;
  ShardGuard guard_;
  SessionRecord* record_;
};

}  // namespace shm::detail
}  // namespace shmsession
