#include "tools/shmbench/latency.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace shmsession::bench {

namespace {
constexpr std::uint64_t kHalf = LatencyHistogram::kExactLimit / 2;
}  // namespace

std::size_t LatencyHistogram::bucket_of(std::uint64_t ns) noexcept {
  if (ns < kExactLimit) return static_cast<std::size_t>(ns);
  // shift >= 1 keeps (ns >> shift) in [kHalf, kExactLimit).
  const auto shift = static_cast<std::uint32_t>(std::bit_width(ns)) - kSubBucketBits;
  return static_cast<std::size_t>(kExactLimit + (shift - 1) * kHalf + ((ns >> shift) - kHalf));
}

double LatencyHistogram::bucket_middle(std::size_t bucket) noexcept {
  if (bucket < kExactLimit) return static_cast<double>(bucket);
  const std::uint64_t above = bucket - kExactLimit;
  const std::uint64_t shift = above / kHalf + 1;
  const std::uint64_t low = (kHalf + above % kHalf) << shift;
  const std::uint64_t width = std::uint64_t{1} << shift;
  return static_cast<double>(low) + static_cast<double>(width - 1) / 2.0;
}

void LatencyHistogram::record(std::uint64_t ns) noexcept {
  ns = std::min(ns, kMaxValueNs);
  ++buckets_[bucket_of(ns)];
  ++count_;
  sum_ns_ += ns;
  max_ns_ = std::max(max_ns_, ns);
}

void LatencyHistogram::merge(const LatencyHistogram& other) noexcept {
  for (std::size_t i = 0; i < kBucketCount; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  sum_ns_ += other.sum_ns_;
  max_ns_ = std::max(max_ns_, other.max_ns_);
}

void LatencyHistogram::clear() noexcept { *this = LatencyHistogram{}; }

double LatencyHistogram::mean_ns() const noexcept {
  return count_ == 0 ? 0.0 : static_cast<double>(sum_ns_) / static_cast<double>(count_);
}

double LatencyHistogram::percentile_ns(double q) const noexcept {
  if (count_ == 0) return 0.0;
  q = std::clamp(q, 0.0, 1.0);
  // The rank of the sample at quantile q, 1-based ("nearest rank").
  const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_))));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBucketCount; ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::min(bucket_middle(i), static_cast<double>(max_ns_));
  }
  return static_cast<double>(max_ns_);
}

}  // namespace shmsession::bench
