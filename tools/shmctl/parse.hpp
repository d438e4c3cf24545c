// Parsing of the operator's input that CLI11 does not know how to read:
// sizes with binary suffixes, octal permission modes and strictly decimal
// counts (CLI11 alone would take "010" as octal and wrap "-1" to 2^64-1).
//
// Thread safety: pure functions; safe from any thread. No shared memory.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace shmsession::shmctl {

// Decimal digits only, at most `max`. Returns nullopt if malformed or too big.
std::optional<std::uint64_t> parse_unsigned(std::string_view text, std::uint64_t max);

// Plain bytes or a number with a K, M or G suffix (powers of 1024, either
// case): "4096", "64M", "2G". Returns nullopt if malformed or above 2^64-1.
std::optional<std::uint64_t> parse_size(std::string_view text);

// One to four octal digits, at most 0777: "0640", "600". Returns nullopt
// otherwise.
std::optional<unsigned> parse_mode(std::string_view text);

// A mode as four octal digits: 0640 -> "0640".
std::string format_mode(unsigned mode);

}  // namespace shmsession::shmctl
