#include "shm/session.hpp"

#include <algorithm>

namespace shmsession {

const Attribute* SessionSnapshot::find(std::string_view name) const noexcept {
  auto it = std::lower_bound(attributes.begin(), attributes.end(), name,
                             [](const Attribute& a, std::string_view n) { return a.name < n; });
  return (it != attributes.end() && it->name == name) ? &*it : nullptr;
}

std::string StoreInfo::store_id_hex() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::uint8_t b : store_id) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

std::string_view change_kind_name(ChangeKind kind) noexcept {
  switch (kind) {
    case ChangeKind::Created: return "created";
    case ChangeKind::Committed: return "committed";
    case ChangeKind::Removed: return "removed";
    case ChangeKind::Expired: return "expired";
  }
  return "unknown";
}

}  // namespace shmsession
