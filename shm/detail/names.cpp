#include "shm/detail/names.hpp"

#include <string>

#include "shm/error.hpp"
#include "shm/session.hpp"

namespace shmsession::shm::detail {
namespace {

// Quotes a name for an error message, escaping what is not printable so the
// message stays one line.
std::string quoted(std::string_view s) {
  static constexpr std::size_t kShown = 64;
  std::string out = "'";
  for (std::size_t i = 0; i < s.size() && i < kShown; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (s.size() > kShown) out += "...";
  return out + "'";
}

bool printable(std::string_view s) {
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace

void validate_store_name(std::string_view name) {
  static constexpr std::size_t kMax = 200;
  bool ok = !name.empty() && name.size() <= kMax && name.front() != '.';
  for (char c : name) {
    bool allowed =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    ok = ok && allowed;
  }
  if (!ok)
    throw Error(Errc::InvalidArgument, "invalid store name " + quoted(name) +
                                           ": use 1-200 characters from A-Z a-z 0-9 . _ - not starting with '.'");
}

void validate_session_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxSessionIdBytes || !printable(id))
    throw Error(Errc::InvalidArgument, "invalid session id " + quoted(id) + ": use 1-128 printable ASCII characters");
}

void validate_attribute_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxAttributeNameBytes || !printable(name))
    throw Error(Errc::InvalidArgument,
                "invalid attribute name " + quoted(name) + ": use 1-255 printable ASCII characters");
}

}  // namespace shmsession::shm::detail
