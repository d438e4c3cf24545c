// What SessionHandle::commit() reports: the session's version after it, and
// which attributes it wrote.
//
// Thread safety: a plain value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace shmsession::sync {

struct CommitOutcome {
  std::uint64_t version = 0;         // session version after the commit
  std::vector<std::string> written;  // attributes written (puts and removals)
  std::size_t examined = 0;          // mutably accessed attributes compared
};

}  // namespace shmsession::sync
