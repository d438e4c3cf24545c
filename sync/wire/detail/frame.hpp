// The encrypted, framed byte stream between the sync agent (or a restore
// client) and the backup daemon (sync/wire/wire_format.md). A connection
// opens with one clear opening from each end: the client's names the key
// it uses (by id) and carries its random nonce; the server's answers with
// its own. Each direction's frames are then sealed (ChaCha20-Poly1305,
// libsodium) under a key derived from the pre-shared key and both nonces,
// with a nonce that counts the frames: a frame of another connection, a
// frame sent back to its sender, one replayed, reordered, dropped or
// changed, fails to open. FrameCodec is one end's view of one connection:
// encode seals frames, feed + next open them. No networking here: the
// caller owns the socket.
//
// Decoding takes untrusted bytes. The opening and each frame's length are
// checked as soon as they are in, before a payload is waited for; a length
// over the cap fails at once, and nothing is ever reserved from a declared
// length. Only a frame that opens is returned. Any failure is final: the
// stream cannot be resynchronized, so the codec keeps refusing (the caller
// closes the connection and logs the error's one-line message).
//
// Thread safety: none; one codec belongs to one connection's thread.
// Cross-process safety: no shared state.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "shm/error.hpp"  // the Error these functions throw
#include "sync/wire/detail/wire_format.hpp"
#include "sync/wire/frame_limits.hpp"
#include "sync/wire/key.hpp"

namespace shmsession::sync::wire::detail {

struct Frame {
  FrameType type = FrameType::Error;
  std::uint64_t seq = 0;  // meaning per type: wire_format.md
  std::string payload;

  bool operator==(const Frame&) const = default;
};

// Which end of a connection a codec is: the client (agent, restore client)
// connects and opens first; the server (backup daemon) answers.
enum class Side : std::uint8_t { Client = 1, Server = 2 };

using ConnectionNonce = std::array<std::uint8_t, kConnectionNonceBytes>;

class FrameCodec {
 public:
  // A client uses keys.sending(); a server accepts any key of `keys`.
  // `nonce`: this end's random value, drawn from libsodium when not given
  // (tests and the fuzzer give one to make the stream reproducible).
  // Throws: Error(InvalidArgument) when max_payload_bytes exceeds what the
  // u32 length field can carry; Error(Io) when libsodium cannot initialize.
  FrameCodec(const KeyRing& keys, Side side, FrameLimits limits = {},
             std::optional<ConnectionNonce> nonce = std::nullopt);
  ~FrameCodec();
  FrameCodec(const FrameCodec&) = delete;
  FrameCodec& operator=(const FrameCodec&) = delete;

  // Client: the opening, to be sent before anything else.
  // Throws: Error(InvalidArgument) on a server.
  std::string opening() const;
  // Server: the answer to the client's opening once next() has read it
  // (sent before any frame), then empty. It is made even when the client's
  // key is unknown, to tell the client so.
  std::string take_answer();
  // Whether both openings are through: frames can be sealed and opened.
  bool keyed() const noexcept { return keyed_; }

  // The sealed bytes of `frame`.
  // Throws: Error(InvalidArgument) before keyed(), for a type outside
  // FrameType, or a payload over max_payload_bytes, so a sender never makes
  // a frame its peer refuses.
  std::string encode(const Frame& frame);

  // Appends received bytes. Requires: the caller drains next() after each
  // feed, so the buffer holds at most one partial frame plus one read.
  void feed(std::string_view bytes);

  // Reads the peer's opening first, then returns the next frame that
  // opens; nullopt when more bytes are needed (any prefix of a valid stream
  // gives nullopt, never an error).
  // Throws: Error(Corrupt, "wire ...: <reason>") for a bad opening (magic,
  // version, side, an unknown key: "the two hosts' key files differ"), a
  // declared length over the cap (as soon as the length is in), a frame
  // that does not open ("wrong key, or a tampered, replayed, reordered or
  // dropped frame"), and a bad type or flags inside it. After a throw
  // every later call throws the same error.
  std::optional<Frame> next();

  // Bytes received and not yet returned as frames.
  std::size_t buffered_bytes() const noexcept { return buffer_.size() - start_; }
  // Frames returned by next() so far.
  std::uint64_t frames_decoded() const noexcept { return frames_decoded_; }
  // The id of the pre-shared key the connection uses (a server's: once the
  // client's opening was read).
  std::optional<KeyId> key_in_use() const noexcept { return key_in_use_; }

 private:
  struct DirectionKey {
    std::array<std::uint8_t, kKeyBytes> key{};
    std::uint64_t frames = 0;  // frames sealed (or opened) so far: the next one's nonce
  };

  std::optional<Frame> next_frame();
  bool read_opening();
  void derive(const Key& psk, const ConnectionNonce& client, const ConnectionNonce& server);
  std::size_t payload_cap() const noexcept;

  KeyRing keys_;
  Side side_;
  FrameLimits limits_;
  ConnectionNonce nonce_{};
  std::string answer_;
  bool keyed_ = false;
  std::optional<KeyId> key_in_use_;
  DirectionKey send_;
  DirectionKey receive_;
  std::string buffer_;
  std::size_t start_ = 0;  // first byte of buffer_ not yet consumed
  std::uint64_t frames_decoded_ = 0;
  std::optional<Error> failed_;
};

}  // namespace shmsession::sync::wire::detail
