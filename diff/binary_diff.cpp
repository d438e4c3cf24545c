#include "diff/binary_diff.hpp"

#include <algorithm>
#include <cstring>
#include <optional>

#include "diff/detail/byte_io.hpp"
#include "diff/detail/compare.hpp"
#include "diff/detail/runs.hpp"
#include "diff/detail/zstd_codec.hpp"
#include "diff/error.hpp"
#include "diff/patch_format.hpp"

namespace shmsession::diff {
namespace {

using detail::ByteReader;
using detail::ByteWriter;

constexpr std::string_view kContext = "patch";
// zstd level for both zstd methods. Measured on serialized records (see
// test/diff/diff_measure.cpp): level 1 loses matches in large values, 6 and
// up cost 4-50x the time for 10-60% smaller patches of scattered edits.
constexpr int kZstdLevel = 3;
// How much of the base around its changed part a ZstdPrefix frame may copy
// from. Indexing a prefix costs ~0.4 ms per MiB; a 64 KiB margin kept patch
// sizes within 2 bytes of using the whole base in the measurements.
constexpr std::size_t kReferenceMargin = std::size_t{64} << 10;
// Values below this size skip zstd unless the edit keeps much of the old
// value's edges (make_patch).
constexpr std::size_t kSmallValueBytes = 512;

// No zstd frame holding `content` bytes is smaller than this: a header and
// at least kMinZstdBlockBytes per started 128 KiB block.
std::size_t min_frame_bytes(std::size_t content) noexcept {
  if (content == 0) return kMinZstdFrameBytes;
  return kMinZstdHeaderBytes + kMinZstdBlockBytes * ((content + kZstdMaxBlockBytes - 1) / kZstdMaxBlockBytes);
}

std::string patch_header(PatchMethod method, std::size_t result_size) {
  std::string out;
  ByteWriter writer(out);
  writer.u8(static_cast<std::uint8_t>(method));
  writer.varint(result_size);
  return out;
}

std::string whole_raw_patch(std::string_view target) {
  std::string out = patch_header(PatchMethod::WholeRaw, target.size());
  out.append(target);
  return out;
}

// Each candidate below returns a patch of at most `limit` bytes, or nothing.
std::optional<std::string> runs_patch(std::string_view base, std::string_view target, std::size_t limit) {
  std::string out = patch_header(PatchMethod::Runs, target.size());
  if (out.size() > limit || !detail::append_runs(base, target, limit - out.size(), out)) return std::nullopt;
  return out;
}

std::optional<std::string> zstd_prefix_patch(std::string_view base, std::string_view target, std::size_t limit) {
  const std::size_t head = detail::first_difference(base, target, 0);
  const std::size_t tail = detail::common_suffix_size(base.substr(head), target.substr(head));
  const std::string_view middle = target.substr(head, target.size() - head - tail);
  // The frame may copy from the changed part of the base and a margin
  // around it: far enough for neighbouring records, without paying to index
  // a whole large benchmark for a one-field edit.
  const std::size_t ref_begin = head - std::min(head, kReferenceMargin);
  const std::size_t ref_end = base.size() - tail + std::min(tail, kReferenceMargin);
  std::string out = patch_header(PatchMethod::ZstdPrefix, target.size());
  ByteWriter writer(out);
  writer.varint(base.size());
  writer.varint(head);
  writer.varint(tail);
  writer.varint(ref_begin);
  writer.varint(ref_end - ref_begin);
  if (out.size() + min_frame_bytes(middle.size()) > limit ||
      !detail::compress_frame(base.substr(ref_begin, ref_end - ref_begin), middle, kZstdLevel, limit - out.size(), out))
    return std::nullopt;
  return out;
}

std::optional<std::string> whole_compressed_patch(std::string_view target, std::size_t limit) {
  std::string out = patch_header(PatchMethod::WholeCompressed, target.size());
  if (out.size() + min_frame_bytes(target.size()) > limit ||
      !detail::compress_frame({}, target, kZstdLevel, limit - out.size(), out))
    return std::nullopt;
  return out;
}

std::string apply_runs_patch(std::string_view base, ByteReader& reader, std::size_t size) {
  if (size != base.size())
    reader.fail("Runs patch is for a base of " + std::to_string(size) + " bytes, the base has " +
                std::to_string(base.size()));
  std::string result(base);
  detail::apply_runs(reader, result);
  return result;
}

std::string apply_zstd_prefix_patch(std::string_view base, ByteReader& reader, std::size_t size) {
  const std::uint64_t base_size = reader.varint("base size");
  if (base_size != base.size())
    reader.fail("patch was made for a base of " + std::to_string(base_size) + " bytes, the base has " +
                std::to_string(base.size()));
  const std::size_t shared = std::min(base.size(), size);
  const std::size_t head = reader.varint_at_most(shared, "head size");
  const std::size_t tail = reader.varint_at_most(shared - head, "tail size");
  const std::size_t ref_begin = reader.varint_at_most(base.size(), "reference offset");
  const std::size_t ref_size = reader.varint_at_most(base.size() - ref_begin, "reference size");
  const std::string_view frame = reader.rest();
  const std::size_t middle = size - head - tail;
  if (detail::frame_content_size(frame, kContext) != middle)
    reader.fail("zstd frame does not hold the " + std::to_string(middle) + " changed bytes");
  std::string result(size, '\0');
  if (head > 0) std::memcpy(result.data(), base.data(), head);
  detail::decompress_frame(base.substr(ref_begin, ref_size), frame, result.data() + head, middle, kContext);
  if (tail > 0) std::memcpy(result.data() + head + middle, base.data() + base.size() - tail, tail);
  return result;
}

std::string apply_whole_compressed_patch(ByteReader& reader, std::size_t size) {
  const std::string_view frame = reader.rest();
  if (detail::frame_content_size(frame, kContext) != size)
    reader.fail("zstd frame does not hold the " + std::to_string(size) + " bytes of the value");
  std::string result(size, '\0');
  detail::decompress_frame({}, frame, result.data(), size, kContext);
  return result;
}

std::string apply_whole_raw_patch(ByteReader& reader, std::size_t size) {
  if (reader.remaining() != size)
    reader.fail("raw value of " + std::to_string(size) + " bytes has " + std::to_string(reader.remaining()));
  return std::string(reader.rest());
}

}  // namespace

std::string make_patch(std::string_view base, std::string_view target) {
  std::string best = whole_raw_patch(target);
  // Cheapest first: a small Runs patch makes the zstd attempts give up early.
  const auto consider = [&best](std::optional<std::string> candidate) {
    if (candidate && candidate->size() < best.size()) best = std::move(*candidate);
  };
  if (base.size() == target.size()) consider(runs_patch(base, target, best.size() - 1));
  if (target.size() < kSmallValueBytes) {
    // A zstd attempt costs 3-5 us even on a few bytes (measured: 5.2 us for
    // an unrelated new 100-byte value, for a patch of 92 bytes instead of
    // 100). On a small value only an edit that keeps a good part of the old
    // edges can repay it; the sync agent makes one patch per changed
    // attribute, so this decides how many commits per second it ships.
    const std::size_t head = detail::first_difference(base, target, 0);
    const std::size_t tail = detail::common_suffix_size(base.substr(head), target.substr(head));
    if (!base.empty() && 4 * (head + tail) >= target.size()) consider(zstd_prefix_patch(base, target, best.size() - 1));
    return best;
  }
  if (!base.empty()) consider(zstd_prefix_patch(base, target, best.size() - 1));
  consider(whole_compressed_patch(target, best.size() - 1));
  return best;
}

std::string apply_patch(std::string_view base, std::string_view patch, std::size_t max_result_bytes) {
  ByteReader reader(patch, kContext);
  const PatchMethod method = patch_method(patch);
  reader.u8("method");
  const std::size_t size = reader.varint_at_most(max_result_bytes, "result size");
  switch (method) {
    case PatchMethod::Runs:
      return apply_runs_patch(base, reader, size);
    case PatchMethod::ZstdPrefix:
      return apply_zstd_prefix_patch(base, reader, size);
    case PatchMethod::WholeCompressed:
      return apply_whole_compressed_patch(reader, size);
    case PatchMethod::WholeRaw:
      return apply_whole_raw_patch(reader, size);
  }
  reader.fail("unknown method");
}

PatchMethod patch_method(std::string_view patch) {
  if (patch.empty()) throw CorruptInput("patch: empty");
  const auto tag = static_cast<std::uint8_t>(patch[0]);
  if (tag < static_cast<std::uint8_t>(PatchMethod::Runs) || tag > static_cast<std::uint8_t>(PatchMethod::WholeRaw))
    throw CorruptInput("patch: unknown method " + std::to_string(tag));
  return static_cast<PatchMethod>(tag);
}

std::string_view patch_method_name(PatchMethod method) noexcept {
  switch (method) {
    case PatchMethod::Runs:
      return "Runs";
    case PatchMethod::ZstdPrefix:
      return "ZstdPrefix";
    case PatchMethod::WholeCompressed:
      return "WholeCompressed";
    case PatchMethod::WholeRaw:
      return "WholeRaw";
  }
  return "Unknown";
}

}  // namespace shmsession::diff
