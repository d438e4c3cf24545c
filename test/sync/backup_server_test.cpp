// BackupServer over real TCP on 127.0.0.1, in a thread of the test process,
// fed bad input through raw sockets: garbage, a wrong key, a truncated frame,
// an oversized header, a delta for another store, silence, a second agent.
// Each time the server closes that connection with one log line naming the
// reason, the standby keeps what it had, and a real agent (sync::Agent in
// another thread) still replicates afterwards.
#include <boost/test/unit_test.hpp>

#include <array>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "diff/detail/byte_io.hpp"
#include "shm/change_feed.hpp"
#include "shm/replica.hpp"
#include "sync/backup/detail/replication_item.hpp"
#include "sync/wire/detail/payloads.hpp"
#include "test/sync/replication_fixture.hpp"
#include "test/sync/wire_test_support.hpp"

using namespace shmsession;
using namespace shmsession::test;
using namespace std::chrono_literals;
using sync::wire::detail::Frame;
using sync::wire::detail::FrameType;
namespace asio = boost::asio;
namespace wire = sync::wire;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::uint64_t kSegmentBytes = std::uint64_t{16} << 20;
constexpr std::size_t kMaxPayloadBytes = std::size_t{1} << 20;
constexpr auto kDeadline = 60s;  // for anything that should happen at once: a bound to fail instead of hang

// Log lines collected from any thread, and waited for.
class LogLines {
 public:
  void add(const std::string& line) {
    std::lock_guard lock(mutex_);
    lines_.push_back(line);
    logged_.notify_all();
  }

  std::vector<std::string> lines() const {
    std::lock_guard lock(mutex_);
    return lines_;
  }

  // Waits until a line holds `text`; false at the deadline.
  bool wait_for_line(const std::string& text, std::chrono::milliseconds timeout = kDeadline) {
    std::unique_lock lock(mutex_);
    return logged_.wait_for(lock, timeout, [&] {
      for (const std::string& line : lines_)
        if (line.find(text) != std::string::npos) return true;
      return false;
    });
  }

  // A log function for an agent or a server: collects, and prints with
  // SHMSESSION_TEST_VERBOSE.
  std::function<void(const std::string&)> sink(const std::string& who) {
    return [this, verbose = test_log(who)](const std::string& line) {
      verbose(line);
      add(line);
    };
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable logged_;
  std::vector<std::string> lines_;
};

// A BackupServer running on its own thread, its log lines collected. The
// destructor stops and joins it, also when a test fails.
class ServerThread {
 public:
  ServerThread(Store& standby, sync::BackupServerOptions options)
      : server_(standby, replication_key(), with_log(std::move(options))), thread_([this] { run(); }) {}
  ~ServerThread() {
    server_.stop();
    thread_.join();
  }
  ServerThread(const ServerThread&) = delete;
  ServerThread& operator=(const ServerThread&) = delete;

  std::uint16_t port() const { return server_.port(); }
  std::vector<std::string> lines() const { return log_.lines(); }
  bool wait_for_line(const std::string& text, std::chrono::milliseconds timeout = kDeadline) {
    return log_.wait_for_line(text, timeout);
  }

 private:
  sync::BackupServerOptions with_log(sync::BackupServerOptions options) {
    options.log = log_.sink("backupd");
    return options;
  }
  void run() {
    try {
      server_.run();
    } catch (const std::exception& e) {
      log_.add(std::string("server thread died: ") + e.what());  // fails every line check
    }
  }

  LogLines log_;
  sync::BackupServer server_;
  std::thread thread_;
};

// A real sync agent on its own thread; the destructor stops and joins it.
class AgentThread {
 public:
  // `log`: where the agent's lines go (none by default).
  AgentThread(Store& primary, std::uint16_t port, std::function<void(const std::string&)> log = {})
      : agent_(primary, replication_key(), options(port, std::move(log))) {
    thread_ = std::thread([this] {
      try {
        agent_.run();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "agent thread died: %s\n", e.what());  // the standby then never catches up
      }
    });
  }
  ~AgentThread() {
    agent_.stop();
    thread_.join();
  }
  AgentThread(const AgentThread&) = delete;
  AgentThread& operator=(const AgentThread&) = delete;

