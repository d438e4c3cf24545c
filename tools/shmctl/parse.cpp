#include "tools/shmctl/parse.hpp"

#include <limits>

namespace shmsession::shmctl {

std::optional<std::uint64_t> parse_unsigned(std::string_view text, std::uint64_t max) {
  if (text.empty()) return std::nullopt;
  std::uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    auto digit = static_cast<std::uint64_t>(c - '0');
    if (value > (max - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  unsigned shift = 0;
  if (!text.empty()) {
    switch (text.back()) {
      case 'K':
      case 'k':
        shift = 10;
        break;
      case 'M':
      case 'm':
        shift = 20;
        break;
      case 'G':
      case 'g':
        shift = 30;
        break;
      default:
        break;
    }
  }
  if (shift != 0) text.remove_suffix(1);
  constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
  std::optional<std::uint64_t> count = parse_unsigned(text, kMax >> shift);
  if (!count) return std::nullopt;
  return *count << shift;
}

std::optional<unsigned> parse_mode(std::string_view text) {
  if (text.empty() || text.size() > 4) return std::nullopt;
  unsigned mode = 0;
  for (char c : text) {
    if (c < '0' || c > '7') return std::nullopt;
    mode = mode * 8 + static_cast<unsigned>(c - '0');
  }
  if (mode > 0777) return std::nullopt;
  return mode;
}

std::string format_mode(unsigned mode) {
  std::string out(4, '0');
  for (int i = 3; i > 0; --i) {
    out[static_cast<std::size_t>(i)] = static_cast<char>('0' + (mode & 7u));
    mode >>= 3;
  }
  return out;
}

}  // namespace shmsession::shmctl
