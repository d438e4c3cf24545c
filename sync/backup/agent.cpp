#include "sync/backup/agent.hpp"

#include <algorithm>
#include <array>
#include <csignal>
#include <deque>
#include <iostream>
#include <optional>

#include <boost/asio.hpp>

#include "shm/agent_seat.hpp"
#include "shm/change_feed.hpp"
#include "shm/replica.hpp"
#include "sync/backup/detail/delta_source.hpp"
#include "sync/backup/detail/replication_item.hpp"
#include "sync/wire/detail/payloads.hpp"

namespace shmsession::sync {

using detail::DeltaSource;
using detail::ItemEncoder;
using detail::Outgoing;
using detail::SourceBatch;

namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {
constexpr std::size_t kAgentReadBytes = std::size_t{64} * 1024;
constexpr std::size_t kMaxWriteBytes = 4u << 20;  // frames gathered into one socket write
constexpr std::size_t kMaxLagSamples = 100000;

std::uint64_t unix_ms() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

std::uint64_t ms_between(Clock::time_point from, Clock::time_point to) {
  return to > from
             ? static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count())
             : 0;
}
}  // namespace

// The agent's control flow: three state variables, each changed only
// where its transitions say (all on the io_context's one thread).
//
// Link, the connection to the backup daemon:
//   Down -> Connecting        connect(): at start, and when the backoff
//                             after a drop ends
//   Connecting -> Handshake   the TCP connection is up: Hello sent
//   Handshake -> Streaming    the daemon's Welcome: partial resync from its
//                             position, or a full one (Resync::Due)
//   any -> Down               drop(): an error, a timeout, a bad frame
//                             (retried after a backoff), or finish()
// Resync, a full resync of the backup (meaningful while Streaming):
//   None -> Due               the Welcome finds the backup's position not
//                             covered by the change log, or the log
//                             overflowed while the backup lagged
//   Due -> Sending            pump(): SnapshotBegin and the session list
//   Sending -> None           pump(): every session sent, SnapshotEnd
//   any -> None               a Welcome that allows a partial resync
//   (drop() keeps Due; a Welcome decides again)
// Life:
//   Running -> Stopping       stop() (or SIGTERM/SIGINT) while Streaming:
//                             ship up to the change log's head at that
//                             moment, until stop_timeout
//   Running -> Stopped        stop() while not Streaming
//   Stopping -> Stopped       everything up to the target acknowledged
//                             (run() returns true), the link lost, or
//                             stop_timeout passed (false)
// Besides: `write` says whether a socket write is in flight (one at a time;
// frames added meanwhile wait in `out`), `poll` whether a wait for the next
// change is posted (one at a time).
struct Agent::Impl {
  enum class Link { Down, Connecting, Handshake, Streaming };
  enum class Resync { None, Due, Sending };
  enum class Life { Running, Stopping, Stopped };
  enum class Write { Idle, InFlight };
  enum class Poll { Idle, Posted };

  struct Inflight {
    std::uint64_t seq;
    std::size_t bytes;
    std::string session_id;  // empty for control frames
  };

  Impl(Store& p, const wire::KeyRing& k, AgentOptions o)
      : primary(p),
        feed(p),
        seat(p),
        keys(k),
        options(std::move(o)),
        source(p),
        socket(io),
        resolver(io),
        link_timer(io),
        tick_timer(io),
        signals(io) {
    if (!options.log) options.log = [](const std::string& line) { std::cerr << line << '\n'; };
    backup = options.host + ":" + std::to_string(options.port);
    store_id = primary.info().store_id;
  }

  // Connection.
  void connect();
  void on_connected();
  void send_hello();
  void read();
  void reload_keys();
  void arm_signals(Agent& agent);
  void on_frame(const wire::detail::Frame& frame);
  void on_welcome(const wire::detail::Frame& frame);
  void superseded(const wire::detail::Welcome& welcome);
  void on_ack(std::uint64_t seq);
  void drop(const std::string& reason);

  // Shipping.
  void pump();
  void schedule_poll();
  void add(const wire::detail::Frame& frame, const std::string& session_id);
  void add_item(const Outgoing& item, wire::detail::FrameType type, std::uint64_t seq);
  void start_snapshot();
  void write();
  void tick();
  void sample_lag();
  void note_changes(std::uint64_t head);
  void measure_shipping();
  void publish(AgentState state);
  AgentState published_state() const;
  void finish(bool flushed);
  bool shipped_everything() const;
  void log(const std::string& line) const { options.log(line); }