 private:
  static sync::AgentOptions options(std::uint16_t port, std::function<void(const std::string&)> log) {
    sync::AgentOptions o;
    o.port = port;
    o.backoff_min = 20ms;
    o.backoff_max = 200ms;
    o.log = log ? std::move(log) : test_log("agent");
    return o;
  }
  sync::Agent agent_;
  std::thread thread_;
};

// A raw TCP peer: the client end of a connection, which writes whatever
// bytes a test gives it and opens what the server sends back. Opened: its
// opening was answered, so frames can be sealed (send, seal); left: the
// test writes the first bytes itself. Every wait has a deadline.
class RawPeer {
 public:
  enum class Opening { Done, Left };
  explicit RawPeer(std::uint16_t port, Opening opening = Opening::Done, const wire::KeyRing& keys = replication_key())
      : socket_(io_), codec_(keys, wire::detail::Side::Client) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    name_ = "127.0.0.1:" + std::to_string(socket_.local_endpoint().port());
    if (opening == Opening::Left) return;
    write(codec_.opening());
    const auto deadline = Clock::now() + kDeadline;
    while (!codec_.keyed() && !closed_ && read_some(deadline)) {
    }
    BOOST_REQUIRE_MESSAGE(codec_.keyed(), "the server did not answer the opening: " << codec_error_);
  }

  // How the server's log names this connection.
  const std::string& name() const { return name_; }

  void write(std::string_view bytes) { asio::write(socket_, asio::buffer(bytes.data(), bytes.size())); }
  std::string opening() const { return codec_.opening(); }
  std::string seal(const Frame& frame) { return codec_.encode(frame); }
  void send(const Frame& frame) { write(seal(frame)); }
  // Why the bytes from the server did not open (empty: they all did).
  const std::string& codec_error() const { return codec_error_; }
  void close() {
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  // Reads until `count` frames have come in all (or the server closed, or
  // the deadline passed); returns every frame received so far.
  const std::vector<Frame>& wait_frames(std::size_t count, std::chrono::milliseconds timeout = kDeadline) {
    const auto deadline = Clock::now() + timeout;
    while (frames_.size() < count && !closed_ && read_some(deadline)) {
    }
    return frames_;
  }
  // Reads until the server closes the connection (EOF or reset); false if
  // it is still open at the deadline.
  bool wait_closed(std::chrono::milliseconds timeout = kDeadline) {
    const auto deadline = Clock::now() + timeout;
    while (!closed_ && read_some(deadline)) {
    }
    return closed_;
  }
  const std::vector<Frame>& frames() const { return frames_; }

 private:
  // One read, bounded by `deadline`; false when it timed out.
  bool read_some(Clock::time_point deadline) {
    std::array<char, 4096> buffer;
    bool done = false;
    socket_.async_read_some(asio::buffer(buffer), [&](boost::system::error_code ec, std::size_t n) {
      if (ec == asio::error::operation_aborted) return;
      done = true;
      codec_.feed(std::string_view(buffer.data(), n));
      try {
        while (std::optional<Frame> frame = codec_.next()) frames_.push_back(std::move(*frame));
      } catch (const Error& e) {
        if (codec_error_.empty()) codec_error_ = e.what();
      }
      if (ec) closed_ = true;
    });
    io_.restart();
    io_.run_until(deadline);
    if (!done) {
      socket_.cancel();
      io_.restart();
      io_.run();  // the cancelled (or just completed) read's handler
    }
    return done;
  }

  asio::io_context io_;
  tcp::socket socket_;
  std::string name_;
  wire::detail::FrameCodec codec_;
  std::vector<Frame> frames_;
  bool closed_ = false;
  std::string codec_error_;
};

// Lines that name the connection `peer` ("127.0.0.1:<port>" not followed by
// another digit).
std::vector<std::string> lines_about(const std::vector<std::string>& lines, const std::string& peer) {
  std::vector<std::string> out;
  for (const std::string& line : lines)
    for (std::size_t at = line.find(peer); at != std::string::npos; at = line.find(peer, at + 1)) {
      const std::size_t after = at + peer.size();
      if (after == line.size() || !std::isdigit(static_cast<unsigned char>(line[after]))) {
        out.push_back(line);
        break;
      }
    }
  return out;
}

