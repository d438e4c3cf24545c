#include "tools/shmbench/visit_pattern.hpp"

#include <algorithm>
#include <cmath>

namespace shmsession::bench {

namespace {

// A uniform double in [0, 1) from 53 random bits.
double unit(SplitMix64& random) noexcept { return static_cast<double>(random.next() >> 11) * 0x1.0p-53; }

}  // namespace

std::optional<Visit> VisitPattern::next() noexcept {
  if (started_ >= sessions_) return std::nullopt;
  const std::uint64_t draw = random_.below(100);
  if (started_ == 0 || draw < kNewPercent) return Visit{started_++, VisitKind::New};
  if (draw < kNewPercent + kFollowUpPercent) {
    const std::uint64_t back = random_.below(std::min(kFollowUpWindow, started_));
    return Visit{started_ - 1 - back, VisitKind::FollowUp};
  }
  // Log-uniform distance d in [1, window]: d = window^u, u uniform in [0, 1).
  const std::uint64_t window = std::min(kReturnWindow, started_);
  const auto distance = static_cast<std::uint64_t>(std::pow(static_cast<double>(window), unit(random_)));
  return Visit{started_ - std::clamp<std::uint64_t>(distance, 1, window), VisitKind::Returning};
}

std::uint64_t VisitPattern::count_requests(std::uint64_t sessions, std::uint64_t seed) noexcept {
  VisitPattern pattern(sessions, seed);
  std::uint64_t requests = 0;
  while (pattern.next()) ++requests;
  return requests;
}

}  // namespace shmsession::bench
