// The parts of an HTTP request the shop reads, without Beast: the target
// split into path and query, form parameters (query string or an
// application/x-www-form-urlencoded body), and one cookie's value.
//
// Thread safety: pure functions.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace shmsession::appserver {

using Params = std::map<std::string, std::string, std::less<>>;

struct Target {
  std::string path;   // percent-decoded
  std::string query;  // raw, after '?'
};

// Splits and decodes a request target; nullopt if it is not an absolute path
// or holds a malformed escape.
std::optional<Target> parse_target(std::string_view target);
// "a=1&b=x%20y" -> {a: 1, b: "x y"} ('+' is a space); a later duplicate
// wins. nullopt on a malformed escape.
std::optional<Params> parse_form(std::string_view text);
// The value of cookie `name` in a Cookie header ("a=1; sid=abc"), if present.
std::optional<std::string> cookie_value(std::string_view header, std::string_view name);
// Percent-decoding; nullopt on a malformed escape or a decoded NUL.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space);

}  // namespace shmsession::appserver
