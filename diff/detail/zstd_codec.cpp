#include "diff/detail/zstd_codec.hpp"

#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <new>

#include "diff/error.hpp"
#include "diff/patch_format.hpp"

namespace shmsession::diff::detail {
namespace {

struct ThreadContexts {
  ZSTD_CCtx* cctx = nullptr;
  ZSTD_DCtx* dctx = nullptr;
  ThreadContexts() = default;
  ThreadContexts(const ThreadContexts&) = delete;
  ThreadContexts& operator=(const ThreadContexts&) = delete;
  ~ThreadContexts() {
    ZSTD_freeCCtx(cctx);
    ZSTD_freeDCtx(dctx);
  }
};

ThreadContexts& contexts() {
  thread_local ThreadContexts ctx;
  return ctx;
}

ZSTD_CCtx* compression_context() {
  ThreadContexts& ctx = contexts();
  if (ctx.cctx == nullptr && (ctx.cctx = ZSTD_createCCtx()) == nullptr) throw std::bad_alloc();
  ZSTD_CCtx_reset(ctx.cctx, ZSTD_reset_session_and_parameters);
  return ctx.cctx;
}

ZSTD_DCtx* decompression_context() {
  ThreadContexts& ctx = contexts();
  if (ctx.dctx == nullptr && (ctx.dctx = ZSTD_createDCtx()) == nullptr) throw std::bad_alloc();
  ZSTD_DCtx_reset(ctx.dctx, ZSTD_reset_session_and_parameters);
  return ctx.dctx;
}

[[noreturn]] void corrupt(std::string_view context, const std::string& message) {
  throw CorruptInput(std::string(context) + ": " + message);
}

// A window that reaches from the end of the source back to the start of the
// prefix, so every byte of the benchmark can be matched.
int window_log_for(std::size_t prefix_size, std::size_t source_size) {
  const std::uint64_t span = std::uint64_t{prefix_size} + source_size;
  const int needed = span <= 1 ? 0 : static_cast<int>(std::bit_width(span - 1));
  const ZSTD_bounds bounds = ZSTD_cParam_getBounds(ZSTD_c_windowLog);
  return std::clamp(needed, std::max(bounds.lowerBound, 0), std::min(bounds.upperBound, kMaxZstdWindowLog));
}

}  // namespace

bool compress_frame(std::string_view prefix, std::string_view source, int level, std::size_t max_bytes,
                    std::string& out) {
  if (max_bytes < kMinZstdFrameBytes) return false;
  ZSTD_CCtx* cctx = compression_context();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 0);
  if (!prefix.empty()) {
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_windowLog, window_log_for(prefix.size(), source.size()));
    // Raw content by default: a benchmark that happens to start with the
    // zstd dictionary magic is still just bytes.
    if (ZSTD_isError(ZSTD_CCtx_refPrefix(cctx, prefix.data(), prefix.size()))) throw std::bad_alloc();
  }
  const std::size_t old_size = out.size();
  out.resize(old_size + std::min(max_bytes, ZSTD_compressBound(source.size())));
  const std::size_t written =
      ZSTD_compress2(cctx, out.data() + old_size, out.size() - old_size, source.data(), source.size());
  if (ZSTD_isError(written)) {
    out.resize(old_size);
    if (ZSTD_getErrorCode(written) == ZSTD_error_dstSize_tooSmall) return false;
    if (ZSTD_getErrorCode(written) == ZSTD_error_memory_allocation) throw std::bad_alloc();
    throw RefusedInput(std::string("zstd compression failed: ") + ZSTD_getErrorName(written));
  }
  out.resize(old_size + written);
  return true;
}

std::size_t frame_content_size(std::string_view frame, std::string_view context) {
  if (frame.size() < kMinZstdFrameBytes)
    corrupt(context, "zstd frame of " + std::to_string(frame.size()) + " bytes is truncated");
  std::uint32_t magic = 0;
  for (std::size_t i = 0; i < 4; ++i) magic |= std::uint32_t{static_cast<std::uint8_t>(frame[i])} << (8 * i);
  if (magic != ZSTD_MAGICNUMBER) corrupt(context, "bad zstd frame magic");
  const unsigned long long declared = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (declared == ZSTD_CONTENTSIZE_ERROR) corrupt(context, "bad zstd frame header");
  if (declared == ZSTD_CONTENTSIZE_UNKNOWN) corrupt(context, "zstd frame does not declare its content size");
  const std::size_t compressed = ZSTD_findFrameCompressedSize(frame.data(), frame.size());
  if (ZSTD_isError(compressed)) corrupt(context, std::string("bad zstd frame: ") + ZSTD_getErrorName(compressed));
  if (compressed != frame.size())
    corrupt(context, std::to_string(frame.size() - compressed) + " bytes follow the zstd frame");
  // No block expands more than kZstdMaxExpansion times, so a larger claim is
  // a lie; refusing it here keeps the caller from allocating for it.
  if (declared / kZstdMaxExpansion > frame.size())
    corrupt(context, "zstd frame of " + std::to_string(frame.size()) + " bytes claims " + std::to_string(declared) +
                         " bytes of content");
  return static_cast<std::size_t>(declared);
}

void decompress_frame(std::string_view prefix, std::string_view frame, char* out, std::size_t size,
                      std::string_view context) {
  ZSTD_DCtx* dctx = decompression_context();
  if (!prefix.empty() && ZSTD_isError(ZSTD_DCtx_refPrefix(dctx, prefix.data(), prefix.size()))) throw std::bad_alloc();
  // One-shot decoding writes straight into `out` and stops at `size` bytes:
  // no window buffer, no allocation that depends on the input.
  const std::size_t written = ZSTD_decompressDCtx(dctx, out, size, frame.data(), frame.size());
  if (ZSTD_isError(written)) {
    if (ZSTD_getErrorCode(written) == ZSTD_error_memory_allocation) throw std::bad_alloc();
    corrupt(context, std::string("zstd frame does not decode: ") + ZSTD_getErrorName(written));
  }
  if (written != size)
    corrupt(context, "zstd frame decoded to " + std::to_string(written) + " bytes, declared " + std::to_string(size));
}

}  // namespace shmsession::diff::detail
