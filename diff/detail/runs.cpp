#include "diff/detail/runs.hpp"

#include <cstdint>
#include <cstring>

#include "diff/detail/compare.hpp"
#include "diff/patch_format.hpp"

namespace shmsession::diff::detail {
namespace {

std::size_t first_equal(std::string_view a, std::string_view b, std::size_t pos) noexcept {
  while (pos < a.size() && a[pos] != b[pos]) ++pos;
  return pos;
}

// End of the run starting at `start`: the first equal stretch of at least
// kRunMergeGap bytes (or the end of the value) closes it. Sets `next` to the
// first difference after it.
std::size_t run_end(std::string_view a, std::string_view b, std::size_t start, std::size_t& next) noexcept {
  std::size_t end = start;
  for (;;) {
    end = first_equal(a, b, end);
    next = first_difference(a, b, end);
    if (next == a.size() || next - end >= kRunMergeGap) return end;
    end = next;
  }
}

}  // namespace

bool append_runs(std::string_view base, std::string_view target, std::size_t max_bytes, std::string& out) {
  const std::size_t limit = out.size() + max_bytes;
  ByteWriter writer(out);
  std::size_t previous_end = 0;
  std::size_t start = first_difference(base, target, 0);
  while (start < target.size()) {
    std::size_t next = 0;
    const std::size_t end = run_end(base, target, start, next);
    const std::size_t run_bytes = varint_size(start - previous_end) + varint_size(end - start) + (end - start);
    if (out.size() + run_bytes > limit) return false;
    writer.varint(start - previous_end);
    writer.sized_bytes(target.substr(start, end - start));
    previous_end = end;
    start = next;
  }
  return out.size() <= limit;
}

void apply_runs(ByteReader& reader, std::string& result) {
  std::size_t pos = 0;
  while (!reader.at_end()) {
    pos += reader.varint_at_most(result.size() - pos, "run gap");
    const std::string_view run = reader.sized_bytes(result.size() - pos, "run");
    if (run.empty()) reader.fail("empty run");
    std::memcpy(result.data() + pos, run.data(), run.size());
    pos += run.size();
  }
}

}  // namespace shmsession::diff::detail
