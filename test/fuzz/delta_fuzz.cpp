// libFuzzer target for the delta decoder: decode_delta, apply_delta and
// apply_patch on untrusted bytes, and a make_patch round trip. Only diff/'s
// own CorruptInput and RefusedInput may escape the library; any other
// exception, a crash, a
// sanitizer report, an allocation over -malloc_limit_mb, or a broken oracle
// (trap) is a finding. Input layout: delta_fuzz_input.hpp.
#include <xxhash.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "diff/binary_diff.hpp"
#include "diff/delta.hpp"
#include "diff/delta_format.hpp"
#include "diff/detail/byte_io.hpp"
#include "diff/error.hpp"
#include "test/fuzz/delta_fuzz_input.hpp"

namespace {

using namespace shmsession;
using shmsession::fuzz::Mode;

std::string wrap_body(std::string_view body) {
  std::string frame;
  diff::detail::ByteWriter writer(frame);
  writer.u32(diff::kDeltaMagic);
  writer.u16(diff::kDeltaFormatVersion);
  writer.u16(0);
  writer.u64(diff::kDeltaHeaderBytes + body.size() + diff::kDeltaChecksumBytes);
  writer.bytes(body);
  writer.u64(XXH3_64bits(frame.data(), frame.size()));
  return frame;
}

void fuzz_frame(std::string_view frame) {
  const diff::DeltaLimits limits = fuzz::fuzz_limits();
  diff::SessionDelta delta;
  try {
    delta = diff::decode_delta(frame, limits);
  } catch (const diff::CorruptInput&) {
    return;
  }
  // The format has one encoding per delta: what decodes must re-encode to
  // the same bytes (catches fields the decoder accepts but misreads).
  if (diff::encode_delta(delta, limits) != frame) __builtin_trap();
  diff::AttributeMap attrs = fuzz::fixed_base();
  const diff::AttributeMap before = attrs;
  try {
    diff::apply_delta(attrs, delta, limits);
  } catch (const diff::CorruptInput&) {
    if (attrs != before) __builtin_trap();  // strong guarantee
  } catch (const diff::RefusedInput&) {
    if (attrs != before) __builtin_trap();
  }
}

void fuzz_patch(std::string_view patch) {
  for (const std::string& base : {fuzz::patch_base(), std::string()}) {
    try {
      (void)diff::apply_patch(base, patch, fuzz::fuzz_limits().max_value_bytes);
    } catch (const diff::CorruptInput&) {
    }
  }
}

void fuzz_diff(std::string_view payload) {
  if (payload.empty()) return;
  const std::size_t split = static_cast<std::uint8_t>(payload[0]) * (payload.size() - 1) / 255;
  const std::string_view base = payload.substr(1, split);
  const std::string_view target = payload.substr(1 + split);
  const std::string patch = diff::make_patch(base, target);
  if (diff::apply_patch(base, patch, target.size()) != target) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view payload(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (static_cast<Mode>(data[0] % fuzz::kModeCount)) {
    case Mode::Frame:
      fuzz_frame(payload);
      break;
    case Mode::Body:
      fuzz_frame(wrap_body(payload));
      break;
    case Mode::Patch:
      fuzz_patch(payload);
      break;
    case Mode::Diff:
      fuzz_diff(payload);
      break;
  }
  return 0;
}
