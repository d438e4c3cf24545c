// How a C++ object held in a client state becomes attribute bytes in the
// primary state and back: a Boost.Serialization binary archive behind a
// 12-byte prefix (magic + a tag of the C++ type), so that reading an
// attribute as the wrong type is a clear error, never undefined behaviour.
// Encoding writes binary_oarchive's bytes through AttributeOArchive
// (sync/attribute_oarchive.hpp), which also tells whether the value's
// bytes decide its object-graph equivalence.
//
// Types opt into two traits:
//   SHMSESSION_IMMUTABLE_TYPE(T)  values of T never change once written:
//                                 they are written once and never tracked or
//                                 compared again;
//   SHMSESSION_COMPARE_BINARY(T)  compare T by its serialized bytes instead of
//                                 the client's default (object graph).
//
// Thread safety: type_ops<T>() is a function-local static (thread-safe
// initialization); TypeOps is immutable. Processes must run the same build:
// the tag is derived from the compiler's type name.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <sstream>
#include <streambuf>
#include <string>
#include <string_view>
#include <typeinfo>

#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>  // for users' BOOST_CLASS_EXPORT, as before

#include "graph/object_graph.hpp"
#include "graph/std_optional.hpp"  // std::optional members in attribute types
#include "shm/error.hpp"
#include "sync/attribute_oarchive.hpp"

namespace shmsession::sync {

enum class Comparison {
  ObjectGraph,  // object-graph differencing against the benchmark (default)
  Binary,       // byte comparison of the serialized value
};

template <class T>
struct is_immutable : std::false_type {};
template <class T>
struct compares_binary : std::false_type {};

}  // namespace shmsession::sync

#define SHMSESSION_IMMUTABLE_TYPE(T) \
  template <>                        \
  struct shmsession::sync::is_immutable<T> : std::true_type {}
#define SHMSESSION_COMPARE_BINARY(T) \
  template <>                        \
  struct shmsession::sync::compares_binary<T> : std::true_type {}

namespace shmsession::sync {

// The codec's type-erased layer: what a Client keeps of each C++ type it
// holds (TypeOps, made once per type by type_ops<T>()), and the functions
// behind it. Public because SessionHandle's and encode_attribute's
// templates instantiate them in the user's code.

inline constexpr std::uint32_t kValueMagic = 0x31565353;  // "SSV1"
inline constexpr std::size_t kValuePrefixBytes = 12;      // magic + type tag

std::uint64_t type_tag(const char* type_name) noexcept;
// The prefix of an encoded value of the type with `tag`.
std::string value_prefix(std::uint64_t tag);
// The tag of an encoded value. Throws: Error(Corrupt) if it has no valid prefix.
std::uint64_t tag_of(std::string_view encoded, std::string_view attribute);

// A read-only streambuf over bytes we do not own (no copy to decode).
class ViewStreamBuf : public std::streambuf {
 public:
  explicit ViewStreamBuf(std::string_view bytes) {
    char* p = const_cast<char*>(bytes.data());
    setg(p, p, p + bytes.size());
  }
};

// An encoded value, and whether its bytes decide graph equivalence (false:
// it holds a type whose graph is coarser than its bytes, see
// graph::kGraphCoarserThanBytes, so values with other bytes may still have
// an equivalent graph).
struct EncodedValue {
  std::string bytes;
  bool bytes_decide = true;
};

// What the client state needs to know of a C++ type, erased.
struct TypeOps {
  const char* name;
  std::uint64_t tag;
  bool immutable;
  bool binary;                                                // compares by bytes whatever the client's default
  std::shared_ptr<void> (*decode)(std::string_view encoded);  // Throws: Error(Corrupt)
  // Encodes into `buffer`, whose content is dropped and whose memory is
  // reused (a caller may keep one across encodings).
  EncodedValue (*encode)(const void* object, std::string buffer);
  graph::ObjectGraph (*build_graph)(const void* object);
};

inline constexpr auto kArchiveFlags = boost::archive::no_header | boost::archive::no_codecvt;

template <class T>
std::shared_ptr<void> decode_value(std::string_view encoded) {
  auto object = std::make_shared<T>();
  try {
    ViewStreamBuf buf(encoded.substr(kValuePrefixBytes));
    std::istream in(&buf);
    boost::archive::binary_iarchive archive(in, kArchiveFlags);
    archive >> *object;
  } catch (const std::exception& e) {
    throw Error(Errc::Corrupt, std::string("cannot decode a value of type ") + typeid(T).name() + ": " + e.what());
  }
  return object;
}

template <class T>
EncodedValue encode_value(const void* object, std::string buffer = {}) {
  static const std::string prefix = value_prefix(type_tag(typeid(T).name()));
  EncodedValue out{std::move(buffer)};
  if (out.bytes.capacity() < kValuePrefixBytes + 64) out.bytes.reserve(kValuePrefixBytes + 64);
  out.bytes.assign(prefix);
  AttributeOArchive archive(out.bytes);
  archive << *static_cast<const T*>(object);
  archive.finish();
  out.bytes_decide = !archive.graph_coarser_than_bytes();
  return out;
}

template <class T>
graph::ObjectGraph graph_of(const void* object) {
  return graph::build_graph(*static_cast<const T*>(object));
}

template <class T>
const TypeOps& type_ops() {
  static const TypeOps ops{typeid(T).name(),
                           type_tag(typeid(T).name()),
                           is_immutable<T>::value,
                           compares_binary<T>::value,
                           &decode_value<T>,
                           &encode_value<T>,
                           &graph_of<T>};
  return ops;
}

// The attribute bytes a Client writes for `value`: for tools and peers that
// must hold byte-identical values (benchmarks, migrations).
template <class T>
std::string encode_attribute(const T& value) {
  return encode_value<T>(&value).bytes;
}

// The value of attribute bytes written for a T.
// Throws: Error(InvalidArgument) if they hold another type, Error(Corrupt).
template <class T>
T decode_attribute(std::string_view bytes) {
  const TypeOps& ops = type_ops<T>();
  if (tag_of(bytes, "(value)") != ops.tag)
    throw Error(Errc::InvalidArgument, std::string("the bytes hold another type than ") + ops.name);
  return std::move(*std::static_pointer_cast<T>(ops.decode(bytes)));
}

}  // namespace shmsession::sync
