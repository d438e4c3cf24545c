// What diff/ throws. diff/ is a library of its own, with no dependency on
// the rest of shmsession: bad bytes (a patch, a delta frame, a compressed
// block that fails a check) are CorruptInput; input diff/ refuses (a delta
// over its limits, a name twice) is RefusedInput; memory is std::bad_alloc.
// sync/, which calls diff/ on shmsession's behalf, turns the first two into shmsession::Error (Corrupt,
// InvalidArgument) at its boundary, so users of the store meet one error family.
//
// Thread safety: an immutable value; safe to copy between threads.
#pragma once

#include <stdexcept>

namespace shmsession::diff {

// Bytes handed to diff/ fail a check (bounds, a length, a checksum, a
// method). Retrying with the same bytes does not help.
class CorruptInput : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Input diff/ does not accept (it breaks the delta format or its limits).
// Fix the input; retrying the same does not help.
class RefusedInput : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

}  // namespace shmsession::diff
