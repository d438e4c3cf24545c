#include "sync/wire/key.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "sync/wire/detail/sodium.hpp"

namespace shmsession::sync::wire {

static_assert(kKeyBytes == crypto_auth_hmacsha256_KEYBYTES);

namespace {

// The largest file either form can be: hex digits and a final '\n'.
constexpr std::size_t kMaxKeyFileBytes = kKeyHexChars + 1;

[[noreturn]] void fail(Errc code, const std::string& path, const std::string& why) {
  throw Error(code, "key file " + path + ": " + why);
}

// Closes the descriptor on every path out of load_key_file.
struct FileDescriptor {
  int fd;
  ~FileDescriptor() {
    if (fd >= 0) ::close(fd);
  }
};

std::string mode_text(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

void check_file(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail(Errc::Io, path, std::string("cannot stat: ") + shmsession::errno_text(errno));
  if (!S_ISREG(st.st_mode)) fail(Errc::InvalidArgument, path, "not a regular file");
  if ((st.st_mode & 077) != 0)
    fail(Errc::InvalidArgument, path,
         "mode " + mode_text(st.st_mode) + " lets group or others access the key; run chmod 600 on it");
}

// Reads at most kMaxKeyFileBytes + 1 bytes, so an oversized file is seen as
// such without reading it all. The caller wipes the buffer.
std::size_t read_bounded(int fd, const std::string& path, char* buffer, std::size_t capacity) {
  std::size_t size = 0;
  while (size < capacity) {
    const ssize_t got = ::read(fd, buffer + size, capacity - size);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) fail(Errc::Io, path, std::string("cannot read: ") + shmsession::errno_text(errno));
    if (got == 0) break;
    size += static_cast<std::size_t>(got);
  }
  return size;
}

bool parse_contents(const char* text, std::size_t size, Key::Bytes& out) {
  if (size == kKeyBytes) {
    std::memcpy(out.data(), text, kKeyBytes);
    return true;
  }
  if (size == kKeyHexChars + 1 && text[kKeyHexChars] == '\n') --size;
  if (size != kKeyHexChars) return false;
  std::size_t decoded = 0;
  const char* end = nullptr;
  return sodium_hex2bin(out.data(), out.size(), text, size, nullptr, &decoded, &end) == 0 && decoded == kKeyBytes &&
         end == text + size;
}

}  // namespace

Key::~Key() { sodium_memzero(bytes_.data(), bytes_.size()); }

bool operator==(const Key& a, const Key& b) noexcept {
  return sodium_memcmp(a.bytes_.data(), b.bytes_.data(), kKeyBytes) == 0;
}

Key load_key_file(const std::string& path) {
  const FileDescriptor file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0) fail(Errc::Io, path, std::string("cannot open: ") + shmsession::errno_text(errno));
  check_file(file.fd, path);
  char text[kMaxKeyFileBytes + 1];
  const std::size_t size = read_bounded(file.fd, path, text, sizeof text);
  Key::Bytes bytes{};
  const bool ok = parse_contents(text, size, bytes);
  sodium_memzero(text, sizeof text);
  if (!ok) {
    sodium_memzero(bytes.data(), bytes.size());
    fail(Errc::InvalidArgument, path,
         "must hold exactly 32 raw bytes or 64 hex digits (read " +
             (size > kMaxKeyFileBytes ? "more than " + std::to_string(kMaxKeyFileBytes) : std::to_string(size)) +
             " bytes)");
  }
  const Key key(bytes);
  sodium_memzero(bytes.data(), bytes.size());
  return key;
}

Key generate_key() {
  detail::ensure_sodium();
  Key::Bytes bytes{};
  randombytes_buf(bytes.data(), bytes.size());
  const Key key(bytes);
  sodium_memzero(bytes.data(), bytes.size());
  return key;
}

}  // namespace shmsession::sync::wire
