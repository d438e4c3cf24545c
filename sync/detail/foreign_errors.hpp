// sync/ speaks shmsession::Error for what graph/ and diff/ throw.
//
// graph/ and diff/ depend on no other module, so they throw their own
// exceptions (graph/error.hpp, diff/error.hpp). sync/ calls them on the
// store's behalf and turns those into shmsession::Error before they reach
// its callers, who meet one error family. Anything else (what a value's
// serialize() throws, std::bad_alloc) passes through unchanged.
//
// Thread safety: stateless functions.
#pragma once

#include <string>
#include <utility>

#include "diff/error.hpp"
#include "graph/error.hpp"
#include "shm/error.hpp"

namespace shmsession::sync::detail {

// A diff::detail::ByteReader failure in sync/'s own wire formats.
// Throws: Error(Corrupt, message).
[[noreturn]] inline void throw_corrupt(const std::string& message) { throw Error(Errc::Corrupt, message); }

// Runs `f` and returns what it returns.
// Throws: what `f` throws, with diff::CorruptInput as Error(Corrupt), and
// diff::RefusedInput and graph::UnsupportedValue as Error(InvalidArgument),
// same message.
template <class F>
decltype(auto) with_store_errors(F&& f) {
  try {
    return std::forward<F>(f)();
  } catch (const diff::CorruptInput& e) {
    throw Error(Errc::Corrupt, e.what());
  } catch (const diff::RefusedInput& e) {
    throw Error(Errc::InvalidArgument, e.what());
  } catch (const graph::UnsupportedValue& e) {
    throw Error(Errc::InvalidArgument, e.what());
  }
}

}  // namespace shmsession::sync::detail
