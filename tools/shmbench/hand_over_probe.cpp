#include "tools/shmbench/hand_over_probe.hpp"

#include <charconv>
#include <optional>

#include "shm/lock_probe.hpp"
#include "tools/shmbench/process_group.hpp"

namespace shmsession::bench {

const std::array<std::string_view, kHandOverPhaseCount> kHandOverPhases = {
    "whole request of a moved session",
    "release request delivery (ask -> holder's watcher runs)",
    "holder flush (watcher -> hand-over: commit pending, release)",
    "hand-over wake (lock granted -> waiter running)",
    "waiter bookkeeping (running -> refresh begins)",
    "refresh of the copy (-> open() returns)",
    "commit",
};

namespace {

using shm::LockProbe;

enum Phase : std::size_t { kWhole, kDelivery, kFlush, kWake, kBookkeeping, kRefresh, kCommit };

// What this process's request thread stamped for its current request
// (process-local: the lock probe is a plain function).
struct RequestStamps {
  std::uint64_t begins = 0;
  std::uint64_t requested = 0;  // 0: the lock was not waited for
  std::uint64_t granted = 0;
  std::uint64_t delivered = 0;  // the holder's stamps, read at the grant
  std::uint64_t handing_over = 0;
  std::uint64_t refresh_begins = 0;
  std::uint64_t opened = 0;
  std::uint64_t commit_begins = 0;
  std::uint64_t committed = 0;
};

RequestStamps g_request;
HandOverStamps* g_stamps = nullptr;

// "session:00000042" -> 42.
std::optional<std::size_t> session_index(std::string_view session) noexcept {
  constexpr std::string_view kPrefix = "session:";
  if (!session.starts_with(kPrefix)) return std::nullopt;
  std::size_t index = 0;
  const char* first = session.data() + kPrefix.size();
  const char* last = session.data() + session.size();
  const auto [end, error] = std::from_chars(first, last, index);
  if (error != std::errc{} || end != last || index >= HandOverStamps::kMaxSessions) return std::nullopt;
  return index;
}

// Runs in the library, under a shard lock for kHandingOver: a clock read
// and a store.
void on_lock_probe(LockProbe point, std::string_view session) noexcept {
  const std::optional<std::size_t> index = session_index(session);
  if (!index || g_stamps == nullptr) return;
  HandOverStamps::Session& stamps = g_stamps->sessions[*index];
  const std::uint64_t now = monotonic_ns();
  switch (point) {
    case LockProbe::kReleaseRequested:
      g_request.requested = now;
      break;
    case LockProbe::kReleaseRequestDelivered:
      stamps.delivered_ns.store(now, std::memory_order_release);
      break;
    case LockProbe::kHandingOver:
      stamps.handing_over_ns.store(now, std::memory_order_release);
      break;
    case LockProbe::kGranted:
      // This process holds the session now: its holder stamps cannot move
      // until this process lets it go.
      g_request.granted = now;
      g_request.delivered = stamps.delivered_ns.load(std::memory_order_acquire);
      g_request.handing_over = stamps.handing_over_ns.load(std::memory_order_acquire);
      break;
    case LockProbe::kRefreshBegins:
      g_request.refresh_begins = now;
      break;
  }
}

void record(LatencyHistogram& histogram, std::uint64_t from, std::uint64_t to) noexcept {
  if (from != 0 && to >= from) histogram.record(to - from);
}

}  // namespace

void HandOverProbe::install(int worker) noexcept {
  worker_ = worker;
  g_stamps = &*shared_;
  shm::set_lock_probe(&on_lock_probe);
}

void HandOverProbe::request_begins() noexcept {
  g_request = RequestStamps{};
  g_request.begins = monotonic_ns();
}

void HandOverProbe::opened() noexcept { g_request.opened = monotonic_ns(); }
void HandOverProbe::commit_begins() noexcept { g_request.commit_begins = monotonic_ns(); }
void HandOverProbe::committed() noexcept { g_request.committed = monotonic_ns(); }

void HandOverProbe::request_ends() noexcept {
  const RequestStamps& r = g_request;
  if (!recording_ || worker_ < 0 || r.requested == 0 || r.granted < r.requested) return;  // not moved
  std::array<LatencyHistogram, kHandOverPhaseCount>& phase = shared_->phases[static_cast<std::size_t>(worker_)];
  record(phase[kWhole], r.begins, monotonic_ns());
  // Through the holder's watcher: its stamps fall between the request and
  // the hand-over to this process.
  if (r.delivered >= r.requested && r.handing_over >= r.delivered) {
    record(phase[kDelivery], r.requested, r.delivered);
    record(phase[kFlush], r.delivered, r.handing_over);
  }
  if (r.handing_over >= r.requested) record(phase[kWake], r.handing_over, r.granted);
  record(phase[kBookkeeping], r.granted, r.refresh_begins);
  record(phase[kRefresh], r.refresh_begins, r.opened);
  record(phase[kCommit], r.commit_begins, r.committed);
}

std::vector<HandOverPhaseRow> HandOverProbe::rows(const std::string& operation, int processes) const {
  std::vector<HandOverPhaseRow> rows;
  for (std::size_t p = 0; p < kHandOverPhaseCount; ++p) {
    LatencyHistogram merged;
    for (int w = 0; w < processes && w < kMaxCycleProcesses; ++w)
      merged.merge(shared_->phases[static_cast<std::size_t>(w)][p]);
    HandOverPhaseRow row{operation, processes, std::string(kHandOverPhases[p])};
    row.measured = merged.count() > 0;
    row.samples = merged.count();
    row.mean_us = merged.mean_ns() / 1000.0;
    row.p50_us = merged.percentile_ns(0.50) / 1000.0;
    row.p99_us = merged.percentile_ns(0.99) / 1000.0;
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace shmsession::bench
