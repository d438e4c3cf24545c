// The payloads that carry sessions between agent, backup daemon and restore
// client: a Delta or SnapshotSession frame holds one session delta, a
// Removal frame one removed session (sync/wire/wire_format.md, "Session
// payloads"). The wire codec treats these payloads as opaque; this is their
// only encoder and decoder.
//
// A session payload names its session by a reference into a dictionary of
// the ids its direction of the connection already carried (kIdSlots of
// them, replaced oldest first), and may leave out an idle timeout equal to
// the last one sent: an ItemEncoder and the ItemDecoder at the other end
// hold that state, one pair per connection and direction, each fed every
// session payload of that direction in order. make_item_frame and
// parse_item_frame are the stateless forms (a fresh encoder or decoder):
// a frame make_item_frame gives names its id in full and carries its idle
// timeout, so any decoder reads it.
//
// Thread safety: an encoder or decoder belongs to one thread; the free
// functions are reentrant. Cross-process: no shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "diff/delta.hpp"
#include "shm/error.hpp"  // the Error these functions throw
#include "sync/backup/detail/delta_source.hpp"
#include "sync/wire/detail/frame.hpp"

namespace shmsession::sync::detail {

// Ids a direction's dictionary holds (a reference is 1..kIdSlots: two
// varint bytes at most).
inline constexpr std::uint32_t kIdSlots = 16383;

class ItemEncoder {
 public:
  // A Delta or SnapshotSession frame (as `type`) for a Delta item, a
  // Removal frame for a Removal item; the frame's sequence is `seq`. The
  // encoder's state moves only when a frame is returned: the caller sends
  // every frame it gets, in order.
  // Throws: Error(InvalidArgument) when the item breaks the format or the
  // caps of diff::DeltaLimits (nothing is then remembered).
  wire::detail::Frame frame(const Outgoing& item, wire::detail::FrameType type, std::uint64_t seq);

 private:
  std::unordered_map<std::string, std::uint32_t> slot_of_;
  std::vector<std::string> ids_;  // by slot; grows to kIdSlots, then slots are reused in turn
  std::uint32_t next_slot_ = 0;
  std::optional<std::uint32_t> idle_timeout_s_;
};

class ItemDecoder {
 public:
  // The item a Delta, SnapshotSession or Removal frame carries; its seq is
  // the frame's. Takes frames from the network: every length is checked
  // before use.
  // Throws: Error(Corrupt) naming what is wrong (another frame type, a
  // truncated payload, a reference to a slot never filled, no idle timeout
  // yet, a field over diff::DeltaLimits, names out of order).
  Outgoing item(const wire::detail::Frame& frame);

 private:
  std::vector<std::string> ids_;
  std::uint32_t next_slot_ = 0;
  std::optional<std::uint32_t> idle_timeout_s_;
};

// ItemEncoder{}.frame(...): the id in full, the idle timeout included.
wire::detail::Frame make_item_frame(const Outgoing& item, wire::detail::FrameType type, std::uint64_t seq);

// ItemDecoder{}.item(frame).
Outgoing parse_item_frame(const wire::detail::Frame& frame);

// The payload bytes make_item_frame gives a Delta item, without building
// it: what the delta costs where its id is not in the dictionary.
// Throws: Error(InvalidArgument) as ItemEncoder::frame does.
std::size_t session_payload_bytes(const diff::SessionDelta& delta, std::uint32_t idle_timeout_s);

}  // namespace shmsession::sync::detail
