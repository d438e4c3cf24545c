// Validation of the names callers give: store names, session ids and
// attribute names. Each throws Error(InvalidArgument) with a message that
// names the rule broken. Pure functions: safe from any thread.
#pragma once

#include <string_view>

namespace shmsession::shm::detail {

// 1-200 bytes of A-Z a-z 0-9 . _ -, not starting with '.'.
void validate_store_name(std::string_view name);
// 1-128 printable ASCII bytes (0x20-0x7e).
void validate_session_id(std::string_view id);
// 1-255 printable ASCII bytes (0x20-0x7e).
void validate_attribute_name(std::string_view name);

}  // namespace shmsession::shm::detail