  Store& primary;
  ChangeFeed feed;  // views of `primary`
  AgentSeat seat;
  wire::KeyRing keys;
  AgentOptions options;
  DeltaSource source;
  std::string backup;
  std::array<std::uint8_t, 16> store_id{};

  asio::io_context io;
  tcp::socket socket;
  tcp::resolver resolver;
  asio::steady_timer link_timer;  // connect/handshake deadline, then reconnect backoff
  asio::steady_timer tick_timer;  // status, heartbeat, ack watchdog
  asio::signal_set signals;

  Link link = Link::Down;
  std::uint64_t generation = 0;  // bumps on every drop: stale handlers return
  std::optional<wire::detail::FrameCodec> codec;
  ItemEncoder items;  // this connection's session payloads (their id dictionary)
  std::array<char, kAgentReadBytes> read_buffer{};
  std::string out;      // frames ready to write
  std::string writing;  // the write in flight
  Write write_state = Write::Idle;
  Poll poll = Poll::Idle;
  std::chrono::milliseconds backoff{0};

  // Replication state.
  Resync resync = Resync::None;
  DeltaSource::SnapshotPlan plan;
  std::size_t plan_next = 0;
  std::deque<std::string> resend;
  std::deque<Inflight> inflight;
  std::size_t unacked_bytes = 0;
  std::uint64_t sent_seq = 0;
  std::uint64_t acked_seq = 0;
  // The highest position a frame told the backup: every frame the agent
  // adds carries one (a Delta or Removal the position after it), and a
  // Heartbeat is only for a position no frame told (the sessions of a poll
  // were shipped before).
  std::uint64_t told_seq = 0;
  Clock::time_point last_ack{};
  Clock::time_point last_write{};
  Clock::time_point last_heartbeat{};
  std::deque<std::pair<Clock::time_point, std::uint64_t>> lag_samples;
  // Session frames (deltas, removals, snapshot sessions) acknowledged, and
  // how many were when the current measure of shipping began
  // (AgentStatus::shipped_per_s); none while the backup is not behind.
  std::uint64_t sessions_acked = 0;
  std::optional<std::pair<Clock::time_point, std::uint64_t>> shipping_since;

  // Figures for the status.
  AgentStatus status;
  std::uint64_t frames_at_last_second = 0;
  Clock::time_point last_second = Clock::now();

  // Stopping.
  Life life = Life::Running;
  bool flushed = false;         // what run() returns: set as Stopped is reached
  std::optional<Error> fenced;  // what run() throws: the backup superseded this store
  std::uint64_t stop_target = 0;
  Clock::time_point stop_deadline{};
};

// ---- connection --------------------------------------------------------

void Agent::Impl::connect() {
  if (life != Life::Running) return finish(false);
  reload_keys();
  link = Link::Connecting;
  publish(AgentState::Connecting);
  const std::uint64_t gen = generation;
  link_timer.expires_after(options.connect_timeout);
  link_timer.async_wait([this, gen](boost::system::error_code ec) {
    if (!ec && gen == generation && link != Link::Streaming)
      drop("no connection and handshake within " + std::to_string(options.connect_timeout.count()) + " ms");
  });
  resolver.async_resolve(options.host, std::to_string(options.port),
                         [this, gen](boost::system::error_code ec, const tcp::resolver::results_type& results) {
                           if (gen != generation) return;
                           if (ec) return drop("cannot resolve " + options.host + ": " + ec.message());
                           asio::async_connect(socket, results,
                                               [this, gen](boost::system::error_code error, const tcp::endpoint&) {
                                                 if (gen != generation) return;
                                                 if (error) return drop("cannot connect: " + error.message());
                                                 on_connected();
                                               });
                         });
}

void Agent::Impl::on_connected() {
  boost::system::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  codec.emplace(keys, wire::detail::Side::Client, options.limits);
  items = ItemEncoder{};
  link = Link::Handshake;
  publish(AgentState::Handshake);
  out = codec->opening();  // Hello follows the backup's answer (send_hello)
  write();
  read();
}

void Agent::Impl::send_hello() {
  wire::detail::Hello hello;
  hello.store_id = store_id;
  hello.next_seq = feed.next_seq();
  hello.epoch = Replica(primary).failover_state().epoch;
  out += codec->encode(wire::detail::make_hello(hello));  // needs no Ack: not in flight
  write();
}

