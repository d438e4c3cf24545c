// HOST:PORT as the tools take it (--backup, --listen, restore --from):
// "127.0.0.1:7480", "backup.example:7480", "[::1]:7480".
//
// Thread safety: pure function.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "shm/error.hpp"  // the Error this throws

namespace shmsession::sync {

struct Endpoint {
  std::string host;
  std::uint16_t port = 0;

  std::string to_string() const;
};

// Throws: Error(InvalidArgument) naming the text when the host is empty,
// the port is missing, not decimal or outside 1..65535 (0 when allow_zero,
// for "any free port").
Endpoint parse_endpoint(std::string_view text, bool allow_zero = false);

}  // namespace shmsession::sync