std::size_t count_with(const std::vector<std::string>& lines, const std::string& text) {
  std::size_t n = 0;
  for (const std::string& line : lines) n += line.find(text) != std::string::npos;
  return n;
}

// A primary, a standby that follows it (replicated by a real agent at
// construction), and a backup server over the standby.
struct ServedStandby {
  explicit ServedStandby(std::chrono::milliseconds handshake_timeout = 5000ms)
      : server(standby, options(handshake_timeout)) {
    agent_session();
    BOOST_REQUIRE(position.follows_a_primary());
  }

  static sync::BackupServerOptions options(std::chrono::milliseconds handshake_timeout) {
    sync::BackupServerOptions o;
    o.handshake_timeout = handshake_timeout;
    o.limits.max_payload_bytes = kMaxPayloadBytes;
    return o;
  }

  wire::detail::Frame hello() const {
    return wire::detail::make_hello(
        wire::detail::Hello{wire::detail::kProtocolVersion, primary.info().store_id, ChangeFeed(primary).next_seq()});
  }

  // Commits a few changes, runs a real agent until the standby holds them,
  // and stops it.
  void agent_session() {
    for (int i = 0; i < 6; ++i) {
      const std::string id = "s" + std::to_string(i);
      primary.create_session(id);
      CommitBatch batch;
      batch.put("round", std::to_string(rounds_)).put("cart", std::string(200 + i, static_cast<char>('a' + rounds_)));
      primary.commit(id, batch);
    }
    ++rounds_;
    AgentThread agent(primary, server.port());
    BOOST_REQUIRE_MESSAGE(wait_caught_up(primary, standby, 60s), "the standby did not catch up with the agent");
    check_equal(primary, standby);
    position = Replica(standby).position();
  }

  // The server closed `peer`'s connection after sending an Error frame with
  // `reason` (unless error_frame is false), logged exactly one line about it
  // naming the reason, and left the standby alone; then a real agent still
  // replicates.
  void expect_closed(RawPeer& peer, const std::string& reason, bool error_frame = true) {
    BOOST_TEST(peer.wait_closed(), "the server kept " << peer.name() << " open");
    if (error_frame) {
      BOOST_REQUIRE(!peer.frames().empty());
      const Frame& last = peer.frames().back();
      BOOST_TEST((last.type == FrameType::Error));
      BOOST_TEST(wire::detail::parse_error(last).find(reason) != std::string::npos, wire::detail::parse_error(last));
    }
    expect_logged_close(peer.name(), reason);
    expect_standby_unchanged();
    agent_session();
  }

  void expect_logged_close(const std::string& peer, const std::string& reason) {
    BOOST_TEST(server.wait_for_line("connection from " + peer + " closed: "));
    const std::vector<std::string> about = lines_about(server.lines(), peer);
    std::string all;
    for (const std::string& line : about) all += "\n  " + line;
    BOOST_TEST(count_with(about, " closed: ") == 1u, "lines about " << peer << ":" << all);
    BOOST_TEST(count_with(about, reason) == 1u, "one line names '" << reason << "'; lines:" << all);
  }

  void expect_standby_unchanged() {
    BOOST_TEST((Replica(standby).position() == position));
    check_equal(primary, standby);
  }

  SegmentGuard primary_guard{"bs_p"}, standby_guard{"bs_s"};
  Store primary = make_store(primary_guard.name(), 4096, kSegmentBytes);
  Store standby = make_store(standby_guard.name(), 4096, kSegmentBytes);
  ServerThread server;
  ReplicaPosition position;

 private:
  int rounds_ = 0;
};