void Agent::Impl::read() {
  const std::uint64_t gen = generation;
  socket.async_read_some(asio::buffer(read_buffer), [this, gen](boost::system::error_code ec, std::size_t n) {
    if (gen != generation) return;
    if (ec) return drop(ec == asio::error::eof ? std::string("backup closed the connection") : ec.message());
    try {
      codec->feed(std::string_view(read_buffer.data(), n));
      while (gen == generation) {
        const bool was_keyed = codec->keyed();
        std::optional<wire::detail::Frame> frame = codec->next();
        if (!was_keyed && codec->keyed()) send_hello();  // the backup answered the opening
        if (!frame) break;
        on_frame(*frame);
      }
    } catch (const Error& e) {
      if (gen == generation) drop(e.what());
      return;
    }
    if (gen == generation) read();
  });
}

void Agent::Impl::on_frame(const wire::detail::Frame& frame) {
  using wire::detail::FrameType;
  if (frame.type == FrameType::Error) return drop("backup refused: " + wire::detail::parse_error(frame));
  if (link == Link::Handshake) {
    if (frame.type != FrameType::Welcome)
      return drop("expected Welcome, got " + std::string(wire::detail::frame_type_name(frame.type)));
    return on_welcome(frame);
  }
  switch (frame.type) {
    case FrameType::Ack:
      return on_ack(wire::detail::parse_ack(frame));
    case FrameType::ResendSession:
      resend.push_back(wire::detail::parse_resend_session(frame));
      ++status.resends;
      return pump();
    default:
      return drop("unexpected " + std::string(wire::detail::frame_type_name(frame.type)) + " frame from the backup");
  }
}

void Agent::Impl::on_welcome(const wire::detail::Frame& frame) {
  const wire::detail::Welcome welcome = wire::detail::parse_welcome(frame);
  const std::uint64_t epoch = Replica(primary).failover_state().epoch;
  if (welcome.promoted && welcome.store_id == store_id && welcome.epoch > epoch) return superseded(welcome);
  if (welcome.promoted)
    return drop("the backup's store was promoted to a primary at epoch " + std::to_string(welcome.epoch) +
                " in place of another store: it is no standby of this one");
  if (welcome.epoch > epoch)
    return drop("the backup's standby has epoch " + std::to_string(welcome.epoch) + ", newer than this store's " +
                std::to_string(epoch) + ": it follows a newer primary");
  const std::uint64_t position = welcome.last_applied_seq;
  const bool same_store = welcome.store_id == store_id && position > 0;
  const bool covered = same_store && position <= feed.next_seq() && !feed.read(position, 0).fell_behind;
  std::vector<std::string> forget;
  for (const Inflight& f : inflight)
    if (!f.session_id.empty()) forget.push_back(f.session_id);
  inflight.clear();
  unacked_bytes = 0;
  resend.clear();
  if (covered) {
    source.resume(position, forget);
    acked_seq = sent_seq = told_seq = position;
    resync = Resync::None;
    ++status.partial_resyncs;
    log("connected to backup " + backup + ": partial resync from seq " + std::to_string(position) + " (" +
        std::to_string(feed.next_seq() - position) + " changes behind)");
  } else {
    // This backup holds no position of ours (or one the log no longer
    // covers): nothing is acknowledged until its snapshot is, whatever an
    // earlier connection acknowledged.
    acked_seq = 0;
    resync = Resync::Due;
    ++status.full_resyncs;
    log("connected to backup " + backup + ": full resync (" +
        (welcome.store_id == wire::detail::StoreId{} ? std::string("backup holds nothing")
         : !same_store                               ? std::string("backup holds another store")
                                                     : "change log no longer covers seq " + std::to_string(position)) +
        ")");
  }
  link = Link::Streaming;
  link_timer.cancel();
  backoff = std::chrono::milliseconds(0);
  status.connected_unix_ms = unix_ms();
  status.last_error.clear();
  last_ack = Clock::now();
  publish(published_state());
  pump();
}

