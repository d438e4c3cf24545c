#include "sync/backup/backup_server.hpp"

#include <array>
#include <csignal>
#include <deque>
#include <iostream>
#include <set>

#include <boost/asio.hpp>

#include "sync/backup/detail/standby_link.hpp"

namespace shmsession::sync {

using detail::StandbyLink;

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {
constexpr std::size_t kServerReadBytes = std::size_t{256} * 1024;
constexpr std::size_t kRestoreChunkBytes = 1 << 20;
}  // namespace

struct BackupServer::Impl {
  class Connection;

  Impl(Store& s, const wire::KeyRing& k, BackupServerOptions o)
      : standby(s), keys(k), options(std::move(o)), acceptor(io), signals(io) {
    if (!options.log) options.log = [](const std::string& line) { std::cerr << line << '\n'; };
  }

  void accept();
  const wire::KeyRing& current_keys();
  void log(const std::string& line) const { options.log(line); }

  Store& standby;
  wire::KeyRing keys;
  BackupServerOptions options;
  asio::io_context io;
  tcp::acceptor acceptor;
  asio::signal_set signals;
  std::set<std::shared_ptr<Connection>> connections;
  std::weak_ptr<Connection> agent;  // the connection feeding the standby
};

class BackupServer::Impl::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Impl& server, tcp::socket socket, std::string peer)
      : server_(server),
        socket_(std::move(socket)),
        timer_(server.io),
        peer_(std::move(peer)),
        link_(server.standby, server.current_keys(), server.options.limits) {}

  void start() {
    arm_timer(server_.options.handshake_timeout, "no complete first frame");
    read();
  }

  // Closes now, without sending anything more (superseded, stopping).
  void close(const std::string& why) {
    if (closed_) return;
    closed_ = true;
    server_.log("connection from " + peer_ + " closed: " + why);
    boost::system::error_code ignored;
    timer_.cancel();
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    server_.connections.erase(shared_from_this());
  }

 private:
  void read() {
    socket_.async_read_some(
        asio::buffer(buffer_), [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
          if (self->closed_) return;
          if (ec) return self->close(ec == asio::error::eof ? std::string("peer closed the connection") : ec.message());
          self->on_bytes(std::string_view(self->buffer_.data(), n));
        });
  }

  void on_bytes(std::string_view bytes) {
    const StandbyLink::Role before = link_.role();
    StandbyLink::Output out = link_.feed(bytes);
    if (before != link_.role()) on_role();
    for (const std::string& line : out.log) server_.log(peer_ + ": " + line);
    queue(std::move(out.bytes));
    if (out.close) {
      closing_ = true;
      close_reason_ = out.reason;
      timer_.cancel();
      if (out_.empty() && !writing_) close(close_reason_);
      return;
    }
    // Until its first frame is complete the handshake deadline stands: a
    // peer trickling bytes must not hold a connection without the key.
    if (link_.role() != StandbyLink::Role::Unknown)
      arm_timer(server_.options.idle_timeout, "silent for " + std::to_string(server_.options.idle_timeout.count()) +
                                                  " ms (an agent heartbeats every second)");
    if (link_.role() == StandbyLink::Role::Restore) return pump_restore();
    read();
  }

  void on_role() {
    if (link_.role() == StandbyLink::Role::Agent) {
      if (std::shared_ptr<Connection> previous = server_.agent.lock(); previous && previous.get() != this)
        previous->close("superseded by a new agent connection from " + peer_);
      server_.agent = shared_from_this();
      server_.log("agent connected from " + peer_ + key_text());
    } else if (link_.role() == StandbyLink::Role::Restore) {
      server_.log("restore client connected from " + peer_ + key_text());
    }
  }

  std::string key_text() const {
    const std::optional<wire::KeyId> id = link_.key_in_use();
    return id ? " (key " + wire::key_id_text(*id) + ")" : std::string();
  }

  void pump_restore() {
    if (!link_.restore_pending()) {
      closing_ = true;
      close_reason_ = "restore sent";
    } else if (out_.empty()) {
      std::string chunk;
      try {
        chunk = link_.next_restore_chunk(kRestoreChunkBytes);
      } catch (const Error& e) {  // a standby session too large for one frame, a damaged standby
        return close(std::string("restore failed: ") + e.what());
      }
      queue(std::move(chunk));
      arm_timer(server_.options.idle_timeout, "restore client stopped reading");
    }
    if (closing_ && out_.empty() && !writing_) close(close_reason_);
  }

  void queue(std::string bytes) {
    if (!bytes.empty()) out_.push_back(std::move(bytes));
    write();
  }

  void write() {
    if (writing_ || out_.empty() || closed_) return;
    writing_ = true;
    asio::async_write(socket_, asio::buffer(out_.front()),
                      [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                        self->writing_ = false;
                        if (self->closed_) return;
                        if (ec) return self->close("write failed: " + ec.message());
                        self->out_.pop_front();
                        if (self->link_.role() == StandbyLink::Role::Restore) return self->pump_restore();
                        if (self->closing_ && self->out_.empty()) return self->close(self->close_reason_);
                        self->write();
                      });
  }

  void arm_timer(std::chrono::milliseconds after, std::string why) {
    timer_.expires_after(after);
    timer_.async_wait([self = shared_from_this(), why = std::move(why)](boost::system::error_code ec) {
      if (!ec && !self->closed_) self->close(why);
    });
  }

  Impl& server_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  std::string peer_;
  StandbyLink link_;
  std::array<char, kServerReadBytes> buffer_{};
  std::deque<std::string> out_;
  bool writing_ = false;
  bool closing_ = false;
  bool closed_ = false;
  std::string close_reason_;
};

