// The pre-shared key that authenticates agent <-> backup frames: 32 bytes,
// used as the HMAC-SHA-256 key of every frame (wire_format.md). Both hosts
// read the same key file; whoever can read it can forge frames, so the file
// must not be accessible by group or others.
//
// A Key wipes its bytes (sodium_memzero) when destroyed, and compares in
// constant time. It has no printing operator on purpose.
//
// Thread safety: a Key is an immutable value; load_key_file and generate_key
// are reentrant. Cross-process safety: no shared state.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include <cstddef>
#include "shm/error.hpp"  // the Error these functions throw

namespace shmsession::sync::wire {

inline constexpr std::size_t kKeyBytes = 32;
// A key file holds the key raw, or as hex (an optional final '\n' allowed).
inline constexpr std::size_t kKeyHexChars = 2 * kKeyBytes;

class Key {
 public:
  using Bytes = std::array<std::uint8_t, kKeyBytes>;

  explicit Key(const Bytes& bytes) noexcept : bytes_(bytes) {}
  ~Key();
  Key(const Key&) = default;
  Key& operator=(const Key&) = default;

  const std::uint8_t* data() const noexcept { return bytes_.data(); }
  // Constant time (sodium_memcmp).
  friend bool operator==(const Key& a, const Key& b) noexcept;

 private:
  Bytes bytes_;
};

// Reads a key file: exactly 32 raw bytes, or 64 hex digits (either case)
// optionally followed by one '\n'. The file must be a regular file that
// neither group nor others may access (mode & 077 == 0, e.g. 0600 or 0400).
// Throws: Error(Io) when the file is missing or cannot be opened or read;
// Error(InvalidArgument) when it is not a regular file, its mode lets group
// or others in, or its contents are neither form. Messages name the path,
// never the key bytes.
Key load_key_file(const std::string& path);

// A fresh random key (randombytes_buf).
// Throws: Error(Io) when libsodium cannot initialize.
Key generate_key();

}  // namespace shmsession::sync::wire
