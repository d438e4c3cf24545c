// LatencyHistogram: per-operation latencies of a measured loop, kept in
// log-linear buckets (at most ~0.8% error on any percentile), so that a run
// of any length costs a fixed 18 KiB and histograms of several processes
// merge exactly.
//
// Thread safety: none; one histogram belongs to one thread at a time.
// Cross-process safety: the type is trivially copyable and holds no
// pointers, so a forked worker may fill one that lives in a MAP_SHARED
// mapping and its parent may read it after the worker has exited.
#pragma once

#include <array>
#include <cstdint>
#include <type_traits>

namespace shmsession::bench {

class LatencyHistogram {
 public:
  // Values below kExactLimit ns get a bucket each; above, every power of two
  // is split into kExactLimit / 2 buckets.
  static constexpr std::uint32_t kSubBucketBits = 7;
  static constexpr std::uint64_t kExactLimit = std::uint64_t{1} << kSubBucketBits;
  // Largest recorded value (~18 minutes); longer ones are clamped to it.
  static constexpr std::uint64_t kMaxValueNs = (std::uint64_t{1} << 40) - 1;
  static constexpr std::size_t kBucketCount = kExactLimit + (40 - kSubBucketBits) * (kExactLimit / 2);

  void record(std::uint64_t ns) noexcept;
  void merge(const LatencyHistogram& other) noexcept;
  void clear() noexcept;

  std::uint64_t count() const noexcept { return count_; }
  std::uint64_t max_ns() const noexcept { return max_ns_; }
  double mean_ns() const noexcept;
  // The value at quantile q in [0, 1] (0.5 = median), as the middle of its
  // bucket; 0 if nothing was recorded.
  double percentile_ns(double q) const noexcept;

 private:
  static std::size_t bucket_of(std::uint64_t ns) noexcept;
  static double bucket_middle(std::size_t bucket) noexcept;

  std::array<std::uint64_t, kBucketCount> buckets_{};
  std::uint64_t count_ = 0;
  std::uint64_t sum_ns_ = 0;
  std::uint64_t max_ns_ = 0;
};

static_assert(std::is_trivially_copyable_v<LatencyHistogram>,
              "a histogram is handed from a forked worker through shared memory");

}  // namespace shmsession::bench
