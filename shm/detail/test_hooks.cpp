#include "shm/detail/test_hooks.hpp"

#ifdef SHMSESSION_TEST_HOOKS
#include <atomic>

namespace shmsession::shm::detail {
namespace {
std::atomic<TestHook> g_hook{nullptr};
}  // namespace

void set_test_hook(TestHook hook) noexcept { g_hook.store(hook); }

void run_test_hook(HookPoint point) noexcept {
  if (TestHook hook = g_hook.load(std::memory_order_relaxed)) hook(point);
}

bool test_hook_active() noexcept { return g_hook.load(std::memory_order_relaxed) != nullptr; }

}  // namespace shmsession::shm::detail
#endif

#ifdef SHMSESSION_TEST_HOOKS
#include "shm/detail/clock.hpp"

namespace shmsession::shm::detail {
namespace {
std::atomic<std::int64_t> g_clock_offsets[3]{};
}

void set_test_clock_offset_ms(TestClock clock, std::int64_t offset_ms) noexcept {
  g_clock_offsets[static_cast<int>(clock)].store(offset_ms, std::memory_order_relaxed);
}

std::int64_t test_clock_offset_ms(TestClock clock) noexcept {
  return g_clock_offsets[static_cast<int>(clock)].load(std::memory_order_relaxed);
}

}  // namespace shmsession::shm::detail
#endif