// The backup's store was promoted in place of this one: this store is
// fenced (its app servers' commits fail with Fenced instead of diverging
// from the promoted store), and the agent stops; run() throws.
void Agent::Impl::superseded(const wire::detail::Welcome& welcome) {
  const std::uint64_t by = Replica(primary).fence(welcome.epoch);
  const std::string why = "store '" + primary.name() + "' was superseded: the backup " + backup +
                          " was promoted to a primary at epoch " + std::to_string(welcome.epoch) +
                          " (it had applied this store up to seq " + std::to_string(welcome.last_applied_seq) +
                          "); the store is fenced (by epoch " + std::to_string(by) +
                          "): commits fail with Fenced, reads continue";
  log(why);
  fenced = Error(Errc::Fenced, why);
  status.last_error = why;
  finish(false);
}

void Agent::Impl::on_ack(std::uint64_t seq) {
  last_ack = Clock::now();
  if (seq <= acked_seq) return;  // a heartbeat's answer
  acked_seq = seq;
  while (!inflight.empty() && inflight.front().seq <= seq) {
    unacked_bytes -= inflight.front().bytes;
    if (!inflight.front().session_id.empty()) ++sessions_acked;
    inflight.pop_front();
  }
  measure_shipping();
  while (!lag_samples.empty() && lag_samples.front().second <= seq) lag_samples.pop_front();
  if (life == Life::Stopping && shipped_everything()) return finish(true);
  // Writes held by the replication bound learn the new lag now, not at
  // the next status tick.
  if (seat.writers_waiting()) publish(published_state());
  pump();
}

void Agent::Impl::drop(const std::string& reason) {
  ++generation;
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
  resolver.cancel();
  link_timer.cancel();
  poll = Poll::Idle;
  write_state = Write::Idle;
  out.clear();
  writing.clear();
  const bool was_up = link == Link::Streaming;
  link = Link::Down;
  shipping_since.reset();
  status.last_error = reason;
  status.connected_unix_ms = 0;
  if (life != Life::Running) {
    log("link to backup " + backup + " lost while stopping: " + reason);
    return finish(false);
  }
  backoff = was_up || backoff.count() == 0 ? options.backoff_min : std::min(backoff * 2, options.backoff_max);
  log("link to backup " + backup + " " + (was_up ? "lost" : "failed") + ": " + reason + "; retrying in " +
      std::to_string(backoff.count()) + " ms");
  ++status.reconnects;
  publish(AgentState::Connecting);
  const std::uint64_t gen = generation;
  link_timer.expires_after(backoff);
  link_timer.async_wait([this, gen](boost::system::error_code ec) {
    if (!ec && gen == generation) connect();
  });
}

// A key file is read again at every connection, so a key rotation needs
// no restart (README, "Rotating the replication key"). A file that cannot
// be read now leaves the keys in use.
void Agent::Impl::reload_keys() {
  if (options.key_file.empty()) return;
  try {
    wire::KeyRing fresh = wire::load_key_file(options.key_file);
    if (fresh.sending_id() != keys.sending_id())
      log("key file " + options.key_file + " read again: connecting with key " + wire::key_id_text(fresh.sending_id()) +
          " (was " + wire::key_id_text(keys.sending_id()) + ")");
    keys = std::move(fresh);
  } catch (const Error& e) {
    log(std::string("keeping key ") + wire::key_id_text(keys.sending_id()) + ": " + e.what());
  }
}

// SIGTERM and SIGINT stop the agent; SIGHUP makes it connect again, with
// its key file read again.
void Agent::Impl::arm_signals(Agent& agent) {
  signals.async_wait([this, &agent](boost::system::error_code ec, int signal) {
    if (ec) return;
    if (signal == SIGHUP) {
      agent.reconnect("SIGHUP");
      return arm_signals(agent);
    }
    log(std::string("stopping on ") + (signal == SIGTERM ? "SIGTERM" : "SIGINT"));
    agent.stop();
  });
}

// ---- shipping ----------------------------------------------------------

void Agent::Impl::add(const wire::detail::Frame& frame, const std::string& session_id) {
  const std::string bytes = codec->encode(frame);
  out += bytes;
  inflight.push_back(Inflight{frame.seq, bytes.size(), session_id});
  unacked_bytes += bytes.size();
  ++status.frames_sent;
  sent_seq = std::max(sent_seq, frame.seq);
  told_seq = std::max(told_seq, frame.seq);
}

void Agent::Impl::add_item(const Outgoing& item, wire::detail::FrameType type, std::uint64_t seq) {
  add(items.frame(item, type, seq), item.delta.session_id);
}

