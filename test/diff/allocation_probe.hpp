// Records the largest single allocation made through operator new while a
// probe is alive, so tests can show that decoding a hostile length does not
// allocate for it. The replacement operators live in allocation_probe.cpp;
// link it into exactly one test executable at a time.
//
// Thread safety: counters are atomics; a probe measures every thread.
#pragma once

#include <cstddef>

namespace shmsession::test {

class AllocationProbe {
 public:
  AllocationProbe();   // resets the largest size seen and starts recording
  ~AllocationProbe();  // stops recording
  AllocationProbe(const AllocationProbe&) = delete;
  AllocationProbe& operator=(const AllocationProbe&) = delete;

  std::size_t largest() const noexcept;
};

}  // namespace shmsession::test
