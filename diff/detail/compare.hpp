// Fast byte comparisons shared by the patch methods: eight bytes at a time,
// because unchanged stretches are the common case.
//
// Thread safety: pure functions; safe from any number of threads.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace shmsession::diff::detail {

// First index >= pos where a and b differ, or the shorter size.
inline std::size_t first_difference(std::string_view a, std::string_view b, std::size_t pos) noexcept {
  const std::size_t size = std::min(a.size(), b.size());
  while (pos + 8 <= size) {
    std::uint64_t x = 0;
    std::uint64_t y = 0;
    std::memcpy(&x, a.data() + pos, 8);
    std::memcpy(&y, b.data() + pos, 8);
    if (x != y) break;
    pos += 8;
  }
  while (pos < size && a[pos] == b[pos]) ++pos;
  return pos;
}

// Length of the longest common suffix of a and b.
inline std::size_t common_suffix_size(std::string_view a, std::string_view b) noexcept {
  const std::size_t size = std::min(a.size(), b.size());
  const char* a_end = a.data() + a.size();
  const char* b_end = b.data() + b.size();
  std::size_t n = 0;
  while (n + 8 <= size) {
    std::uint64_t x = 0;
    std::uint64_t y = 0;
    std::memcpy(&x, a_end - n - 8, 8);
    std::memcpy(&y, b_end - n - 8, 8);
    if (x != y) break;
    n += 8;
  }
  while (n < size && a_end[-1 - static_cast<std::ptrdiff_t>(n)] == b_end[-1 - static_cast<std::ptrdiff_t>(n)]) ++n;
  return n;
}

}  // namespace shmsession::diff::detail
