// The input layout of the delta_fuzz target, shared by the target
// (delta_fuzz.cpp, built with clang and libFuzzer) and the seed generator
// (delta_fuzz_seeds.cpp, built with the project's compiler).
//
// Byte 0 picks a mode (its value modulo kModeCount); the rest is the payload:
//   Frame: a whole delta frame, decoded as received;
//   Body:  the bytes between the 16-byte header and the checksum; the target
//          wraps them in a header and checksum so mutations reach the fields
//          behind the frame checksum;
//   Patch: a patch applied to patch_base() and to an empty base;
//   Diff:  byte 0 of the payload splits the rest into base and target, and
//          make_patch/apply_patch must round-trip.
// Decoded deltas are applied to fixed_base() (a copy).
//
// Thread safety: constants and pure functions only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "diff/delta.hpp"

namespace shmsession::fuzz {

enum class Mode : std::uint8_t { Frame = 0, Body = 1, Patch = 2, Diff = 3 };
inline constexpr std::uint8_t kModeCount = 4;

// Small caps keep every exec fast; any allocation much above them is a bug
// (the smoke test runs with -malloc_limit_mb=64).
inline diff::DeltaLimits fuzz_limits() {
  diff::DeltaLimits limits;
  limits.max_frame_bytes = std::size_t{1} << 20;
  limits.max_changes = 1024;
  limits.max_value_bytes = std::size_t{1} << 20;
  return limits;
}

// The attributes every decoded delta is applied to.
inline diff::AttributeMap fixed_base() {
  std::string cart;
  for (int i = 0; i < 40; ++i) cart += "item{id=" + std::to_string(1000 + i) + ",qty=" + std::to_string(i % 7) + "};";
  return diff::AttributeMap{
      {"cart", {cart, 0}},
      {"profile", {"name=Ada;lang=en;theme=dark", 1}},
      {"token", {std::string("\x00\x01\x02\xff\xfe\xfd\x10\x20", 8), 0}},
  };
}

inline std::string patch_base() { return fixed_base().at("cart").first; }

}  // namespace shmsession::fuzz
