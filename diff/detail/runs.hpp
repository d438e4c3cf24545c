// The body of a Runs patch: the bytes that differ between two values of the
// same size, as (gap, length, bytes) runs. See diff/patch_format.md.
//
// Thread safety: pure functions; safe from any number of threads.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "diff/detail/byte_io.hpp"

namespace shmsession::diff::detail {

// Appends the runs turning `base` into `target` to `out`. Returns false (and
// `out` is then unspecified past its old size) as soon as the appended bytes
// would exceed `max_bytes`.
// Requires: base.size() == target.size().
bool append_runs(std::string_view base, std::string_view target, std::size_t max_bytes, std::string& out);

// Reads runs until the end of `reader` and writes them over `result`, which
// holds a copy of the base.
// Throws: CorruptInput for a run that is empty or ends past the value.
void apply_runs(ByteReader& reader, std::string& result);

}  // namespace shmsession::diff::detail
