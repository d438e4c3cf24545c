// Wall-clock milliseconds, as stored in the segment (creation, last access,
// lock grant times). CLOCK_REALTIME so operators read real dates; idle
// expiry follows wall-clock time as Redis's does. Thread safe.
#pragma once

#include <time.h>

#include <cstdint>

namespace shmsession::shm::detail {

inline std::uint64_t unix_ms() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1000000;
}

}  // namespace shmsession::shm::detail
