// Bounds of a mapped segment, for following links read from it on the
// paths that must survive damage (reads handing values out, check, recover,
// the rebuild, list): a link is followed only if the struct it points to
// lies wholly inside the segment and is aligned for its type. A bit flipped in an offset_ptr then makes the
// target fail this check, or its magic, instead of faulting.
//
// Thread and process safety: a plain value; set once at attach.
#pragma once

#include <cstddef>
#include <cstdint>

namespace shmsession::shm::detail {

struct SegmentBounds {
  std::uintptr_t begin = 0;
  std::uintptr_t end = 0;

  // Whether [p, p + bytes) lies inside the segment and p is a multiple of
  // `align`.
  bool holds(const void* p, std::uint64_t bytes, std::size_t align) const noexcept {
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    return a >= begin && a <= end && a % align == 0 && bytes <= end - a;
  }
  template <typename T>
  bool holds(const T* p, std::uint64_t bytes = sizeof(T)) const noexcept {
    return holds(static_cast<const void*>(p), bytes, alignof(T));
  }
  // Bytes from p to the segment's end. Requires: holds(p, 0, 1).
  std::uint64_t room(const void* p) const noexcept { return end - reinterpret_cast<std::uintptr_t>(p); }
};

}  // namespace shmsession::shm::detail