struct QuickHandshake : ServedStandby {
  QuickHandshake() : ServedStandby(300ms) {}
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(garbage_closes_the_connection, ServedStandby) {
  {
    RawPeer peer(server.port(), RawPeer::Opening::Left);
    peer.write("GET / HTTP/1.1\r\nHost: backup\r\n\r\n");
    expect_closed(peer, "bad magic", false);
  }
  RawPeer peer(server.port());  // opened: garbage where a sealed frame should be
  std::string noise(200, '\x5a');
  noise[0] = 100;
  noise[1] = noise[2] = noise[3] = 0;
  peer.write(noise);
  expect_closed(peer, "cannot open it: wrong key, or a tampered, replayed, reordered or dropped frame");
}

// An agent under another key: the daemon answers its opening with "key
// unknown" (the agent can say so) and closes; the log names the key files.
BOOST_FIXTURE_TEST_CASE(an_agent_under_the_wrong_key_is_refused_at_its_opening, ServedStandby) {
  RawPeer peer(server.port(), RawPeer::Opening::Left, replication_key(0x99));
  peer.write(peer.opening());
  BOOST_TEST(peer.wait_closed());
  BOOST_TEST(peer.codec_error().find("the backup has no key with this end's key id") != std::string::npos,
             peer.codec_error());
  expect_logged_close(peer.name(), "the two hosts' key files differ");
  expect_standby_unchanged();
  agent_session();
}

// Tampered, replayed and reordered frames on a live agent connection: each
// closes the connection, applies nothing, and the daemon serves on.
BOOST_FIXTURE_TEST_CASE(tampered_replayed_and_reordered_frames_are_refused, ServedStandby) {
  auto welcomed = [&] {
    auto peer = std::make_unique<RawPeer>(server.port());
    peer->send(hello());
    BOOST_REQUIRE(peer->wait_frames(1).size() == 1u);
    return peer;
  };
  auto delta_frame = [&](const std::string& value) {
    sync::detail::Outgoing item;
    item.delta = diff::make_delta("s0", 0, 99, {}, {{"cart", {value, 0}}});
    return sync::detail::make_item_frame(item, FrameType::Delta, position.applied_seq);
  };
  const std::string kRefused = "cannot open it: wrong key, or a tampered, replayed, reordered or dropped frame";
  {
    std::unique_ptr<RawPeer> peer = welcomed();
    std::string bytes = peer->seal(delta_frame("tampered"));
    bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x01);
    peer->write(bytes);
    expect_closed(*peer, kRefused);
  }
  {
    std::unique_ptr<RawPeer> peer = welcomed();
    const std::string heartbeat = peer->seal(wire::detail::make_heartbeat(position.applied_seq));
    peer->write(heartbeat);
    BOOST_REQUIRE(peer->wait_frames(2).size() == 2u);  // its Ack
    peer->write(heartbeat);                            // the same bytes again
    expect_closed(*peer, kRefused);
  }
  {
    std::unique_ptr<RawPeer> peer = welcomed();
    const std::string first = peer->seal(wire::detail::make_heartbeat(position.applied_seq));
    const std::string second = peer->seal(delta_frame("reordered"));
    peer->write(second + first);
    expect_closed(*peer, kRefused);
  }
  {
    // A whole recorded connection played again: its opening is answered
    // with a new nonce, so its first frame does not open.
    RawPeer recorder(server.port(), RawPeer::Opening::Left);
    std::unique_ptr<RawPeer> original = welcomed();
    const std::string stream = original->opening() + original->seal(hello());
    original->close();
    recorder.write(stream);
    expect_closed(recorder, kRefused, false);
  }
}

// The peer goes away mid-frame: nothing of the partial frame is applied.
BOOST_FIXTURE_TEST_CASE(a_truncated_frame_then_close_applies_nothing, ServedStandby) {
  RawPeer peer(server.port());
  peer.send(hello());
  BOOST_REQUIRE(peer.wait_frames(1).size() == 1u);
  BOOST_TEST((wire::detail::parse_welcome(peer.frames()[0]) ==
              wire::detail::Welcome{primary.info().store_id, position.applied_seq}));
  sync::detail::Outgoing item;
  item.delta = diff::make_delta("s0", 0, 99, {}, {{"cart", {"never applied", 0}}});
  const std::string delta = peer.seal(sync::detail::make_item_frame(item, FrameType::Delta, position.applied_seq));
  peer.write(std::string_view(delta).substr(0, delta.size() - 5));
  peer.close();
  expect_logged_close(peer.name(), "peer closed the connection");
  expect_standby_unchanged();
  agent_session();
}

BOOST_FIXTURE_TEST_CASE(an_oversized_header_closes_the_connection_at_once, ServedStandby) {
  {
    RawPeer peer(server.port());  // a first frame: the pre-authentication cap
    peer.write(raw_frame_length(1 << 20));
    expect_closed(peer, "payload length 1048576 exceeds the limit of 4096 for a first frame");
  }
  RawPeer peer(server.port());
  peer.send(hello());
  BOOST_REQUIRE(peer.wait_frames(1).size() == 1u);
  peer.write(raw_frame_length(kMaxPayloadBytes + 1));
  expect_closed(peer, "payload length " + std::to_string(kMaxPayloadBytes + 1) + " exceeds the limit of " +
                          std::to_string(kMaxPayloadBytes));
}

