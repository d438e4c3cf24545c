// Agent: the sync agent's loop on the primary host (Boost.Asio, one
// thread). It follows the store's change log through a DeltaSource and
// ships each changed session's delta to the backup daemon as pipelined,
// encrypted frames (sync/wire/wire_format.md), acknowledged by sequence number and batched under
// load (one socket write carries as many frames as are ready, up to a
// window of unacknowledged bytes).
//
// On connect a handshake compares the store id and the backup's last
// applied position: a partial resync continues from the change log when it
// still covers the gap; a full resync (a streamed snapshot) otherwise, or
// when the backup is new or holds another store. The log overflowing while
// the agent lags falls back to a full resync too. A dropped link reconnects
// with exponential backoff; SIGTERM (or stop()) ships what is in the log,
// waits a bounded time for it to be acknowledged, and stops.
//
// App servers never wait for the agent: it only reads the store (peek and
// the change log); a slow or absent backup only grows the lag. An idle agent
// sleeps on the change log's futex; a commit wakes it (one futex wake, paid
// by the committer only while the agent sleeps). Status
// (lag, bytes, frames/s, resyncs) is published into the segment every
// status_interval, for `shmctl info` and `shmsession-agent status`.
//
// Thread safety: run() on one thread; stop() from any thread. Cross-process
// safety: one agent per store, enforced by AgentSeat::claim (a dead
// agent's claim is taken over).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "shm/store.hpp"
#include "sync/wire/frame_limits.hpp"
#include "sync/wire/key.hpp"

namespace shmsession::sync {

struct AgentOptions {
  std::string host = "127.0.0.1";  // the backup daemon: a name or an address
  std::uint16_t port = 0;
  // An idle agent sleeps on the change log (ChangeFeed::wait): a
  // commit wakes it at once. This bounds one sleep, after which it handles
  // what its socket and timers have for it (Acks, heartbeats) and sleeps again.
  std::chrono::microseconds idle_wait{5000};
  // Change-log entries per poll. A poll's frames are built, written and
  // applied one after another, so a change waits behind the poll before
  // its own: small polls keep that wait short under load (shmbench
  // replicate, 2 unpaced writers bound to 100 ms: lag p99 55-86 ms and
  // 89-115k commits/s at 256 entries, 100-150 ms and 66-85k at 4,096), and
  // a session's changes within a poll still leave in one frame.
  std::size_t max_batch_entries = 256;
  std::size_t max_unacked_bytes = 32u << 20;        // frames sent and not yet acknowledged
  std::chrono::milliseconds connect_timeout{3000};  // connect + handshake
  // Frames or a Heartbeat unanswered this long: the link is dead, reconnect.
  // Three heartbeats: an idle agent sends one every heartbeat_interval, and
  // the backup answers every batch of frames it reads, even one that moves
  // no position (a snapshot being applied).
  std::chrono::milliseconds ack_timeout{3000};
  std::chrono::milliseconds heartbeat_interval{1000};
  std::chrono::milliseconds backoff_min{100};
  std::chrono::milliseconds backoff_max{5000};
  std::chrono::milliseconds stop_timeout{5000};  // on stop, how long to wait for the last Acks
  std::chrono::milliseconds status_interval{100};
  wire::FrameLimits limits;
  // When set, the key ring is read again from this file at every
  // connection (reconnect() connects at once), so a key rotation needs no
  // restart; a file that cannot be read leaves the keys in use (logged).
  std::string key_file;
  // One line per event (connected, resync, link lost, stopped).
  std::function<void(const std::string&)> log;
  bool stop_on_signals = false;  // SIGTERM / SIGINT call stop(), SIGHUP reconnect() (the tool)
};

class Agent {
 public:
  // Claims the store's agent slot.
  // Throws: Error(AlreadyExists) naming the pid when another live agent
  // runs on this store; Error(InvalidArgument) for a port of 0;
  // Error(Fenced) for a fenced store (it takes no commits to ship).
  // Connects with keys.sending() (wire_format.md).
  Agent(Store& primary, const wire::KeyRing& keys, AgentOptions options);
  // Gives the claim up (the last status stays readable).
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Ships until stop() and its bounded flush. Returns true when everything
  // in the log at the stop was acknowledged. Throws: store errors (the
  // primary became unreadable); Error(Fenced) once the backup says its
  // store was promoted in place of this one (the agent fences this store
  // first: its commits fail with Fenced from then on). Network trouble
  // never throws, it reconnects; so does a backup that refuses this
  // store's epoch as older than its standby's.
  bool run();
  // Thread-safe; also from a signal handler through stop_on_signals.
  void stop();
  // Drops the link (if up) and connects again at once, with the key file
  // read again (AgentOptions::key_file); `why` goes to the log. Thread-safe;
  // SIGHUP through stop_on_signals.
  void reconnect(const std::string& why);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace shmsession::sync
