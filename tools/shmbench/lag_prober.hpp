// LagProber: how long a commit takes to reach a backup, measured while the
// writers of a replicated phase run (or alone, for the lag of an otherwise
// idle primary). A thread of the benchmark process commits probe n about
// every `period` and watches the backup, pausing `pause` between looks; a
// probe's lag is the time from its commit's return to the first look that
// finds the backup has it, so it includes one look (a shared-memory read for
// ours, an HGET round trip for Redis).
//
// Probes do not wait for each other: while the backup lags by seconds (a
// writer outrunning the agent), probes still go out every period and each
// gets its own lag, so a saturated phase yields a distribution (the backlog
// growing) rather than one sample. Each probe is known by a mark that only
// grows (ours: the change sequence after its commit; Redis: its counter),
// and the backup's position says which marks it has.
//
// The writers meet the prober at a WriterLine in a ForkShared mapping: the
// prober starts when every writer has finished its warm-up, and probes until
// finish(), which then waits for the probes still on their way.
//
// Thread safety: the prober's own thread calls `probe` and `position`,
// nothing else; construct it before forking the writers (it only waits on
// the line until they are all forked and ready, so it is never inside a
// Store call during a fork). finish() and the destructor belong to the
// constructing thread.
// Cross-process safety: WriterLine holds only a lock-free atomic.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <thread>

#include "tools/shmbench/latency.hpp"

namespace shmsession::bench {

struct WriterLine {
  std::atomic<int> ready{0};  // writers past their warm-up
};

struct ProbeTiming {
  std::chrono::microseconds period{2000};  // ~500 probes a second
  std::chrono::microseconds pause{20};     // between two looks at the backup
  std::chrono::seconds give_up{30};        // a probe not seen by then: the backup is stuck
};

struct LagResult {
  LatencyHistogram lag;      // of probes the backup was seen to have
  std::uint64_t unseen = 0;  // probes still missing when the prober gave up
};

class LagProber {
 public:
  // probe(n) commits probe n (n = 1, 2, ...) to the primary and returns its
  // mark, or 0 when the primary refused the commit (a replication bound):
  // no lag for that one. position() returns the backup's: it has every
  // probe whose mark is <= that. Both may throw; finish() rethrows.
  using Probe = std::function<std::uint64_t(std::uint64_t n)>;
  using Position = std::function<std::uint64_t()>;

  LagProber(const WriterLine& line, int writers, ProbeTiming timing, Probe probe, Position position);
  // Stops at once (if finish() was not called) and joins the thread.
  ~LagProber();
  LagProber(const LagProber&) = delete;
  LagProber& operator=(const LagProber&) = delete;

  // Sends no more probes, waits until the backup has every probe sent (or
  // `give_up` passed since the oldest missing one), and returns what was
  // measured. Throws what probe or position threw.
  LagResult finish();

 private:
  void run(const std::stop_token& stop);

  const WriterLine& line_;
  int writers_;
  ProbeTiming timing_;
  Probe probe_;
  Position position_;
  std::atomic<bool> last_probe_sent_{false};  // set by finish()
  LagResult result_;
  std::exception_ptr error_;
  std::jthread thread_;  // last: starts once the members above exist
};

}  // namespace shmsession::bench
