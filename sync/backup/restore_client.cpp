#include "sync/backup/restore_client.hpp"

#include <array>
#include <optional>

#include <boost/asio.hpp>

#include "sync/backup/detail/replication_item.hpp"
#include "sync/backup/detail/standby_applier.hpp"
#include "sync/wire/detail/payloads.hpp"

namespace shmsession::sync {

using detail::ItemDecoder;
using detail::StandbyApplier;

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

// Blocking reads and writes with one deadline per operation.
class TimedSocket {
 public:
  TimedSocket(const Endpoint& to, std::chrono::milliseconds timeout)
      : socket_(io_), timeout_(timeout), where_(to.to_string()) {
    tcp::resolver resolver(io_);
    run(
        [&](auto done) {
          resolver.async_resolve(to.host, std::to_string(to.port),
                                 [&, done](boost::system::error_code e, const tcp::resolver::results_type& r) {
                                   if (e) return done(e);
                                   asio::async_connect(
                                       socket_, r,
                                       [done](boost::system::error_code e2, const tcp::endpoint&) { done(e2); });
                                 });
        },
        "connect to " + where_);
  }

  void write(const std::string& bytes) {
    run(
        [&](auto done) {
          asio::async_write(socket_, asio::buffer(bytes),
                            [done](boost::system::error_code e, std::size_t) { done(e); });
        },
        "send to " + where_);
  }

  // Returns the bytes read; 0 at end of stream.
  std::size_t read(std::array<char, 65536>& buffer) {
    std::size_t got = 0;
    bool eof = false;
    run(
        [&](auto done) {
          socket_.async_read_some(asio::buffer(buffer), [&, done](boost::system::error_code e, std::size_t n) {
            got = n;
            if (e == asio::error::eof) eof = true, e = {};
            done(e);
          });
        },
        "read from " + where_);
    return eof ? 0 : got;
  }

 private:
  template <class Start>
  void run(Start start, const std::string& what) {
    std::optional<boost::system::error_code> result;
    asio::steady_timer timer(io_, timeout_);
    timer.async_wait([&](boost::system::error_code e) {
      if (!e && !result) socket_.cancel();
    });
    io_.restart();
    start([&](boost::system::error_code e) {
      result = e;
      timer.cancel();
    });
    io_.run();
    if (!result || *result == asio::error::operation_aborted)
      throw Error(Errc::Io, "cannot " + what + ": no answer within " + std::to_string(timeout_.count()) + " ms");
    if (*result) throw Error(Errc::Io, "cannot " + what + ": " + result->message());
  }

  asio::io_context io_;
  tcp::socket socket_;
  std::chrono::milliseconds timeout_;
  std::string where_;
};

}  // namespace

RestoreResult restore_from_backup(Store& primary, const Endpoint& from, const wire::KeyRing& keys,
                                  std::chrono::milliseconds timeout) {
  const std::uint64_t present = primary.stats().sessions;
  if (present != 0)
    throw Error(Errc::InvalidArgument, "store '" + primary.info().name + "' holds " + std::to_string(present) +
                                           " sessions: restore fills an empty store only");
  TimedSocket socket(from, timeout);
  wire::detail::FrameCodec codec(keys, wire::detail::Side::Client);
  ItemDecoder items;
  socket.write(codec.opening());
  StandbyApplier applier(primary);
  RestoreResult result;
  enum class Step { Welcome, Begin, Sessions, Done } step = Step::Welcome;
  std::array<char, 65536> buffer{};
  while (step != Step::Done) {
    const std::size_t n = socket.read(buffer);
    if (n == 0) throw Error(Errc::Io, "backup " + from.to_string() + " closed the connection before the restore ended");
    result.bytes_received += n;
    codec.feed(std::string_view(buffer.data(), n));
    while (step != Step::Done) {
      const bool was_keyed = codec.keyed();
      std::optional<wire::detail::Frame> frame = codec.next();
      if (!was_keyed && codec.keyed()) socket.write(codec.encode(wire::detail::make_restore_request()));
      if (!frame) break;
      if (frame->type == wire::detail::FrameType::Error)
        throw Error(Errc::Io, "backup " + from.to_string() + " refused: " + wire::detail::parse_error(*frame));
      switch (step) {
        case Step::Welcome: {
          const wire::detail::Welcome welcome = wire::detail::parse_welcome(*frame);
          result.backup_position.primary_store_id = welcome.store_id;
          result.backup_position.applied_seq = welcome.last_applied_seq;
          step = Step::Begin;
          break;
        }
        case Step::Begin:
          if (frame->type != wire::detail::FrameType::SnapshotBegin)
            throw Error(Errc::Corrupt, "restore: expected SnapshotBegin, got " +
                                           std::string(wire::detail::frame_type_name(frame->type)));
          step = Step::Sessions;
          break;
        case Step::Sessions:
          if (frame->type == wire::detail::FrameType::SnapshotEnd) {
            step = Step::Done;
            break;
          }
          if (frame->type != wire::detail::FrameType::SnapshotSession)
            throw Error(Errc::Corrupt, "restore: expected SnapshotSession, got " +
                                           std::string(wire::detail::frame_type_name(frame->type)));
          if (applier.apply(items.item(*frame)) != StandbyApplier::Outcome::Applied)
            throw Error(Errc::Corrupt, "restore: a session from the backup fails its checksums");
          ++result.sessions;
          break;
        case Step::Done:
          break;
      }
    }
  }
  return result;
}

}  // namespace shmsession::sync
