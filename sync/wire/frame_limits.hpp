// How large an agent <-> backup wire frame may be (sync/wire/wire_format.md):
// the options the agent, the backup daemon and the restore client take. The
// frames themselves are internal (sync/wire/detail/frame.hpp).
//
// Thread safety: constants and a plain value.
#pragma once

#include <cstddef>

namespace shmsession::sync::wire {

// Payload caps. The defaults of FrameLimits; a receiver may lower them.
// A session payload (Delta, SnapshotSession) is at most 256 MiB (the
// encoder refuses a larger one), so any session the sender can encode fits
// in one frame: a session is never split, and the standby applies it
// atomically.
inline constexpr std::size_t kDefaultMaxPayloadBytes = std::size_t{256} << 20;
// Cap while no frame from the peer has passed its MAC check: the first
// frame of either side (Hello, Welcome or Error) is small, so a peer without
// the key cannot make the receiver buffer more than this.
inline constexpr std::size_t kDefaultMaxFirstPayloadBytes = 4096;

struct FrameLimits {
  // Larger payloads are refused by encode (InvalidArgument) and by the
  // decoder (Corrupt). At most 2^32 - 1 (the length field is a u32).
  std::size_t max_payload_bytes = kDefaultMaxPayloadBytes;
  // The decoder's cap until one frame from the peer has passed its MAC check.
  std::size_t max_first_payload_bytes = kDefaultMaxFirstPayloadBytes;
};

}  // namespace shmsession::sync::wire