// The key ring a new connection gets: read again from the key file when
// there is one, so a key rotation needs no restart; a file that cannot be
// read now leaves the keys in use (logged).
const wire::KeyRing& BackupServer::Impl::current_keys() {
  if (options.key_file.empty()) return keys;
  try {
    keys = wire::load_key_file(options.key_file);
  } catch (const Error& e) {
    log(std::string("keeping the keys in use: ") + e.what());
  }
  return keys;
}

void BackupServer::Impl::accept() {
  acceptor.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      boost::system::error_code peer_ec;
      const tcp::endpoint remote = socket.remote_endpoint(peer_ec);
      const std::string peer =
          peer_ec ? std::string("?") : remote.address().to_string() + ":" + std::to_string(remote.port());
      socket.set_option(tcp::no_delay(true), peer_ec);
      auto connection = std::make_shared<Connection>(*this, std::move(socket), peer);
      connections.insert(connection);
      connection->start();
    } else {
      log("accept failed: " + ec.message());
    }
    accept();
  });
}

BackupServer::BackupServer(Store& standby, const wire::KeyRing& keys, BackupServerOptions options)
    : impl_(std::make_unique<Impl>(standby, keys, std::move(options))) {
  Impl& s = *impl_;
  const std::string where = s.options.address + ":" + std::to_string(s.options.port);
  boost::system::error_code ec;
  const asio::ip::address address = asio::ip::make_address(s.options.address, ec);
  if (ec) throw Error(Errc::InvalidArgument, "listen address '" + s.options.address + "': " + ec.message());
  const tcp::endpoint endpoint(address, s.options.port);
  s.acceptor.open(endpoint.protocol(), ec);
  if (!ec) s.acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) s.acceptor.bind(endpoint, ec);
  if (!ec) s.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw Error(Errc::Io, "cannot listen on " + where + ": " + ec.message());
  if (s.options.stop_on_signals) {
    s.signals.add(SIGTERM);
    s.signals.add(SIGINT);
    s.signals.async_wait([this](boost::system::error_code error, int signal) {
      if (error) return;
      impl_->log(std::string("stopping on ") + (signal == SIGTERM ? "SIGTERM" : "SIGINT"));
      stop();
    });
  }
  s.accept();
}

BackupServer::~BackupServer() = default;

std::uint16_t BackupServer::port() const noexcept {
  boost::system::error_code ec;
  return impl_->acceptor.local_endpoint(ec).port();
}

void BackupServer::run() { impl_->io.run(); }

void BackupServer::stop() {
  asio::post(impl_->io, [this] {
    Impl& s = *impl_;
    boost::system::error_code ignored;
    s.acceptor.close(ignored);
    s.signals.cancel(ignored);
    for (const auto& connection : std::set(s.connections)) connection->close("backup daemon stopping");
    s.io.stop();
  });
}

void BackupServer::drop_agent() {
  asio::post(impl_->io, [this] {
    if (std::shared_ptr<Impl::Connection> agent = impl_->agent.lock()) agent->close("dropped on request");
  });
}

}  // namespace shmsession::sync
