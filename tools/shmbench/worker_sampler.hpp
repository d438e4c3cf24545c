// ResidencySampler: a thread of a long-running worker (the `worker`
// workload) that records, at once and then every second until stopped,
// what the worker has done (WorkerProgress) and what it holds: its private
// memory (RssAnon) and the figures its system adds (a fill function: the
// Client's kept sessions and locks, the store's memory). The samples land
// in a WorkerRecord, which the worker's parent reads through a MAP_SHARED
// mapping (ForkShared) after the worker has left.
//
// Thread safety: the sampler thread calls `fill` concurrently with the
// worker's requests, so what fill reads must be thread-safe (Client::stats,
// Store::locks are). stop() and the destructor belong to the thread that
// made the sampler.
// Cross-process safety: WorkerRecord holds no pointers; only its worker
// writes it.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

namespace shmsession::bench {

// What a worker has done and holds at one moment.
struct ResidencyTick {
  std::uint64_t at_ns = 0;  // since the sampler began
  std::uint64_t requests = 0;
  std::uint64_t sessions_seen = 0;
  std::uint64_t rss_anon_kib = 0;
  std::uint64_t store_bytes = 0;
  std::uint64_t kept = 0;
  std::uint64_t kept_bytes = 0;
  std::uint64_t evictions = 0;
  std::uint64_t locks = 0;           // by the Client's count
  std::uint64_t locks_in_store = 0;  // by the store's
};

inline constexpr std::size_t kMaxResidencyTicks = 3600;  // an hour of samples; later ones are not kept

// A worker's whole run. Invariant: lives in shared memory, so it holds no
// pointers.
struct WorkerRecord {
  std::array<ResidencyTick, kMaxResidencyTicks> ticks{};
  std::uint32_t tick_count = 0;
  bool ticks_dropped = false;
  std::array<std::uint64_t, 3> kinds{};  // requests by VisitKind
  std::uint64_t reopened = 0;            // revisits whose copy the Client had let go
  std::uint64_t longest_sample_ns = 0;
  std::uint64_t longest_scan_ns = 0;  // of the samples' Store::locks() (ours)
  char sample_error[256] = {};        // why the sampler thread stopped early
};

// The worker loop's progress, read by the sampler thread.
struct WorkerProgress {
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> sessions_seen{0};
};

// The RssAnon line of /proc/self/status, in KiB. Throws std::runtime_error
// if it cannot be read.
std::uint64_t rss_anon_kib();

class ResidencySampler {
 public:
  static constexpr std::chrono::seconds kPeriod{1};

  // Takes the first sample (throws what it throws), then starts the thread.
  ResidencySampler(WorkerRecord& record, const WorkerProgress& progress, std::function<void(ResidencyTick&)> fill);
  // Stops the thread without a last sample.
  ~ResidencySampler();
  ResidencySampler(const ResidencySampler&) = delete;
  ResidencySampler& operator=(const ResidencySampler&) = delete;

  // Stops the thread and takes a last sample. Throws std::runtime_error if
  // a sample on the thread failed (it stopped sampling then), or what the
  // last sample throws.
  void stop();

 private:
  void halt() noexcept;
  void run() noexcept;
  void sample();

  WorkerRecord& record_;
  const WorkerProgress& progress_;
  std::function<void(ResidencyTick&)> fill_;
  std::uint64_t start_ns_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace shmsession::bench
