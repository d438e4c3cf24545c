// Cross-process futex wait/wake on a 32-bit word in the shared segment
// (shared futexes: keyed by the page, so each process may map the segment at
// its own address). Thread and process safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace shmsession::shm::detail {

// Sleeps while *word == expected, at most `timeout`; returns early on a wake,
// a signal, or if the word already differs.
void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, std::chrono::nanoseconds timeout) noexcept;
// Wakes up to `count` sleepers on `word`.
void futex_wake(std::atomic<std::uint32_t>& word, int count) noexcept;

}  // namespace shmsession::shm::detail
