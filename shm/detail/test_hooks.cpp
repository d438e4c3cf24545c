#include "shm/detail/test_hooks.hpp"

#ifdef SHMSESSION_TEST_HOOKS
#include <atomic>

namespace shmsession::shm::detail {
namespace {
std::atomic<TestHook> g_hook{nullptr};
}

void set_test_hook(TestHook hook) noexcept { g_hook.store(hook); }

void run_test_hook(HookPoint point) noexcept {
  if (TestHook hook = g_hook.load(std::memory_order_relaxed)) hook(point);
}

bool test_hook_active() noexcept { return g_hook.load(std::memory_order_relaxed) != nullptr; }

}  // namespace shmsession::shm::detail
#endif
