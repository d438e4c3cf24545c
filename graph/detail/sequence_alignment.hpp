// Aligns the elements of two versions of a sequence by their subtree
// hashes, so that inserting or removing elements reports just those
// elements instead of shifting every later one.
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <utility>
#include <vector>

namespace shmsession::graph::detail {

// Above this many insertions plus deletions, the unequal middle of two
// sequences is paired by position instead (bounds time to O((n+m) * this)
// and memory to this^2 ints).
inline constexpr std::size_t kMaxAlignmentEdits = 512;

struct AlignmentStep {
  enum class Op : std::uint8_t {
    Pair,     // before[before] and after[after] correspond (equal, or to be compared)
    Removed,  // before[before] has no counterpart
    Added,    // after[after] has no counterpart
  };
  Op op;
  std::uint32_t before;
  std::uint32_t after;
  friend bool operator==(const AlignmentStep&, const AlignmentStep&) = default;
};

// The index pairs (i, j), increasing, of a longest common subsequence of
// `before` and `after` (Myers' O((n+m)D) algorithm), or std::nullopt when
// more than `max_edits` insertions and deletions separate them.
// Throws: std::bad_alloc.
std::optional<std::vector<std::pair<std::uint32_t, std::uint32_t>>> longest_common_subsequence(
    std::span<const std::uint64_t> before, std::span<const std::uint64_t> after, std::size_t max_edits);

// Steps covering every element of both sequences in order: equal common
// prefix and suffix, then a longest common subsequence of the middle;
// between two equal pairs, leftover elements are paired by position
// (modification candidates) and the surplus is Removed or Added.
// Throws: std::bad_alloc.
std::vector<AlignmentStep> align_sequences(std::span<const std::uint64_t> before, std::span<const std::uint64_t> after,
                                           std::size_t max_edits = kMaxAlignmentEdits);

}  // namespace shmsession::graph::detail
