// Typed payloads of the small control frames (Hello, Welcome, Ack,
// ResendSession, Removal, RestoreRequest, Heartbeat, Error): make_* builds the whole Frame, parse_* reads one
// back. Delta and Snapshot* payloads belong to the sync layer and are opaque
// to the wire codec. Layouts: sync/wire/wire_format.md.
//
// parse_* take frames from the network: every field is read through a
// bounded reader (diff/detail/byte_io.hpp), nothing is allocated from a
// declared length before it is checked, and trailing bytes are refused, so
// each payload has exactly one encoding.
//
// Thread safety: pure functions, reentrant. Cross-process: no shared state.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "shm/error.hpp"  // the Error these functions throw
#include "sync/wire/detail/frame.hpp"
#include "sync/wire/detail/wire_format.hpp"

namespace shmsession::sync::wire::detail {

// A store's random identity (shm's StoreInfo::store_id); all zeros for a
// backup that holds no store yet.
using StoreId = std::array<std::uint8_t, kStoreIdBytes>;

struct Hello {
  std::uint16_t protocol_version = kProtocolVersion;
  StoreId store_id{};          // the primary's store
  std::uint64_t next_seq = 0;  // the agent's next change sequence number
  std::uint64_t epoch = 1;     // the primary's epoch (shm/replica.hpp, FailoverState), at least 1

  bool operator==(const Hello&) const = default;
};

struct Welcome {
  StoreId store_id{};                  // the store the backup's store follows, zeros if none
  std::uint64_t last_applied_seq = 0;  // highest change seq the backup applied
  std::uint64_t epoch = 1;             // the backup's store's epoch, at least 1
  // The backup's store was promoted: store_id and last_applied_seq are
  // what it followed when it was.
  bool promoted = false;

  bool operator==(const Welcome&) const = default;
};

// Control frames other than Ack carry sequence 0; parse_* refuse any other.
// Throws (all parse_*): Error(Corrupt) naming the field when the frame has
// another type, a nonzero sequence where 0 is required, a payload of the
// wrong size, a field out of range or trailing bytes.
Frame make_hello(const Hello& hello);
// Throws also: Error(Corrupt) when protocol_version is not kProtocolVersion
// (the rest of the payload may mean something else then). The version comes
// first, so a peer of any version can read it and name the mismatch.
Hello parse_hello(const Frame& frame);

Frame make_welcome(const Welcome& welcome);
Welcome parse_welcome(const Frame& frame);

// Ack: the sequence is the highest change seq applied; the payload is empty.
Frame make_ack(std::uint64_t applied_seq);
std::uint64_t parse_ack(const Frame& frame);

// Throws: Error(InvalidArgument) when the id is empty or longer than
// kMaxSessionIdBytes.
Frame make_resend_session(std::string_view session_id);
std::string parse_resend_session(const Frame& frame);

// Removal: seq as a Delta's; the payload is the session id as `bytes`.
// Throws: Error(InvalidArgument) for an id that is empty or too long.
Frame make_removal(std::uint64_t seq, std::string_view session_id);
std::string parse_removal(const Frame& frame);

// RestoreRequest: the payload is the requester's protocol version (u16),
// checked like Hello's.
Frame make_restore_request();
void parse_restore_request(const Frame& frame);

// Heartbeat: the agent's position as its sequence, no payload.
Frame make_heartbeat(std::uint64_t seq);
std::uint64_t parse_heartbeat(const Frame& frame);

// A reason longer than kMaxErrorReasonBytes is cut, never refused: reporting
// an error must not fail.
Frame make_error(std::string_view reason);
// The reason with every byte outside printable ASCII replaced by '?', so it
// can be logged on one line.
std::string parse_error(const Frame& frame);

}  // namespace shmsession::sync::wire::detail
