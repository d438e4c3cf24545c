// The pre-shared keys of the agent <-> backup link (wire_format.md). A
// connection's two directions are encrypted and authenticated with keys
// derived from one pre-shared key of 32 bytes and a random value from each
// end. Both hosts read a key file; whoever can read it can read and forge
// the link, so the file must not be accessible by group or others.
//
// A key file holds a key ring: one key, or several during a key rotation
// (README, "Rotating the replication key"). A connecting end (agent,
// restore client) uses the ring's first key and names it by its id (a
// keyed hash that reveals nothing of it); the backup daemon accepts any
// key of its ring.
//
// A Key wipes its bytes (sodium_memzero) when destroyed, and compares in
// constant time. It has no printing operator on purpose.
//
// Thread safety: Key and KeyRing are immutable values; load_key_file and
// generate_key are reentrant. Cross-process safety: no shared state.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "shm/error.hpp"  // the Error these functions throw

namespace shmsession::sync::wire {

inline constexpr std::size_t kKeyBytes = 32;
// A key file holds one key raw, or keys as lines of hex digits.
inline constexpr std::size_t kKeyHexChars = 2 * kKeyBytes;
// The most keys a ring holds (a rotation needs two).
inline constexpr std::size_t kMaxRingKeys = 8;
inline constexpr std::size_t kKeyIdBytes = 8;

using KeyId = std::array<std::uint8_t, kKeyIdBytes>;

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

// A key's id: BLAKE2b keyed with the key, over a fixed text. It names the
// key on the wire and in logs without revealing it.
// Throws: Error(Io) when libsodium cannot initialize.
KeyId key_id(const Key& key);
// 16 hex digits.
std::string key_id_text(const KeyId& id);

class KeyRing {
 public:
  // A ring of one key.
  KeyRing(const Key& key);  // NOLINT(google-explicit-constructor): a key is a ring of one
  // Throws: Error(InvalidArgument) for no key, more than kMaxRingKeys, or
  // a key listed twice.
  explicit KeyRing(std::vector<Key> keys);

  // The key a connecting end uses: the first.
  const Key& sending() const noexcept { return keys_.front(); }
  const KeyId& sending_id() const noexcept { return ids_.front(); }
  // The key with this id, or nullptr.
  const Key* find(const KeyId& id) const noexcept;
  std::size_t size() const noexcept { return keys_.size(); }

 private:
  std::vector<Key> keys_;
  std::vector<KeyId> ids_;
};

// Reads a key file: exactly 32 raw bytes (one key), or 1 to kMaxRingKeys
// lines of 64 hex digits (either case), each ended by '\n' (the last one
// may lack it); the first key is the one a connecting end uses. The file
// must be a regular file that neither group nor others may access
// (mode & 077 == 0, e.g. 0600 or 0400).
// Throws: Error(Io) when the file is missing or cannot be opened or read;
// Error(InvalidArgument) when it is not a regular file, its mode lets group
// or others in, or its contents are neither form. Messages name the path
// and the line, never the key bytes.
KeyRing load_key_file(const std::string& path);

// A fresh random key (randombytes_buf).
// Throws: Error(Io) when libsodium cannot initialize.
Key generate_key();

}  // namespace shmsession::sync::wire