BOOST_FIXTURE_TEST_CASE(a_delta_for_another_store_closes_the_connection, ServedStandby) {
  SegmentGuard other_guard("bs_q");
  Store other = make_store(other_guard.name(), 1024, kSegmentBytes);
  other.create_session("q1");
  other.commit("q1", CommitBatch().put("user", "mallory"));
  sync::detail::DeltaSource source(other);
  source.snapshot();
  other.commit("q1", CommitBatch().put("user", "mallory2"));
  const sync::detail::SourceBatch batch = source.poll(100);
  BOOST_REQUIRE(batch.items.size() == 1u);

  RawPeer peer(server.port());
  peer.send(wire::detail::make_hello(
      wire::detail::Hello{wire::detail::kProtocolVersion, other.info().store_id, ChangeFeed(other).next_seq()}));
  BOOST_REQUIRE(peer.wait_frames(1).size() == 1u);
  BOOST_TEST((wire::detail::parse_welcome(peer.frames()[0]) ==
              wire::detail::Welcome{primary.info().store_id, position.applied_seq}));
  peer.send(sync::detail::make_item_frame(batch.items[0], FrameType::Delta, batch.items[0].seq));
  expect_closed(peer, "Delta for store " + other.info().store_id_hex() + " but the standby follows store " +
                          primary.info().store_id_hex());
}

// Silence, or a first frame that never completes: closed after
// handshake_timeout (300 ms here), not before.
BOOST_FIXTURE_TEST_CASE(a_silent_connection_is_closed_after_the_handshake_timeout, QuickHandshake) {
  const std::string partial_opening =
      wire::detail::FrameCodec(replication_key(), wire::detail::Side::Client).opening().substr(0, 30);
  for (const std::string& first_bytes : {std::string(), partial_opening}) {
    const auto start = Clock::now();
    RawPeer peer(server.port(), RawPeer::Opening::Left);
    if (!first_bytes.empty()) peer.write(first_bytes);
    BOOST_TEST(peer.wait_closed(), "still open after " << kDeadline.count() << " s");
    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    BOOST_TEST(waited.count() >= 300);
    BOOST_TEST(peer.frames().empty());
    expect_logged_close(peer.name(), "no complete first frame");
  }
  expect_standby_unchanged();
  agent_session();
}

// One agent feeds the standby: a new authenticated Hello supersedes the
// previous agent connection, which is closed; the new one carries on.
BOOST_FIXTURE_TEST_CASE(a_second_agent_connection_supersedes_the_first, ServedStandby) {
  RawPeer first(server.port());
  first.send(hello());
  BOOST_REQUIRE(first.wait_frames(1).size() == 1u);
  RawPeer second(server.port());
  second.send(hello());
  BOOST_REQUIRE(second.wait_frames(1).size() == 1u);
  BOOST_TEST(first.wait_closed());
  BOOST_TEST(first.frames().size() == 1u);  // the Welcome, no Error: closed without a word
  expect_logged_close(first.name(), "superseded by a new agent connection from " + second.name());

  second.send(wire::detail::make_heartbeat(position.applied_seq));
  BOOST_REQUIRE(second.wait_frames(2).size() == 2u);
  BOOST_TEST((second.frames()[1] == wire::detail::make_ack(position.applied_seq)));
  second.close();
  expect_standby_unchanged();
  agent_session();
}

// ---- a dead link is noticed within three heartbeats ------------------------

namespace {

// The server end of fake backups on 127.0.0.1: accepts connections on an
// I/O thread and hands each, with a server codec, to `on_peer` (called on
// that thread); keeps every connection open until it is destroyed, which
// stops and joins the thread. Declare it last in its owner, so what
// on_peer uses exists before the thread starts.
class FakeBackupLoop {
 public:
  struct Peer {
    explicit Peer(tcp::socket s) : socket(std::move(s)) {}
    tcp::socket socket;
    wire::detail::FrameCodec codec{replication_key(), wire::detail::Side::Server};
    std::array<char, 4096> buffer{};
    bool welcomed = false;
  };

