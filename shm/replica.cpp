// A standby's position in its primary's change log, kept in the segment
// as two copies under its own robust mutex (behaviour in shm/replica.hpp). Replica::apply
// is in store_sessions.cpp, beside the commit whose rules it shares.
#include "shm/replica.hpp"

#include <cstring>

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

}  // namespace

ReplicaPosition Replica::position() const {
  return impl_->run([](Generation& g) {
    ReplicaGuard guard(*g.root);
    const ReplicaPositionCopy& current =
        g.root->replica_positions[g.root->replica_current.load(std::memory_order_acquire) & 1u];
    ReplicaPosition position;
    std::memcpy(position.primary_store_id.data(), current.primary_store_id, position.primary_store_id.size());
    position.applied_seq = current.applied_seq;
    return position;
  });
}

void Replica::set_position(const ReplicaPosition& position) {
  impl_->run([&](Generation& g) {
    ReplicaGuard guard(*g.root);
    const std::uint32_t spare = (g.root->replica_current.load(std::memory_order_relaxed) & 1u) ^ 1u;
    ReplicaPositionCopy& copy = g.root->replica_positions[spare];
    std::memcpy(copy.primary_store_id, position.primary_store_id.data(), position.primary_store_id.size());
    run_test_hook(HookPoint::kReplicaPositionWrite);
    copy.applied_seq = position.applied_seq;
    g.root->replica_current.store(spare, std::memory_order_release);
  });
}

}  // namespace shmsession
