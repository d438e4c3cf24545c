#include "graph/detail/sequence_alignment.hpp"

#include <algorithm>

namespace shmsession::graph::detail {
namespace {

using IndexPairs = std::vector<std::pair<std::uint32_t, std::uint32_t>>;

// Myers' furthest-reaching x on diagonal k after d edits, stored for every
// d so the path can be traced back: step d holds k = -d..d from d*d on.
class Trace {
 public:
  void record(const std::vector<std::int64_t>& v, std::int64_t offset, std::int64_t d) {
    for (std::int64_t k = -d; k <= d; ++k) steps_.push_back(static_cast<std::int32_t>(v[offset + k]));
  }
  std::int64_t x(std::int64_t d, std::int64_t k) const { return steps_[d * d + k + d]; }

 private:
  std::vector<std::int32_t> steps_;
};

// Walks back from (n, m) through the recorded steps, collecting the diagonal
// moves (equal elements).
IndexPairs trace_back(const Trace& trace, std::int64_t d_end, std::int64_t n, std::int64_t m) {
  IndexPairs pairs;
  std::int64_t x = n;
  std::int64_t y = m;
  for (std::int64_t d = d_end; d > 0; --d) {
    const std::int64_t k = x - y;
    const bool down = k == -d || (k != d && trace.x(d - 1, k - 1) < trace.x(d - 1, k + 1));
    const std::int64_t prev_k = down ? k + 1 : k - 1;
    const std::int64_t prev_x = trace.x(d - 1, prev_k);
    const std::int64_t snake_x = down ? prev_x : prev_x + 1;
    while (x > snake_x) {
      --x;
      --y;
      pairs.emplace_back(static_cast<std::uint32_t>(x), static_cast<std::uint32_t>(y));
    }
    x = prev_x;
    y = prev_x - prev_k;
  }
  while (x > 0 && y > 0) {
    --x;
    --y;
    pairs.emplace_back(static_cast<std::uint32_t>(x), static_cast<std::uint32_t>(y));
  }
  std::reverse(pairs.begin(), pairs.end());
  return pairs;
}

// Pairs before[b0, b1) with after[a0, a1) by position; the surplus is
// Removed or Added.
void pair_by_position(std::uint32_t b0, std::uint32_t b1, std::uint32_t a0, std::uint32_t a1,
                      std::vector<AlignmentStep>& steps) {
  while (b0 < b1 && a0 < a1) steps.push_back({AlignmentStep::Op::Pair, b0++, a0++});
  while (b0 < b1) steps.push_back({AlignmentStep::Op::Removed, b0++, 0});
  while (a0 < a1) steps.push_back({AlignmentStep::Op::Added, 0, a0++});
}

}  // namespace

std::optional<IndexPairs> longest_common_subsequence(std::span<const std::uint64_t> before,
                                                     std::span<const std::uint64_t> after, std::size_t max_edits) {
  const auto n = static_cast<std::int64_t>(before.size());
  const auto m = static_cast<std::int64_t>(after.size());
  const std::int64_t max_d = std::min<std::int64_t>(n + m, static_cast<std::int64_t>(max_edits));
  const std::int64_t offset = max_d + 1;
  std::vector<std::int64_t> v(static_cast<std::size_t>(2 * max_d + 3), 0);
  Trace trace;
  for (std::int64_t d = 0; d <= max_d; ++d) {
    for (std::int64_t k = -d; k <= d; k += 2) {
      const bool down = k == -d || (k != d && v[offset + k - 1] < v[offset + k + 1]);
      std::int64_t x = down ? v[offset + k + 1] : v[offset + k - 1] + 1;
      std::int64_t y = x - k;
      while (x < n && y < m && before[x] == after[y]) {
        ++x;
        ++y;
      }
      v[offset + k] = x;
      if (x >= n && y >= m) return trace_back(trace, d, n, m);
    }
    trace.record(v, offset, d);
  }
  return std::nullopt;
}

std::vector<AlignmentStep> align_sequences(std::span<const std::uint64_t> before, std::span<const std::uint64_t> after,
                                           std::size_t max_edits) {
  const auto n = static_cast<std::uint32_t>(before.size());
  const auto m = static_cast<std::uint32_t>(after.size());
  std::uint32_t prefix = 0;
  while (prefix < n && prefix < m && before[prefix] == after[prefix]) ++prefix;
  std::uint32_t suffix = 0;
  while (suffix < n - prefix && suffix < m - prefix && before[n - 1 - suffix] == after[m - 1 - suffix]) ++suffix;

  std::vector<AlignmentStep> steps;
  steps.reserve(std::max(n, m));
  for (std::uint32_t i = 0; i < prefix; ++i) steps.push_back({AlignmentStep::Op::Pair, i, i});
  const std::uint32_t b_end = n - suffix;
  const std::uint32_t a_end = m - suffix;
  auto common = longest_common_subsequence(before.subspan(prefix, b_end - prefix),
                                           after.subspan(prefix, a_end - prefix), max_edits);
  std::uint32_t b = prefix;
  std::uint32_t a = prefix;
  if (common) {
    for (auto [i, j] : *common) {
      pair_by_position(b, prefix + i, a, prefix + j, steps);
      steps.push_back({AlignmentStep::Op::Pair, prefix + i, prefix + j});
      b = prefix + i + 1;
      a = prefix + j + 1;
    }
  }
  pair_by_position(b, b_end, a, a_end, steps);
  for (std::uint32_t i = 0; i < suffix; ++i) steps.push_back({AlignmentStep::Op::Pair, b_end + i, a_end + i});
  return steps;
}

}  // namespace shmsession::graph::detail