void Agent::Impl::start_snapshot() {
  plan = source.begin_snapshot();
  plan_next = 0;
  resync = Resync::Sending;
  lag_samples.emplace_back(Clock::now(), plan.seq);
  add(wire::detail::Frame{wire::detail::FrameType::SnapshotBegin, plan.seq, {}}, {});
  log("full resync: " + std::to_string(plan.ids.size()) + " sessions at seq " + std::to_string(plan.seq));
  publish(AgentState::FullResync);
}

void Agent::Impl::pump() {
  if (link != Link::Streaming || life == Life::Stopped) return;
  bool caught_up = false;
  while (out.size() < kMaxWriteBytes && unacked_bytes < options.max_unacked_bytes) {
    if (!resend.empty()) {  // the backup asked for these in full
      const std::string id = resend.front();
      resend.pop_front();
      if (std::optional<Outgoing> item = source.full_session(id))
        add_item(*item, wire::detail::FrameType::Delta, sent_seq);
      continue;
    }
    if (resync == Resync::Due) {
      start_snapshot();
      continue;
    }
    if (resync == Resync::Sending) {
      if (plan_next < plan.ids.size()) {
        if (std::optional<Outgoing> item = source.snapshot_item(plan.ids[plan_next++], plan.seq))
          add_item(*item, wire::detail::FrameType::SnapshotSession, plan.seq);
      } else {
        add(wire::detail::Frame{wire::detail::FrameType::SnapshotEnd, plan.seq, {}}, {});
        resync = Resync::None;
        plan = {};
        publish(AgentState::Streaming);
      }
      continue;
    }
    SourceBatch batch = source.poll(options.max_batch_entries);
    if (batch.full_resync) {
      log("change log overflowed while the backup lagged: full resync");
      ++status.full_resyncs;
      resync = Resync::Due;
      continue;
    }
    note_changes(batch.next_seq);
    for (const Outgoing& item : batch.items) add_item(item, wire::detail::FrameType::Delta, item.seq);
    if (batch.items.empty()) {
      // Changes of sessions already shipped still move the position.
      sent_seq = std::max(sent_seq, batch.next_seq);
      caught_up = true;
    }
    // One poll per call: what it made goes out now, and whatever writers
    // add meanwhile is batched behind this write (polling on until caught
    // up would hold every frame back while writers outpace the agent).
    break;
  }
  // A position reached without a frame (the changes were shipped earlier)
  // is told with a Heartbeat, so the backup stores and acknowledges it.
  if (caught_up && out.empty() && sent_seq > acked_seq && sent_seq > told_seq) {
    out = codec->encode(wire::detail::make_heartbeat(sent_seq));
    told_seq = sent_seq;
    last_heartbeat = Clock::now();
  }
  sample_lag();
  if (!out.empty()) write();
  if (life == Life::Stopping && caught_up && out.empty() && write_state == Write::Idle && shipped_everything())
    return finish(true);
  if (caught_up) schedule_poll();
}

// Caught up: sleep on the change log until a commit (or idle_wait), then
// look again. Posted, so the socket's and timers' ready handlers run first;
// they wait at most idle_wait behind the sleep.
void Agent::Impl::schedule_poll() {
  if (poll == Poll::Posted) return;
  poll = Poll::Posted;
  const std::uint64_t gen = generation;
  asio::post(io, [this, gen] {
    poll = Poll::Idle;
    if (gen != generation || life == Life::Stopped) return;
    feed.wait(source.next_seq(), options.idle_wait);
    pump();
  });
}

void Agent::Impl::write() {
  if (write_state == Write::InFlight || out.empty() || link == Link::Down) return;
  write_state = Write::InFlight;
  writing.swap(out);
  out.clear();
  const std::uint64_t gen = generation;
  asio::async_write(socket, asio::buffer(writing), [this, gen](boost::system::error_code ec, std::size_t n) {
    if (gen != generation) return;
    write_state = Write::Idle;
    if (ec) return drop("write failed: " + ec.message());
    status.wire_bytes += n;
    last_write = Clock::now();
    writing.clear();
    if (!out.empty()) write();
    pump();
  });
}

void Agent::Impl::sample_lag() { note_changes(feed.next_seq()); }

