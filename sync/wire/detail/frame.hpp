// The framed, authenticated byte stream between the sync agent and the
// backup daemon: FrameCodec turns Frames into bytes (encode) and a TCP byte
// stream back into Frames (feed + next), checking every frame's header, size
// cap and HMAC-SHA-256 under the pre-shared key (sync/wire/wire_format.md).
// No networking here: the caller owns the socket.
//
// Decoding takes untrusted bytes. The header is checked as soon as its 20
// bytes are in, before the payload is waited for: bad magic, version, type or
// flags, or a declared payload over the cap, fail at once, and nothing is
// ever reserved from a declared length. Only a frame whose MAC verifies
// (constant time, libsodium) is returned. Any failure is final: the stream
// cannot be resynchronized, so the codec keeps refusing (the caller closes
// the connection and logs the error's one-line message).
//
// Thread safety: encode() is const and may run on several threads at once;
// feed()/next() mutate the receive buffer and belong to one thread (the
// connection's reader). Cross-process safety: no shared state.
#pragma once

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

class FrameCodec {
 public:
  // Throws: Error(InvalidArgument) when max_payload_bytes exceeds the u32
  // length field; Error(Io) when libsodium cannot initialize.
  explicit FrameCodec(const Key& key, FrameLimits limits = {});

  // The bytes of `frame`, MAC included.
  // Throws: Error(InvalidArgument) for a type outside FrameType or a payload
  // over max_payload_bytes, so a sender never makes a frame its peer refuses.
  std::string encode(const Frame& frame) const;

  // Appends received bytes. Requires: the caller drains next() after each
  // feed, so the buffer holds at most one partial frame plus one read.
  void feed(std::string_view bytes);

  // The next complete, authenticated frame; nullopt when more bytes are
  // needed (any prefix of a valid stream gives nullopt, never an error).
  // Throws: Error(Corrupt, "wire frame #<n>: <reason> ...") for bad magic,
  // version, type or flags, a declared payload over the cap (as soon as the
  // header is in), and a MAC mismatch ("wrong key or damaged frame"). After
  // a throw every later call throws the same error.
  std::optional<Frame> next();

  // Bytes received and not yet returned as frames.
  std::size_t buffered_bytes() const noexcept { return buffer_.size() - start_; }
  // Frames returned by next() so far.
  std::uint64_t frames_decoded() const noexcept { return frames_decoded_; }

 private:
  struct Header {
    FrameType type;
    std::uint32_t payload_bytes;
    std::uint64_t seq;
  };

  std::optional<Frame> next_frame();
  Header read_header(std::string_view header, const std::string& context) const;
  std::size_t payload_cap() const noexcept;

  Key key_;
  FrameLimits limits_;
  std::string buffer_;
  std::size_t start_ = 0;  // first byte of buffer_ not yet consumed
  std::uint64_t frames_decoded_ = 0;
  std::optional<Error> failed_;
};

}  // namespace shmsession::sync::wire::detail
