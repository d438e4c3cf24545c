// HandOverProbe: where the time of a request goes when its session's
// process lock is held by another process (the `cycle` workload under
// random routing). The library's lock probes (shm/lock_probe.hpp) stamp
// each step of the lock's way with CLOCK_MONOTONIC, the clock every
// process shares:
//   requester  kReleaseRequested (queued, holder asked), kGranted (running
//              again), kRefreshBegins (Client::open, before the copy's refresh)
//   holder     kReleaseRequestDelivered (its watcher thread got the request),
//              kHandingOver (Store::release, just before the grant)
// The holder's two stamps go to a per-session slot in a MAP_SHARED mapping;
// the requester reads them as it is granted (the holder's stamps for that
// session cannot move again until the requester itself lets it go), and
// adds its own and the request's open/commit times. Each worker records
// the phases of its measured requests that waited for a hand-over into
// histograms of its own.
//
// Phases of one moved request:
//   delivery     kReleaseRequested -> kReleaseRequestDelivered
//   flush        kReleaseRequestDelivered -> kHandingOver (the holder's
//                callback: pending edits committed, Store::release)
//   wake         kHandingOver -> kGranted
//   bookkeeping  kGranted -> kRefreshBegins (the grant recorded, the own
//                watcher nudged, back in Client::open)
//   refresh      kRefreshBegins -> open() returned
//   commit       the request's commit()
// A hand-over that did not go through the holder's watcher (the holder's
// own request end saw the request first, or the requester queued behind
// another process) has no delivery and flush sample, only the others.
//
// Thread safety: make the probe before forking; install() and the
// request_* calls on one request thread of a worker; the lock probes run on
// any thread. Cross-process safety: the mapping holds no pointers; each
// worker writes only its own histograms and the slots of sessions it holds.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tools/shmbench/bench_report.hpp"
#include "tools/shmbench/fork_shared.hpp"
#include "tools/shmbench/latency.hpp"
#include "tools/shmbench/workload.hpp"

namespace shmsession::bench {

inline constexpr std::size_t kHandOverPhaseCount = 7;
// Phase names as the cycle report prints them, in order; the first is the
// whole request.
extern const std::array<std::string_view, kHandOverPhaseCount> kHandOverPhases;

// Invariant: lives in a MAP_SHARED mapping; no pointers.
struct HandOverStamps {
  static constexpr std::size_t kMaxSessions = 4096;
  struct alignas(64) Session {  // a line each: workers stamp different sessions at once
    std::atomic<std::uint64_t> delivered_ns{0};
    std::atomic<std::uint64_t> handing_over_ns{0};
  };
  std::array<Session, kMaxSessions> sessions;
  std::array<std::array<LatencyHistogram, kHandOverPhaseCount>, kMaxCycleProcesses> phases;
};

class HandOverProbe {
 public:
  // Sessions are known by their ids, session_id(i) for i below
  // HandOverStamps::kMaxSessions; others are not stamped.
  // Throws std::runtime_error if the mapping cannot be made.
  HandOverProbe() = default;

  // In a worker, before its first request: sets the library's lock probe.
  // Requires: 0 <= worker < kMaxCycleProcesses.
  void install(int worker) noexcept;
  // Measured requests are recorded from now on (not the warm-up's).
  void start_recording() noexcept { recording_ = true; }
  void request_begins() noexcept;
  void opened() noexcept;
  void commit_begins() noexcept;
  void committed() noexcept;
  void request_ends() noexcept;

  // In the parent, after the workers: one row per phase, merged over workers.
  std::vector<HandOverPhaseRow> rows(const std::string& operation, int processes) const;

 private:
  ForkShared<HandOverStamps> shared_;
  int worker_ = -1;
  bool recording_ = false;
};

}  // namespace shmsession::bench
