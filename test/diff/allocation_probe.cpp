#include "test/diff/allocation_probe.hpp"

#include <atomic>
#include <cstdlib>
#include <new>

namespace {

std::atomic<bool> g_recording{false};
std::atomic<std::size_t> g_largest{0};

void* allocate(std::size_t size) {
  if (g_recording.load(std::memory_order_relaxed)) {
    std::size_t seen = g_largest.load(std::memory_order_relaxed);
    while (size > seen && !g_largest.compare_exchange_weak(seen, size, std::memory_order_relaxed)) {
    }
  }
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}

}  // namespace

void* operator new(std::size_t size) { return allocate(size); }
void* operator new[](std::size_t size) { return allocate(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace shmsession::test {

AllocationProbe::AllocationProbe() {
  g_largest.store(0);
  g_recording.store(true);
}

AllocationProbe::~AllocationProbe() { g_recording.store(false); }

std::size_t AllocationProbe::largest() const noexcept { return g_largest.load(); }

}  // namespace shmsession::test
