// The bytes of the agent <-> backup wire (FrameCodec) and of the typed
// payloads (sync/wire/detail/payloads.hpp). See sync/wire/wire_format.md for the
// prose. Delta payloads are diff/ delta frames: diff/delta_format.md.
//
// Thread safety: constants and a pure function only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sync/wire/frame_limits.hpp"
#include "sync/wire/key.hpp"

namespace shmsession::sync::wire::detail {

// The opening each end sends first, in clear (FrameCodec): "SSWO" as it
// appears on the wire (little-endian u32), the format version, the side
// (1 client, 2 server), a status (the server's: kOpeningAccepted or
// kOpeningUnknownKey; the client's: 0), a zero byte, the id of the
// pre-shared key (the client's choice; the server echoes it), and the
// end's random nonce.
inline constexpr std::uint32_t kOpeningMagic = 0x4f575353;
// The first bytes of a format 1 frame ("SSWF"): a peer of an older build.
inline constexpr std::uint32_t kFormat1Magic = 0x46575353;
// Layout of the opening and of sealed frames. Bump on any change of
// meaning; a decoder refuses every other version.
// 2: frames encrypted (format 1 frames were authenticated, not encrypted).
inline constexpr std::uint8_t kFrameFormatVersion = 2;
// Meaning of the frame types and their payloads, announced in Hello. A
// change that an older peer would misread bumps it.
// 2: Hello and Welcome carry the stores' epochs (failover fencing).
// 3: session payloads name sessions through a per-connection dictionary and
//    leave out what the frame already says (compact, wire_format.md).
inline constexpr std::uint16_t kProtocolVersion = 3;

inline constexpr std::size_t kConnectionNonceBytes = 32;
inline constexpr std::size_t kOpeningBytes = 4 + 1 + 1 + 1 + 1 + kKeyIdBytes + kConnectionNonceBytes;
inline constexpr std::uint8_t kOpeningAccepted = 0;
inline constexpr std::uint8_t kOpeningUnknownKey = 1;

// A sealed frame: its length (u32, clear, the bytes that follow it), then
// the ChaCha20-Poly1305 encryption of type (1), flags (2), sequence (8)
// and payload, then the 16-byte tag; the length is authenticated as
// associated data.
inline constexpr std::size_t kFrameLengthBytes = 4;
inline constexpr std::size_t kSealedHeaderBytes = 1 + 2 + 8;
inline constexpr std::size_t kFrameTagBytes = 16;
inline constexpr std::size_t kFrameOverheadBytes = kFrameLengthBytes + kSealedHeaderBytes + kFrameTagBytes;
// No flag is defined in format version 2: the field must be zero.
inline constexpr std::uint16_t kFrameKnownFlags = 0;

enum class FrameType : std::uint8_t {
  Hello = 1,            // agent -> backup: protocol version, store id, agent's next change seq
  Welcome = 2,          // backup -> agent/restore client: store id the standby follows (zeros if none), position
  Delta = 3,            // agent -> backup: seq = position after it; payload = a session payload
  SnapshotBegin = 4,    // agent -> backup: full resync starts; seq = snapshot's change seq
  SnapshotSession = 5,  // agent -> backup: one whole session (opaque to the codec)
  SnapshotEnd = 6,      // agent -> backup: full resync complete; seq as in SnapshotBegin
  Ack = 7,              // backup -> agent: seq = the standby's position (cumulative)
  ResendSession = 8,    // backup -> agent: send this session in full; payload = its id
  Error = 9,            // either way: the sender closes; payload = a reason
  Removal = 10,         // agent -> backup: seq as Delta; payload = the removed session's id
  RestoreRequest = 11,  // restore client -> backup: send me your standby; payload = protocol version
  Heartbeat = 12,       // agent -> backup while idle: seq = agent's position; answered by an Ack
};
inline constexpr std::uint8_t kFirstFrameType = 1;
inline constexpr std::uint8_t kLastFrameType = 12;

// Stable name for logs ("Hello"); "Unknown" for a value outside the list.
constexpr std::string_view frame_type_name(FrameType type) noexcept {
  switch (type) {
    case FrameType::Hello:
      return "Hello";
    case FrameType::Welcome:
      return "Welcome";
    case FrameType::Delta:
      return "Delta";
    case FrameType::SnapshotBegin:
      return "SnapshotBegin";
    case FrameType::SnapshotSession:
      return "SnapshotSession";
    case FrameType::SnapshotEnd:
      return "SnapshotEnd";
    case FrameType::Ack:
      return "Ack";
    case FrameType::ResendSession:
      return "ResendSession";
    case FrameType::Error:
      return "Error";
    case FrameType::Removal:
      return "Removal";
    case FrameType::RestoreRequest:
      return "RestoreRequest";
    case FrameType::Heartbeat:
      return "Heartbeat";
  }
  return "Unknown";
}

// Typed payloads (sync/wire/detail/payloads.hpp).
inline constexpr std::size_t kStoreIdBytes = 16;
// protocol version (2) + store id (16) + next change seq (8) + epoch (8).
inline constexpr std::size_t kHelloPayloadBytes = 2 + kStoreIdBytes + 8 + 8;
// store id (16) + last applied change seq (8) + epoch (8) + flags (1).
inline constexpr std::size_t kWelcomePayloadBytes = kStoreIdBytes + 8 + 8 + 1;
// Welcome flags: the backup's store was promoted (it is a primary now, and
// store id / last applied seq are what it followed when promoted).
inline constexpr std::uint8_t kWelcomePromoted = 1;
// Longer reasons are cut by make_error and refused by parse_error.
inline constexpr std::size_t kMaxErrorReasonBytes = 1024;

}  // namespace shmsession::sync::wire::detail
