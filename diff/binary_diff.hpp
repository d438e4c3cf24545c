// Binary diff of an attribute value against its benchmark (the last
// synchronized version), as used for commits and for shipping to a backup.
//
// make_patch tries every applicable method and keeps the smallest patch:
//  - Runs: same-offset changed runs, only when the sizes are equal;
//  - ZstdPrefix: the common head and tail are copied from the base, the
//    changed middle is a zstd frame compressed with the base as its prefix
//    (the base's changed part and up to 64 KiB on each side of it);
//  - WholeCompressed / WholeRaw: the target alone, so a patch is never much
//    bigger than the value itself, whatever the benchmark.
// The bytes are described in diff/patch_format.md.
//
// Thread safety: all functions may be called from many threads at once; each
// thread keeps its own zstd contexts (a few MB at most, freed at thread exit).
// Cross-process safety: no shared state; patches are plain bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "diff/error.hpp"  // what these functions throw

namespace shmsession::diff {

// Byte 0 of a patch.
enum class PatchMethod : std::uint8_t { Runs = 1, ZstdPrefix = 2, WholeCompressed = 3, WholeRaw = 4 };

// A patch turning `base` into `target`: the smallest of the applicable methods
// (Runs only when sizes are equal).
// Throws: std::bad_alloc only.
std::string make_patch(std::string_view base, std::string_view target);

// The value `patch` turns `base` into. Untrusted patches are safe: every size
// is checked against the patch's own bytes and `max_result_bytes` before
// anything is allocated, and decompression never writes past the declared size.
// Throws: CorruptInput for a malformed patch, a patch made for a base of
// another size, or a result that exceeds `max_result_bytes`.
std::string apply_patch(std::string_view base, std::string_view patch, std::size_t max_result_bytes = 64u << 20);

// The method byte of `patch`.
// Throws: CorruptInput for an empty patch or an unknown method.
PatchMethod patch_method(std::string_view patch);

// Short stable name of a method ("ZstdPrefix"), for logs and tools.
std::string_view patch_method_name(PatchMethod method) noexcept;

}  // namespace shmsession::diff
