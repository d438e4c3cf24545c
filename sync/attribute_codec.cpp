#include "sync/attribute_codec.hpp"

#include <boost/archive/impl/archive_serializer_map.ipp>

#include <xxhash.h>

// Boost keeps one serializer registry per archive type; AttributeOArchive's
// is instantiated here.
template class boost::archive::detail::archive_serializer_map<shmsession::sync::AttributeOArchive>;

namespace shmsession::sync {

std::uint64_t type_tag(const char* type_name) noexcept { return XXH3_64bits(type_name, std::strlen(type_name)); }

std::string value_prefix(std::uint64_t tag) {
  std::string prefix(kValuePrefixBytes, '\0');
  std::memcpy(prefix.data(), &kValueMagic, 4);
  std::memcpy(prefix.data() + 4, &tag, 8);
  return prefix;
}

std::uint64_t tag_of(std::string_view encoded, std::string_view attribute) {
  std::uint32_t magic = 0;
  std::uint64_t tag = 0;
  if (encoded.size() >= kValuePrefixBytes) {
    std::memcpy(&magic, encoded.data(), 4);
    std::memcpy(&tag, encoded.data() + 4, 8);
  }
  if (magic != kValueMagic)
    throw Error(Errc::Corrupt,
                "attribute '" + std::string(attribute) + "' was not written by a shmsession client (no value prefix)");
  return tag;
}

}  // namespace shmsession::sync
