// Where the library reports its lock probes (shm/lock_probe.hpp).
#pragma once

#include <atomic>
#include <string_view>

#include "shm/lock_probe.hpp"

namespace shmsession::shm::detail {

extern std::atomic<LockProbeHook> g_lock_probe;

inline void run_lock_probe(LockProbe point, std::string_view session) noexcept {
  if (LockProbeHook probe = g_lock_probe.load(std::memory_order_relaxed); probe != nullptr) [[unlikely]]
    probe(point, session);
}

}  // namespace shmsession::shm::detail
