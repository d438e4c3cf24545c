// The bytes of a binary patch (make_patch / apply_patch). See
// diff/patch_format.md for the prose. A patch travels inside a delta frame
// (diff/delta_format.hpp), whose format version also versions patches: a new
// patch layout gets a new PatchMethod tag, never a new meaning for an old one.
#pragma once

#include <cstddef>
#include <cstdint>

namespace shmsession::diff {

// Byte 0 of every patch is its PatchMethod (binary_diff.hpp); then the size
// of the result as a varint. Method bodies follow (patch_format.md).
inline constexpr std::size_t kPatchMethodBytes = 1;

// Runs: two changed runs closer than this many unchanged bytes are sent as
// one run, because a run header (gap + length varints) costs about as much.
inline constexpr std::size_t kRunMergeGap = 3;

// The smallest zstd frame: magic (4), frame header descriptor (1), one-byte
// content size (1), last-block header (3). Used to skip hopeless attempts.
inline constexpr std::size_t kMinZstdFrameBytes = 9;
// A zstd frame header takes at least 6 bytes (magic, descriptor, one-byte
// content size), and every block that holds content at least 4 (an RLE
// block: 3-byte header + the byte); a block holds at most 128 KiB.
inline constexpr std::size_t kMinZstdHeaderBytes = 6;
inline constexpr std::size_t kMinZstdBlockBytes = 4;
inline constexpr std::size_t kZstdMaxBlockBytes = std::size_t{128} << 10;
// No zstd block holds more than 128 KiB or takes fewer than 4 bytes, so a
// frame cannot declare more than 32768 content bytes per byte it occupies.
inline constexpr std::uint64_t kZstdMaxExpansion = 32768;
// Largest window make_patch asks for (128 MiB: a 64 MiB benchmark and a
// 64 MiB target). Decoders accept it by default (ZSTD_WINDOWLOG_LIMIT_DEFAULT).
inline constexpr int kMaxZstdWindowLog = 27;

}  // namespace shmsession::diff
