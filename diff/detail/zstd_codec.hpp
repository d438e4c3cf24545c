// zstd one-shot compression with an optional raw-content prefix (the
// benchmark value), and bounded decompression of untrusted frames.
//
// Each thread keeps one compression and one decompression context, reset on
// every call, so calls are independent and never share state.
//
// Thread safety: every function may be called from many threads at once.
// After fork() the child's copy of the calling thread's contexts is valid.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace shmsession::diff::detail {

// Appends to `out` one zstd frame holding `source` (its content size in the
// header), able to copy from `prefix` as if it preceded `source`. Returns
// false, leaving `out` as it was, when the frame would take more than
// `max_bytes` (an early-out: compression stops at the first block that does
// not fit).
// Throws: std::bad_alloc when zstd cannot allocate its context.
bool compress_frame(std::string_view prefix, std::string_view source, int level, std::size_t max_bytes,
                    std::string& out);

// The content size a frame declares, after checking it is one whole zstd
// frame (right magic, no trailing bytes) whose declared size is known and
// plausible for its compressed size.
// Throws: CorruptInput naming what is wrong, prefixed by `context`.
std::size_t frame_content_size(std::string_view frame, std::string_view context);

// Decompresses `frame` into exactly out[0..size), where `size` is
// frame_content_size(frame); `prefix` must be the one given to
// compress_frame. Writes never go past `size`.
// Throws: CorruptInput when the frame does not decode to `size` bytes.
void decompress_frame(std::string_view prefix, std::string_view frame, char* out, std::size_t size,
                      std::string_view context);

}  // namespace shmsession::diff::detail
