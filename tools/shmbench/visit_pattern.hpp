// VisitPattern: the request sequence of the `worker` workload, a web
// shop's traffic as one app-server worker sees it over a long run. Each
// request is drawn from the seed alone, so the measured worker, the Redis
// peer and the verifier that replays it see the same sequence:
//   50%  a new visitor: the next session (0, 1, 2, ...), its first page
//   35%  a visitor clicking on: one of the 32 sessions started last,
//        uniformly (anonymous visits are short: a couple of pages)
//   15%  a returning visitor: a session started earlier, its distance back
//        from the newest drawn log-uniformly in [1, min(100,000, started)]
//        (Zipf-like in recency: each decade of distance equally likely)
// The sequence ends when `sessions` distinct sessions have been started,
// about 2 requests per session. Until 32 sessions exist a follow-up or a
// return picks among those there are.
//
// Thread safety: none; one pattern belongs to one thread. Holds O(1)
// memory whatever the number of sessions (a worker's RSS is measured).
// Cross-process safety: plain values; safe to use after fork().
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "tools/shmbench/session_shape.hpp"

namespace shmsession::bench {

enum class VisitKind : std::uint8_t { New, FollowUp, Returning };

struct Visit {
  std::uint64_t session = 0;  // index: session_id(session)
  VisitKind kind = VisitKind::New;
};

class VisitPattern {
 public:
  static constexpr std::uint32_t kNewPercent = 50;
  static constexpr std::uint32_t kFollowUpPercent = 35;  // the rest return
  static constexpr std::uint64_t kFollowUpWindow = 32;
  static constexpr std::uint64_t kReturnWindow = 100'000;

  VisitPattern(std::uint64_t sessions, std::uint64_t seed) noexcept : sessions_(sessions), random_(seed) {}

  // The next request, or nullopt once every session has been started.
  std::optional<Visit> next() noexcept;
  // Sessions started so far (the distinct sessions seen).
  std::uint64_t started() const noexcept { return started_; }

  // How many requests the whole sequence holds (replays a pattern).
  static std::uint64_t count_requests(std::uint64_t sessions, std::uint64_t seed) noexcept;

 private:
  std::uint64_t sessions_;
  SplitMix64 random_;
  std::uint64_t started_ = 0;
};

}  // namespace shmsession::bench
