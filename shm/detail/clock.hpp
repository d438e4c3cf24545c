// Time as the store keeps it, read through one seam (one clock every
// process shares and no operator can step; tests drive it).
//
// segment_ms(): CLOCK_BOOTTIME, the clock of every time the segment
// compares: lock grants, release requests and leases, sessions' last
// access and idle expiry. The same in every process of the host, never
// stepped (date, settimeofday, NTP), and it runs on through a suspend so
// idle sessions still expire. It means nothing on another host or after a
// reboot, which a segment in tmpfs does not survive; replicas carry no
// segment times (a backup starts its sessions' idle time afresh).
// client_ms(): CLOCK_MONOTONIC_COARSE, one process's own time for what it
// alone compares (a Client's idle bound): read at every open, so the
// cheapest clock there is (4 ns against 27 for the fine ones, to within a
// tick of 1-4 ms), never stepped.
// unix_ms(): CLOCK_REALTIME, for dates shown to people (a store's or a
// session's creation, the agent's status); to_unix_ms() converts a segment
// time to one for display.
//
// Thread safety: all functions may be called from any thread.
// Test-hooks builds: set_test_clock_offset_ms() shifts one clock in this
// process (and in the children it forks afterwards), as a clock step or
// time passing would.
#pragma once

#include <time.h>

#include <cstdint>

namespace shmsession::shm::detail {

enum class TestClock { kWall, kSegment, kClient };

#ifdef SHMSESSION_TEST_HOOKS
void set_test_clock_offset_ms(TestClock clock, std::int64_t offset_ms) noexcept;
std::int64_t test_clock_offset_ms(TestClock clock) noexcept;
#else
inline std::int64_t test_clock_offset_ms(TestClock) noexcept { return 0; }
#endif

inline std::uint64_t clock_ms(clockid_t id, TestClock seam) noexcept {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1000000 +
         static_cast<std::uint64_t>(test_clock_offset_ms(seam));
}

// Wall-clock milliseconds since the Unix epoch (CLOCK_REALTIME).
inline std::uint64_t unix_ms() noexcept { return clock_ms(CLOCK_REALTIME, TestClock::kWall); }

// Milliseconds since boot (CLOCK_BOOTTIME): time as the segment keeps it.
inline std::uint64_t segment_ms() noexcept { return clock_ms(CLOCK_BOOTTIME, TestClock::kSegment); }

// Milliseconds of CLOCK_MONOTONIC_COARSE: time as a Client keeps it.
inline std::uint64_t client_ms() noexcept { return clock_ms(CLOCK_MONOTONIC_COARSE, TestClock::kClient); }

// A segment time (0: none) as wall-clock milliseconds, for display.
inline std::uint64_t to_unix_ms(std::uint64_t segment_time) noexcept {
  return segment_time == 0 ? 0 : segment_time + unix_ms() - segment_ms();
}

}  // namespace shmsession::shm::detail
