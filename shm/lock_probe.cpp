#include "shm/lock_probe.hpp"

#include "shm/detail/lock_probe.hpp"

namespace shmsession::shm {

namespace detail {
std::atomic<LockProbeHook> g_lock_probe{nullptr};
}  // namespace detail

void set_lock_probe(LockProbeHook probe) noexcept { detail::g_lock_probe.store(probe); }

}  // namespace shmsession::shm
