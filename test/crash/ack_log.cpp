#include "test/crash/ack_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "shm/error.hpp"

namespace shmsession::test::crash {
namespace {

std::runtime_error system_error(const std::string& what) {
  return std::runtime_error(what + ": " + shmsession::errno_text(errno));
}

// Splits "<kind> <session> <version> <checksum>"; false if malformed.
bool parse_line(std::string_view line, char& kind, std::string_view& session, std::uint64_t& version,
                std::uint64_t& checksum) {
  if (line.size() < 7 || line[1] != ' ') return false;
  kind = line[0];
  line.remove_prefix(2);
  std::size_t space = line.find(' ');
  if (space == std::string_view::npos || space == 0) return false;
  session = line.substr(0, space);
  line.remove_prefix(space + 1);
  const char* end = line.data() + line.size();
  auto [p, ec] = std::from_chars(line.data(), end, version);
  if (ec != std::errc() || p == end || *p != ' ') return false;
  auto [q, ec2] = std::from_chars(p + 1, end, checksum, 16);
  return ec2 == std::errc() && q == end;
}

}  // namespace

AckWriter::AckWriter(const std::string& path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd_ < 0) throw system_error("open " + path);
}

AckWriter::~AckWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void AckWriter::append(char kind, std::string_view session, std::uint64_t version, std::uint64_t checksum) {
  char line[256];
  int n =
      std::snprintf(line, sizeof line, "%c %.*s %llu %llx\n", kind, static_cast<int>(session.size()), session.data(),
                    static_cast<unsigned long long>(version), static_cast<unsigned long long>(checksum));
  if (n <= 0 || static_cast<std::size_t>(n) >= sizeof line) throw std::runtime_error("ack record too long");
  for (;;) {
    ssize_t w = ::write(fd_, line, static_cast<std::size_t>(n));
    if (w == n) return;
    if (w < 0 && errno == EINTR) continue;
    throw system_error("write ack log");
  }
}

void AckLedger::follow(const std::string& path, bool writer_dead) {
  Cursor& cursor = cursors_[path];
  if (cursor.closed) return;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char buf[1 << 16];
    for (;;) {
      ssize_t n = ::pread(fd, buf, sizeof buf, static_cast<off_t>(cursor.offset));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      cursor.offset += static_cast<std::uint64_t>(n);
      std::string_view chunk(buf, static_cast<std::size_t>(n));
      for (std::size_t nl; (nl = chunk.find('\n')) != std::string_view::npos;) {
        if (cursor.partial.empty()) {
          take_line(path, chunk.substr(0, nl));
        } else {
          cursor.partial.append(chunk.substr(0, nl));
          take_line(path, cursor.partial);
          cursor.partial.clear();
        }
        chunk.remove_prefix(nl + 1);
      }
      cursor.partial.append(chunk);
    }
    ::close(fd);
  }
  // A worker killed before it opened its log has none: nothing acknowledged.
  if (writer_dead) {
    if (!cursor.partial.empty()) ++truncated_;
    cursor.partial.clear();
    cursor.closed = true;
  }
}

void AckLedger::take_line(const std::string& path, std::string_view line) {
  char kind = 0;
  std::string_view session;
  std::uint64_t version = 0, checksum = 0;
  if (!parse_line(line, kind, session, version, checksum)) {
    errors_.push_back(path + ": malformed ack line '" + std::string(line) + "'");
    return;
  }
  ++records_;
  auto [it, fresh] = sessions_.try_emplace(std::string(session));
  Expectation& e = it->second;
  if (fresh || version > e.version) {
    e = Expectation{version, checksum, kind, path};
  } else if (version == e.version && checksum != e.checksum) {
    errors_.push_back("session '" + std::string(session) + "' acknowledged twice at version " +
                      std::to_string(version) + " with different values (" + e.log + " and " + path + ")");
  }
}

}  // namespace shmsession::test::crash
