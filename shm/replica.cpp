// A standby's position in its primary's change log, kept in the segment
// as two copies under its own robust mutex (behaviour in shm/replica.hpp). Replica::apply
// is in store_sessions.cpp, beside the commit whose rules it shares.
#include "shm/replica.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include "shm/detail/robust_mutex.hpp"
#include "shm/detail/store_impl.hpp"
#include "shm/detail/test_hooks.hpp"

namespace shmsession {

using namespace shm::detail;

std::string ReplicaPosition::primary_store_id_hex() const { return hex_store_id(primary_store_id); }

bool ReplicaPosition::follows_a_primary() const noexcept {
  for (std::uint8_t b : primary_store_id)
    if (b != 0) return true;
  return false;
}

namespace {

// The replica position's lock; GenerationMoved once a rebuild copied it
// (the rebuilder holds this lock while it copies and marks the move). A
// holder that died leaves nothing to repair: the current copy of the
// position is always a complete one (segment_format.hpp, StoreRoot).
class ReplicaGuard : public RobustLockGuard {
 public:
  explicit ReplicaGuard(StoreRoot& root) : RobustLockGuard(root.replica_mutex, [] {}) {
    if (root.moved.load(std::memory_order_acquire) != 0) throw GenerationMoved{};
  }
};

ReplicaPosition copied(const ReplicaPositionCopy& copy) {
  ReplicaPosition position;
  std::memcpy(position.primary_store_id.data(), copy.primary_store_id, position.primary_store_id.size());
  position.applied_seq = copy.applied_seq;
  return position;
}

bool promoted(const StoreRoot& root) noexcept {
  return (root.failover.load(std::memory_order_acquire) & kPromotedBit) != 0;
}

// Requires: replica_mutex held.
const ReplicaPositionCopy& current_position(const StoreRoot& root) noexcept {
  return root.replica_positions[root.replica_current.load(std::memory_order_acquire) & 1u];
}

// Writes `position` into the copy that is not current, then makes it
// current. Requires: replica_mutex held.
void store_position(StoreRoot& root, const ReplicaPosition& position) {
  const std::uint32_t spare = (root.replica_current.load(std::memory_order_relaxed) & 1u) ^ 1u;
  ReplicaPositionCopy& copy = root.replica_positions[spare];
  std::memcpy(copy.primary_store_id, position.primary_store_id.data(), position.primary_store_id.size());
  run_test_hook(HookPoint::kReplicaPositionWrite);
  copy.applied_seq = position.applied_seq;
  root.replica_current.store(spare, std::memory_order_release);
}

// Takes and gives back every shard lock once: a change that checked the
// store's failover state before it changed is published by then, and every
// later one sees the new state (check_writer).
void pass_every_shard(Store::Impl& impl) {
  impl.run([](Generation& g) {
    for (std::uint32_t i = 0; i < g.root->shard_count; ++i) ShardGuard guard(g, g.shards[i]);
  });
}

}  // namespace

ReplicaPosition Replica::position() const {
  return impl_->run([](Generation& g) {
    ReplicaGuard guard(*g.root);
    if (promoted(*g.root)) return ReplicaPosition{};  // a promotion killed before it cleared the position
    return copied(current_position(*g.root));
  });
}

void Replica::set_position(const ReplicaPosition& position) {
  impl_->run([&](Generation& g) {
    ReplicaGuard guard(*g.root);
    check_writer(g, Writer::Replica);
    store_position(*g.root, position);
  });
}

FailoverState Replica::failover_state() const {
  return impl_->run([](Generation& g) {
    ReplicaGuard guard(*g.root);
    FailoverState state;
    const std::uint64_t word = g.root->failover.load(std::memory_order_acquire);
    state.epoch = word >> 1;
    state.promoted = (word & kPromotedBit) != 0;
    state.fenced_by = g.root->fenced_by.load(std::memory_order_acquire);
    state.promoted_from = copied(g.root->promoted_from);
    return state;
  });
}

std::uint64_t Replica::promote() {
  const std::uint64_t epoch = impl_->run([](Generation& g) {
    ReplicaGuard guard(*g.root);
    StoreRoot& root = *g.root;
    const std::uint64_t next = (root.failover.load(std::memory_order_relaxed) >> 1) + 1;
    if (next > (std::numeric_limits<std::uint64_t>::max() >> 1))
      throw Error(Errc::InvalidArgument, "store '" + g.name + "' has reached the last epoch");
    if (!promoted(root)) root.promoted_from = current_position(root);  // promoted_from means nothing until then
    run_test_hook(HookPoint::kFailoverWrite);
    root.failover.store(next << 1 | kPromotedBit, std::memory_order_seq_cst);  // the deciding store
    run_test_hook(HookPoint::kFailoverWrite);
    root.fenced_by.store(0, std::memory_order_seq_cst);
    store_position(root, ReplicaPosition{});
    return next;
  });
  pass_every_shard(*impl_);
  return epoch;
}

std::uint64_t Replica::fence(std::uint64_t by) {
  const std::uint64_t recorded = impl_->run([&](Generation& g) {
    ReplicaGuard guard(*g.root);
    StoreRoot& root = *g.root;
    const std::uint64_t word = root.failover.load(std::memory_order_relaxed);
    const std::uint64_t value = std::max(root.fenced_by.load(std::memory_order_relaxed), by != 0 ? by : word >> 1);
    root.fenced_by.store(value, std::memory_order_seq_cst);  // the deciding store (an epoch is at least 1)
    run_test_hook(HookPoint::kFailoverWrite);
    root.failover.store(word & ~kPromotedBit, std::memory_order_seq_cst);
    return root.fenced_by.load(std::memory_order_relaxed);
  });
  pass_every_shard(*impl_);
  return recorded;
}

bool Replica::admit(std::uint64_t epoch) {
  return impl_->run([&](Generation& g) {
    ReplicaGuard guard(*g.root);
    StoreRoot& root = *g.root;
    const std::uint64_t word = root.failover.load(std::memory_order_relaxed);
    if ((word & kPromotedBit) != 0 || epoch < (word >> 1)) return false;
    if (epoch > (std::numeric_limits<std::uint64_t>::max() >> 1)) return false;
    root.failover.store(epoch << 1, std::memory_order_seq_cst);
    return true;
  });
}

}  // namespace shmsession