  explicit FakeBackupLoop(std::function<void(const std::shared_ptr<Peer>&)> on_peer)
      : on_peer_(std::move(on_peer)), acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~FakeBackupLoop() {
    io_.stop();
    thread_.join();
  }
  FakeBackupLoop(const FakeBackupLoop&) = delete;
  FakeBackupLoop& operator=(const FakeBackupLoop&) = delete;

  std::uint16_t port() const { return port_; }

 private:
  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec) return;
      auto peer = std::make_shared<Peer>(std::move(socket));
      peers_.push_back(peer);  // kept open until the end
      on_peer_(peer);
      accept();
    });
  }

  std::function<void(const std::shared_ptr<Peer>&)> on_peer_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::vector<std::shared_ptr<Peer>> peers_;
  std::thread thread_;
};

// A backup that welcomes each agent as an empty standby and then neither
// reads nor answers again: a link that died without a FIN or an RST.
class SilentBackup {
 public:
  std::uint16_t port() const { return loop_.port(); }

 private:
  using Peer = FakeBackupLoop::Peer;

  void read_hello(const std::shared_ptr<Peer>& peer) {
    peer->socket.async_read_some(asio::buffer(peer->buffer), [this, peer](boost::system::error_code ec, std::size_t n) {
      if (ec) return;
      peer->codec.feed(std::string_view(peer->buffer.data(), n));
      const std::optional<wire::detail::Frame> hello = peer->codec.next();
      if (const std::string answer = peer->codec.take_answer(); !answer.empty())
        asio::write(peer->socket, asio::buffer(answer));
      if (hello) {
        const std::string welcome = peer->codec.encode(wire::detail::make_welcome(wire::detail::Welcome{}));
        asio::write(peer->socket, asio::buffer(welcome));
        return;  // never reads again
      }
      read_hello(peer);
    });
  }

  FakeBackupLoop loop_{[this](const std::shared_ptr<Peer>& peer) { read_hello(peer); }};
};

}  // namespace

// The agent, welcomed, streams its snapshot into a link that answers no
// more: with the default options it gives the link up once three
// heartbeats' time passed unanswered, and connects again.
BOOST_AUTO_TEST_CASE(an_agent_notices_a_dead_link_within_three_heartbeats) {
  SegmentGuard guard("bs_dead");
  Store primary = make_store(guard.name(), 4096, kSegmentBytes);
  primary.create_session("s");
  primary.commit("s", CommitBatch{}.put("cart", std::string(500, 'c')));
  SilentBackup backup;
  LogLines log;
  AgentThread agent(primary, backup.port(), log.sink("agent"));
  BOOST_TEST(log.wait_for_line("no acknowledgement for 3000 ms"));
  BOOST_TEST(sync::AgentOptions{}.ack_timeout == 3 * sync::AgentOptions{}.heartbeat_interval);
  // It connects again (and is welcomed again) after giving the link up.
  BOOST_TEST(poll_until([&] { return count_with(log.lines(), "connected to backup") >= 2; }, kDeadline));
}

// A welcomed agent that goes silent (no frame, no heartbeat) is closed
// after three heartbeats' time (the default idle_timeout), not before.
BOOST_FIXTURE_TEST_CASE(a_silent_agent_is_closed_after_three_heartbeats, ServedStandby) {
  BOOST_TEST(sync::BackupServerOptions{}.idle_timeout == 3 * sync::AgentOptions{}.heartbeat_interval);
  RawPeer peer(server.port());
  peer.send(hello());
  BOOST_REQUIRE(peer.wait_frames(1).size() == 1u);
  const auto welcomed = Clock::now();
  BOOST_TEST(peer.wait_closed(), "still open after " << kDeadline.count() << " s");
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - welcomed);
  BOOST_TEST(waited.count() >= 2900);  // the timer starts when the server wrote the Welcome
  expect_logged_close(peer.name(), "silent for 3000 ms");
  expect_standby_unchanged();
  agent_session();
}

// ---- a frame that carries the position is not told again -------------------

namespace {

// A backup that welcomes each agent at the position its Hello names (so the
// agent streams from there, without a snapshot), records the type and
// sequence of every frame after Hello, and acknowledges each frame that
// carries a position.
class RecordingBackup {
 public:
  std::uint16_t port() const { return loop_.port(); }

