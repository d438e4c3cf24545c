#include "tools/shmbench/worker_sampler.hpp"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <fstream>
#include <stdexcept>
#include <string>

#include "tools/shmbench/process_group.hpp"

namespace shmsession::bench {

std::uint64_t rss_anon_kib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.starts_with("RssAnon:")) return std::stoull(line.substr(8));
  throw std::runtime_error("no RssAnon in /proc/self/status");
}

ResidencySampler::ResidencySampler(WorkerRecord& record, const WorkerProgress& progress,
                                   std::function<void(ResidencyTick&)> fill)
    : record_(record), progress_(progress), fill_(std::move(fill)), start_ns_(monotonic_ns()) {
  sample();
  thread_ = std::thread([this] { run(); });
}

ResidencySampler::~ResidencySampler() { halt(); }

void ResidencySampler::stop() {
  halt();
  if (record_.sample_error[0] != '\0')
    throw std::runtime_error(std::string("the sampler stopped: ") + record_.sample_error);
  sample();
}

void ResidencySampler::halt() noexcept {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void ResidencySampler::run() noexcept {
  auto next = std::chrono::steady_clock::now() + kPeriod;
  std::unique_lock lock(mutex_);
  while (!wake_.wait_until(lock, next, [this] { return stopping_; })) {
    lock.unlock();
    try {
      sample();
    } catch (const std::exception& e) {
      // Reported by stop(): an exception leaving this thread would end the worker.
      std::snprintf(record_.sample_error, sizeof record_.sample_error, "%s", e.what());
      return;
    }
    lock.lock();
    next += kPeriod;
  }
}

void ResidencySampler::sample() {
  const std::uint64_t began = monotonic_ns();
  ResidencyTick tick;
  tick.requests = progress_.requests.load(std::memory_order_relaxed);
  tick.sessions_seen = progress_.sessions_seen.load(std::memory_order_relaxed);
  tick.rss_anon_kib = rss_anon_kib();
  fill_(tick);
  tick.at_ns = began - start_ns_;
  record_.longest_sample_ns = std::max(record_.longest_sample_ns, monotonic_ns() - began);
  if (record_.tick_count < kMaxResidencyTicks)
    record_.ticks[record_.tick_count++] = tick;
  else
    record_.ticks_dropped = true;
}

}  // namespace shmsession::bench
