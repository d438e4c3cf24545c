// The payloads that carry sessions between agent, backup daemon and restore
// client: a Delta or SnapshotSession frame holds one session delta, a
// Removal frame one removed session (sync/wire/wire_format.md, "Session
// payloads"). The wire codec treats these payloads as opaque; this is their
// only encoder and decoder.
//
// Thread safety: pure functions, reentrant. Cross-process: no shared state.
#pragma once

#include <cstdint>

#include "shm/error.hpp"  // the Error these functions throw
#include "sync/backup/detail/delta_source.hpp"
#include "sync/wire/detail/frame.hpp"

namespace shmsession::sync::detail {

// A Delta or SnapshotSession frame (as `type`) for a Delta item, a Removal
// frame for a Removal item; the frame's sequence is `seq`.
// Throws: Error(InvalidArgument) when the delta breaks diff/'s format or caps.
wire::detail::Frame make_item_frame(const Outgoing& item, wire::detail::FrameType type, std::uint64_t seq);

// The item a Delta, SnapshotSession or Removal frame carries; its seq is the
// frame's. Takes frames from the network: every length is checked before use.
// Throws: Error(Corrupt) naming what is wrong (another frame type, a
// truncated payload, a delta frame that fails diff/'s checks).
Outgoing parse_item_frame(const wire::detail::Frame& frame);

}  // namespace shmsession::sync::detail
