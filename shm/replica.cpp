// A standby's position in its primary's change log, kept in the segment
// under its own robust mutex (behaviour in shm/replica.hpp). Replica::apply
// is in store_sessions.cpp, beside the commit whose rules it shares.
#include "shm/replica.hpp"

#include <cstring>

#include "shm/detail/robust_mutex.hpp"
#include "shm/detail/store_impl.hpp"

namespace shmsession {

using namespace shm::detail;

std::string ReplicaPosition::primary_store_id_hex() const { return hex_store_id(primary_store_id); }

bool ReplicaPosition::follows_a_primary() const noexcept {
  for (std::uint8_t b : primary_store_id)
    if (b != 0) return true;
  return false;
}

namespace {
// A writer that died mid-update may have left a new primary id beside an old
// sequence: forget the position, so the backup asks for a full resync.
void forget_position(StoreRoot& root) {
  std::memset(root.replica_of, 0, sizeof root.replica_of);
  root.replica_applied_seq = 0;
}

// The replica position's lock; GenerationMoved once a rebuild copied it
// (the rebuilder holds this lock while it copies and marks the move).
class ReplicaGuard : public RobustLockGuard {
 public:
  explicit ReplicaGuard(StoreRoot& root) : RobustLockGuard(root.replica_mutex, [&] { forget_position(root); }) {
    if (root.moved.load(std::memory_order_acquire) != 0) throw GenerationMoved{};
  }
};

}  // namespace

ReplicaPosition Replica::position() const {
  return impl_->run([](Generation& g) {
    ReplicaGuard guard(*g.root);
    ReplicaPosition position;
    std::memcpy(position.primary_store_id.data(), g.root->replica_of, position.primary_store_id.size());
    position.applied_seq = g.root->replica_applied_seq;
    return position;
  });
}

void Replica::set_position(const ReplicaPosition& position) {
  impl_->run([&](Generation& g) {
    ReplicaGuard guard(*g.root);
    std::memcpy(g.root->replica_of, position.primary_store_id.data(), position.primary_store_id.size());
    g.root->replica_applied_seq = position.applied_seq;
  });
}

}  // namespace shmsession