// What the agent ships a second: session frames the backup acknowledged,
// over spans of at least 10 ms in which it stayed behind by more than a
// quarter of a poll's worth of changes (so the pace is the agent's and the
// backup's, not the writers') and that shipped 64 sessions or more. The
// replication bound divides the backlog, in changes, by it: as if every
// change were a frame of its own. That is what a short backlog costs; a
// long one ships faster, as one frame carries every change a poll finds
// for its session, and the pace in changes depends on that, so a pace in
// changes measured on a long backlog would let writers make another. An
// acknowledgement that finds the backup nearly caught up ends the span
// (measured if it lasted 2 ms); the last measure stays, as it does over a
// span that shipped fewer sessions. A lower measure is taken at once (the
// bound must not trust a pace the link no longer has), a higher one a
// quarter at a time. (The store projects only backlogs longer than a poll:
// writers held by a measure too low still make backlogs that this
// measures again.)
void Agent::Impl::measure_shipping() {
  constexpr auto kSpan = std::chrono::milliseconds(10);
  constexpr auto kShortestSpan = std::chrono::milliseconds(2);
  constexpr std::uint64_t kFewestSessions = 64;
  const Clock::time_point now = Clock::now();
  const auto take = [&] {
    const auto span = now - shipping_since->first;
    const double per_s =
        static_cast<double>(sessions_acked - shipping_since->second) / std::chrono::duration<double>(span).count();
    const auto last = static_cast<double>(status.shipped_per_s);
    status.shipped_per_s = static_cast<std::uint64_t>(last == 0 || per_s < last ? per_s : (3 * last + per_s) / 4);
  };
  const std::uint64_t head = feed.logged_seq();
  if (head <= acked_seq || head - acked_seq <= options.max_batch_entries / 4) {
    if (shipping_since && now - shipping_since->first >= kShortestSpan &&
        sessions_acked >= shipping_since->second + kFewestSessions)
      take();
    shipping_since.reset();
    return;
  }
  if (!shipping_since) {
    shipping_since.emplace(now, sessions_acked);
    return;
  }
  if (now - shipping_since->first < kSpan) return;
  // A span whose acknowledgements moved the position only (the sessions
  // its changes touched had been shipped already: Heartbeats) measured no
  // shipping.
  if (sessions_acked >= shipping_since->second + kFewestSessions) take();
  shipping_since.emplace(now, sessions_acked);
}

// Changes below `head` exist now: the lag counts from the oldest such
// moment not yet acknowledged. Noted at every poll as well as at every
// tick, so the lag is within a poll of the truth while changes come.
void Agent::Impl::note_changes(std::uint64_t head) {
  if (head <= acked_seq) {
    lag_samples.clear();
    return;
  }
  if (lag_samples.empty() || lag_samples.back().second < head) {
    if (lag_samples.size() >= kMaxLagSamples) lag_samples.pop_back();
    lag_samples.emplace_back(Clock::now(), head);
  }
}

// Every status_interval: status, heartbeat, ack watchdog, stop deadline.
void Agent::Impl::tick() {
  tick_timer.expires_after(options.status_interval);
  tick_timer.async_wait([this](boost::system::error_code ec) {
    if (ec || life == Life::Stopped) return;
    const Clock::time_point now = Clock::now();
    if (life == Life::Stopping && now >= stop_deadline) return finish(false);
    if (link == Link::Streaming) {
      // Frames or a Heartbeat not answered: an idle link that died
      // silently is noticed too.
      // Bytes already received are read first: a thread that did not run
      // for a while must not take its own delay for a dead link.
      boost::system::error_code ignored;
      const bool waiting = !inflight.empty() || last_heartbeat > last_ack;
      if (waiting && now - last_ack > options.ack_timeout && socket.available(ignored) == 0)
        drop("no acknowledgement for " + std::to_string(options.ack_timeout.count()) + " ms");
      else if (now - last_write >= options.heartbeat_interval && out.empty() && write_state == Write::Idle &&
               resync != Resync::Sending) {
        out += codec->encode(wire::detail::make_heartbeat(sent_seq));
        told_seq = sent_seq;
        last_heartbeat = now;
        write();
      }
    }
    sample_lag();
    publish(published_state());
    tick();
  });
}

void Agent::Impl::publish(AgentState state) {
  const Clock::time_point now = Clock::now();
  if (now - last_second >= std::chrono::seconds(1)) {
    const auto elapsed = std::chrono::duration<double>(now - last_second).count();
    status.frames_per_s =
        static_cast<std::uint64_t>(static_cast<double>(status.frames_sent - frames_at_last_second) / elapsed);
    frames_at_last_second = status.frames_sent;
    last_second = now;
  }
  status.state = state;
  status.backup = backup;
  status.sent_seq = sent_seq;
  status.acked_seq = acked_seq;
  status.lag_ms = lag_samples.empty() ? 0 : ms_between(lag_samples.front().first, now);
  status.delta_bytes = source.delta_bytes();
  status.whole_bytes = source.whole_bytes();
  seat.publish(status);
}

