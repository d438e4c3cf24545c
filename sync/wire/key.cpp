#include "sync/wire/key.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

#include "sync/wire/detail/sodium.hpp"

namespace shmsession::sync::wire {

static_assert(kKeyBytes == crypto_aead_chacha20poly1305_ietf_KEYBYTES);
static_assert(kKeyBytes >= crypto_generichash_KEYBYTES_MIN && kKeyBytes <= crypto_generichash_KEYBYTES_MAX);

namespace {

// The largest file the hex form can be: a ring of full lines.
constexpr std::size_t kMaxKeyFileBytes = kMaxRingKeys * (kKeyHexChars + 1);

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

bool parse_hex_key(const char* text, Key::Bytes& out) {
  std::size_t decoded = 0;
  const char* end = nullptr;
  return sodium_hex2bin(out.data(), out.size(), text, kKeyHexChars, nullptr, &decoded, &end) == 0 &&
         decoded == kKeyBytes && end == text + kKeyHexChars;
}

// The keys of a file's contents, or an empty list with `why` set.
std::vector<Key> parse_contents(const char* text, std::size_t size, std::string& why) {
  std::vector<Key> keys;
  Key::Bytes bytes{};
  if (size == kKeyBytes) {
    std::memcpy(bytes.data(), text, kKeyBytes);
    keys.emplace_back(bytes);
  } else {
    for (std::size_t pos = 0, line = 1; pos < size; ++line) {
      const std::size_t left = size - pos;
      const bool whole = left >= kKeyHexChars && (left == kKeyHexChars || text[pos + kKeyHexChars] == '\n');
      if (!whole || !parse_hex_key(text + pos, bytes)) {
        why = "line " + std::to_string(line) + " is not 64 hex digits";
        keys.clear();
        break;
      }
      if (keys.size() == kMaxRingKeys) {
        why = "more than " + std::to_string(kMaxRingKeys) + " keys";
        keys.clear();
        break;
      }
      keys.emplace_back(bytes);
      pos += std::min(left, kKeyHexChars + 1);
    }
    if (keys.empty() && why.empty()) why = "holds no key";
  }
  sodium_memzero(bytes.data(), bytes.size());
  return keys;
}

constexpr char kKeyIdText[] = "shmsession key id";

}  // namespace

Key::~Key() { sodium_memzero(bytes_.data(), bytes_.size()); }

bool operator==(const Key& a, const Key& b) noexcept {
  return sodium_memcmp(a.bytes_.data(), b.bytes_.data(), kKeyBytes) == 0;
}

KeyId key_id(const Key& key) {
  detail::ensure_sodium();
  KeyId id{};
  crypto_generichash(id.data(), id.size(), reinterpret_cast<const unsigned char*>(kKeyIdText), sizeof kKeyIdText - 1,
                     key.data(), kKeyBytes);
  return id;
}

std::string key_id_text(const KeyId& id) {
  char text[2 * kKeyIdBytes + 1];
  sodium_bin2hex(text, sizeof text, id.data(), id.size());
  return text;
}

KeyRing::KeyRing(const Key& key) : keys_{key}, ids_{key_id(key)} {}

KeyRing::KeyRing(std::vector<Key> keys) : keys_(std::move(keys)) {
  if (keys_.empty() || keys_.size() > kMaxRingKeys)
    throw Error(Errc::InvalidArgument,
                "a key ring holds 1 to " + std::to_string(kMaxRingKeys) + " keys, not " + std::to_string(keys_.size()));
  for (const Key& key : keys_) {
    const KeyId id = key_id(key);
    if (find(id) != nullptr) throw Error(Errc::InvalidArgument, "key " + key_id_text(id) + " is listed twice");
    ids_.push_back(id);
  }
}

const Key* KeyRing::find(const KeyId& id) const noexcept {
  for (std::size_t i = 0; i < ids_.size(); ++i)
    if (sodium_memcmp(ids_[i].data(), id.data(), id.size()) == 0) return &keys_[i];
  return nullptr;
}

KeyRing load_key_file(const std::string& path) {
  const FileDescriptor file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0) fail(Errc::Io, path, std::string("cannot open: ") + shmsession::errno_text(errno));
  check_file(file.fd, path);
  char text[kMaxKeyFileBytes + 1];
  const std::size_t size = read_bounded(file.fd, path, text, sizeof text);
  std::string why;
  std::vector<Key> keys;
  if (size > kMaxKeyFileBytes)
    why = "more than " + std::to_string(kMaxKeyFileBytes) + " bytes";
  else
    keys = parse_contents(text, size, why);
  sodium_memzero(text, sizeof text);
  if (keys.empty())
    fail(Errc::InvalidArgument, path,
         "must hold 32 raw bytes, or 1 to " + std::to_string(kMaxRingKeys) +
             " lines of 64 hex digits (one key each): " + why);
  try {
    return KeyRing(std::move(keys));
  } catch (const Error& e) {
    fail(Errc::InvalidArgument, path, e.what());
  }
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
