#include "tools/shmbench/lag_prober.hpp"

#include <sys/prctl.h>

#include <algorithm>
#include <deque>

#include "tools/shmbench/process_group.hpp"

namespace shmsession::bench {

namespace {

constexpr auto kLinePause = std::chrono::microseconds{50};

struct InFlight {
  std::uint64_t mark;
  std::uint64_t committed_ns;
};

std::uint64_t ns_of(std::chrono::nanoseconds span) { return static_cast<std::uint64_t>(span.count()); }

}  // namespace

LagProber::LagProber(const WriterLine& line, int writers, ProbeTiming timing, Probe probe, Position position)
    : line_(line),
      writers_(writers),
      timing_(timing),
      probe_(std::move(probe)),
      position_(std::move(position)),
      thread_([this](const std::stop_token& stop) { run(stop); }) {}

LagProber::~LagProber() {
  thread_.request_stop();
  if (thread_.joinable()) thread_.join();
}

LagResult LagProber::finish() {
  last_probe_sent_.store(true, std::memory_order_release);
  if (thread_.joinable()) thread_.join();
  if (error_) std::rethrow_exception(error_);
  return result_;
}

void LagProber::run(const std::stop_token& stop) {
  // The default 50 us timer slack would stretch every 20 us pause to ~70 us
  // and blur the lag by as much; this thread only.
  ::prctl(PR_SET_TIMERSLACK, 1UL);
  try {
    while (line_.ready.load(std::memory_order_acquire) < writers_) {
      if (stop.stop_requested() || last_probe_sent_.load(std::memory_order_acquire)) return;
      std::this_thread::sleep_for(kLinePause);
    }
    std::deque<InFlight> in_flight;
    std::uint64_t next_probe_ns = monotonic_ns();
    for (std::uint64_t n = 1; !stop.stop_requested();) {
      const bool sending = !last_probe_sent_.load(std::memory_order_acquire);
      if (!sending && in_flight.empty()) return;
      std::uint64_t now = monotonic_ns();
      if (sending && now >= next_probe_ns) {
        const std::uint64_t mark = probe_(n++);
        now = monotonic_ns();
        if (mark != 0) in_flight.push_back({mark, now});
        // Probes fall behind their schedule only while the backup is
        // watched; they resume from now rather than bunching up to catch up.
        next_probe_ns = std::max(next_probe_ns + ns_of(timing_.period), now);
      }
      if (!in_flight.empty()) {
        const std::uint64_t position = position_();
        now = monotonic_ns();
        for (; !in_flight.empty() && in_flight.front().mark <= position; in_flight.pop_front())
          result_.lag.record(now - in_flight.front().committed_ns);
        if (!in_flight.empty() && now - in_flight.front().committed_ns > ns_of(timing_.give_up)) {
          result_.unseen = in_flight.size();
          return;
        }
      }
      // Nothing to watch: sleep until the next probe is due (at most a
      // period, so finish() is not kept waiting), not a pause at a time.
      if (in_flight.empty() && now < next_probe_ns)
        std::this_thread::sleep_for(std::chrono::nanoseconds(next_probe_ns - now));
      else
        std::this_thread::sleep_for(timing_.pause);
    }
  } catch (...) {
    error_ = std::current_exception();
  }
}

}  // namespace shmsession::bench