  // The frames recorded once there are `count` of them, or what came by the
  // deadline.
  std::vector<std::pair<FrameType, std::uint64_t>> wait_frames(std::size_t count) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, kDeadline, [&] { return frames_.size() >= count; });
    return frames_;
  }

 private:
  using Peer = FakeBackupLoop::Peer;

  void read(const std::shared_ptr<Peer>& peer) {
    peer->socket.async_read_some(asio::buffer(peer->buffer), [this, peer](boost::system::error_code ec, std::size_t n) {
      if (ec) return;
      peer->codec.feed(std::string_view(peer->buffer.data(), n));
      std::string answer;
      while (std::optional<Frame> frame = peer->codec.next()) answer += on_frame(*peer, *frame);
      answer.insert(0, peer->codec.take_answer());
      if (!answer.empty()) asio::write(peer->socket, asio::buffer(answer));
      read(peer);
    });
  }

  std::string on_frame(Peer& peer, const Frame& frame) {
    if (!peer.welcomed) {
      const wire::detail::Hello hello = wire::detail::parse_hello(frame);
      peer.welcomed = true;
      wire::detail::Welcome welcome;
      welcome.store_id = hello.store_id;
      welcome.last_applied_seq = hello.next_seq;
      welcome.epoch = hello.epoch;
      return peer.codec.encode(wire::detail::make_welcome(welcome));
    }
    {
      std::lock_guard lock(mutex_);
      frames_.emplace_back(frame.type, frame.seq);
    }
    changed_.notify_all();
    const bool positioned =
        frame.type == FrameType::Delta || frame.type == FrameType::Removal || frame.type == FrameType::Heartbeat;
    return positioned ? peer.codec.encode(wire::detail::make_ack(frame.seq)) : std::string();
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::pair<FrameType, std::uint64_t>> frames_;
  FakeBackupLoop loop_{[this](const std::shared_ptr<Peer>& peer) { read(peer); }};
};

}  // namespace

// A Delta tells the backup the position it reaches: the agent must not
// follow it with a Heartbeat of the same position (the poll after the
// Delta's write finds nothing new and, before the Ack is back, the position
// looked untold: every commit cost a second frame, a second wake-up of the
// backup and a second Ack). Heartbeats are for positions no frame carried.
BOOST_AUTO_TEST_CASE(a_position_a_delta_carried_is_not_told_again_by_a_heartbeat) {
  SegmentGuard guard("bs_told");
  Store primary = make_store(guard.name(), 4096, kSegmentBytes);
  primary.create_session("a");
  primary.create_session("b");
  RecordingBackup backup;
  sync::AgentOptions options;
  options.port = backup.port();
  options.heartbeat_interval = 600s;  // no idle heartbeat within the test
  options.ack_timeout = 1800s;
  options.log = test_log("agent");
  sync::Agent agent(primary, replication_key(), options);
  std::thread runner([&] { agent.run(); });
  struct Joiner {
    sync::Agent& agent;
    std::thread& runner;
    ~Joiner() {
      agent.stop();
      runner.join();
    }
  } joiner{agent, runner};
  BOOST_REQUIRE(poll_until([&] { return AgentSeat(primary).status().state == AgentState::Streaming; }, kDeadline));

  primary.commit("a", CommitBatch{}.put("cart", "one"));
  const std::uint64_t first = ChangeFeed(primary).next_seq();
  // Acknowledged: the agent has written the Delta and read its Ack.
  BOOST_REQUIRE(poll_until([&] { return AgentSeat(primary).status().acked_seq >= first; }, kDeadline));
  primary.commit("b", CommitBatch{}.put("cart", "two"));
  const std::uint64_t second = ChangeFeed(primary).next_seq();

  const std::vector<std::pair<FrameType, std::uint64_t>> frames = backup.wait_frames(2);
  BOOST_REQUIRE(frames.size() >= 2u);
  BOOST_TEST((frames[0] == std::pair{FrameType::Delta, first}));
  BOOST_TEST((frames[1] == std::pair{FrameType::Delta, second}),
             "second frame: " << wire::detail::frame_type_name(frames[1].first) << " at " << frames[1].second);
}
