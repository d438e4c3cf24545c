// The bytes of a session delta frame (encode_delta / decode_delta). See
// diff/delta_format.md for the prose; patches inside it are described in
// diff/patch_format.md.
#pragma once

#include <cstddef>
#include <cstdint>

namespace shmsession::diff {

// "SDLT" as it appears on the wire (little-endian u32).
inline constexpr std::uint32_t kDeltaMagic = 0x544C4453;
// Bump on any change of meaning; decoders refuse every other version.
inline constexpr std::uint16_t kDeltaFormatVersion = 1;

// magic (4) + format version (2) + reserved (2, zero) + frame length (8).
inline constexpr std::size_t kDeltaHeaderBytes = 16;
// XXH3-64 of every byte before it, little-endian, at the end of the frame.
inline constexpr std::size_t kDeltaChecksumBytes = 8;
// Offset of the frame length field.
inline constexpr std::size_t kDeltaLengthOffset = 8;

// A frame with an empty body cannot exist (the session id is not empty);
// this is the floor below which a buffer is refused at once.
inline constexpr std::size_t kDeltaMinFrameBytes = kDeltaHeaderBytes + kDeltaChecksumBytes;

// Smallest encoded change: name length (1) + name (1) + kind (1) + flags (4)
// + checksum (8) + bytes length (1). Bounds the change count by the bytes
// that remain before anything is reserved.
inline constexpr std::size_t kDeltaMinChangeBytes = 16;

}  // namespace shmsession::diff
