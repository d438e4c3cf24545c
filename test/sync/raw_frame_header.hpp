// The 20 header bytes of a wire frame declaring `length` payload bytes, with
// no payload and no MAC after them: the decoder checks magic, version, type,
// flags and the size cap from the header alone, so tests of those paths
// (wire_frame_test, standby_link_test, backup_server_test) need nothing more.
#pragma once

#include <cstdint>
#include <string>

#include "diff/detail/byte_io.hpp"
#include "sync/wire/detail/wire_format.hpp"

namespace shmsession::test {

inline std::string raw_frame_header(sync::wire::detail::FrameType type, std::uint32_t length,
                                    std::uint8_t version = sync::wire::detail::kFrameFormatVersion,
                                    std::uint16_t flags = 0) {
  std::string out;
  diff::detail::ByteWriter writer(out);
  writer.u32(sync::wire::detail::kFrameMagic);
  writer.u8(version);
  writer.u8(static_cast<std::uint8_t>(type));
  writer.u16(flags);
  writer.u32(length);
  writer.u64(1);
  return out;
}

}  // namespace shmsession::test