// What the status shows (AgentState) for the states above.
AgentState Agent::Impl::published_state() const {
  if (life == Life::Stopped) return AgentState::Stopped;
  switch (link) {
    case Link::Down:
    case Link::Connecting:
      return AgentState::Connecting;
    case Link::Handshake:
      return AgentState::Handshake;
    case Link::Streaming:
      break;
  }
  return resync == Resync::None ? AgentState::Streaming : AgentState::FullResync;
}

// Stopping: the backup acknowledged everything up to the target, and no
// full resync is due or under way.
bool Agent::Impl::shipped_everything() const {
  return acked_seq >= stop_target && inflight.empty() && resync == Resync::None;
}

void Agent::Impl::finish(bool shipped) {
  if (life == Life::Stopped) return;
  life = Life::Stopped;
  flushed = shipped;
  const std::uint64_t behind = feed.next_seq() - std::min(acked_seq, feed.next_seq());
  log(flushed ? "stopped: the backup acknowledged everything up to seq " + std::to_string(acked_seq)
              : "stopped with the backup " + std::to_string(behind) + " changes behind (acknowledged up to seq " +
                    std::to_string(acked_seq) + ")");
  ++generation;
  boost::system::error_code ignored;
  socket.close(ignored);
  resolver.cancel();
  link_timer.cancel();
  tick_timer.cancel();
  signals.cancel(ignored);
  link = Link::Down;
  status.connected_unix_ms = 0;
  publish(AgentState::Stopped);
  io.stop();
}

// ---- Agent -------------------------------------------------------------

Agent::Agent(Store& primary, const wire::KeyRing& keys, AgentOptions options) {
  if (options.port == 0) throw Error(Errc::InvalidArgument, "the backup daemon's port must be 1..65535");
  if (const FailoverState state = Replica(primary).failover_state(); state.fenced_by != 0)
    throw Error(Errc::Fenced, "store '" + primary.name() + "' is fenced (by epoch " + std::to_string(state.fenced_by) +
                                  "): it takes no commits, so an agent has nothing to ship from it");
  AgentSeat seat(primary);
  if (!seat.claim())
    throw Error(Errc::AlreadyExists, "another sync agent (pid " + std::to_string(seat.status().pid) +
                                         ") runs on store '" + primary.info().name + "'");
  try {
    impl_ = std::make_unique<Impl>(primary, keys, std::move(options));
  } catch (...) {
    seat.release();
    throw;
  }
  impl_->status.started_unix_ms = unix_ms();
  carry_agent_counters(seat.status(), impl_->status);  // counted on from the agents before
  impl_->frames_at_last_second = impl_->status.frames_sent;
}

Agent::~Agent() {
  try {
    impl_->seat.release();
  } catch (const Error&) {
    // The segment went bad: nothing to give back.
  }
}

bool Agent::run() {
  Impl& s = *impl_;
  if (s.options.stop_on_signals) {
    s.signals.add(SIGTERM);
    s.signals.add(SIGINT);
    s.signals.add(SIGHUP);
    s.arm_signals(*this);
  }
  s.publish(AgentState::Connecting);
  s.connect();
  s.tick();
  s.io.run();
  if (s.fenced) throw *s.fenced;
  return s.flushed;
}

void Agent::reconnect(const std::string& why) {
  asio::post(impl_->io, [this, why] {
    Impl& s = *impl_;
    if (s.life != Impl::Life::Running) return;
    s.log("connecting again (" + why + ")");
    if (s.link == Impl::Link::Down) {  // waiting out a backoff: connect now
      ++s.generation;
      s.link_timer.cancel();
      return s.connect();
    }
    s.drop("connecting again (" + why + ")");
  });
}

void Agent::stop() {
  asio::post(impl_->io, [this] {
    Impl& s = *impl_;
    if (s.life != Impl::Life::Running) return;
    s.stop_target = s.feed.next_seq();
    s.stop_deadline = Clock::now() + s.options.stop_timeout;
    if (s.link != Impl::Link::Streaming) return s.finish(false);
    s.life = Impl::Life::Stopping;
    s.pump();
  });
}

}  // namespace shmsession::sync
