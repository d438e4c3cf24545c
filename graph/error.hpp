// What graph/ throws. graph/ is a library of its own, with no dependency on
// the rest of shmsession: a value it cannot make a graph of (Boost refuses
// it, it is over a size limit, nothing was saved) is UnsupportedValue;
// memory is std::bad_alloc; what a value's serialize() throws passes
// through. sync/ turns UnsupportedValue into shmsession::Error
// (InvalidArgument) at its boundary.
//
// Thread safety: an immutable value; safe to copy between threads.
#pragma once

#include <stdexcept>

namespace shmsession::graph {

// The value cannot be made into a graph. Retrying with it does not help.
class UnsupportedValue : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

}  // namespace shmsession::graph
