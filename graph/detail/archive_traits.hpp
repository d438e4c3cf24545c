// Compile-time classification of the types a GraphOArchive meets: which are
// primitive values, pointers, optionals, keyed containers, and which are
// Boost's own bookkeeping types that describe the bytes, not the value.
//
// Thread safety: compile-time only.
#pragma once

#include "graph/detail/graph_data.hpp"

#include <boost/serialization/array_wrapper.hpp>
#include <boost/serialization/collection_size_type.hpp>
#include <boost/serialization/item_version_type.hpp>
#include <boost/serialization/library_version_type.hpp>

#include <array>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

namespace boost {
template <class T> class shared_ptr;
template <class T> class weak_ptr;
template <class T> class optional;
template <class T, std::size_t N> class array;
}  // namespace boost

namespace shmsession::graph::detail {

template <class T> struct IsSmartPointer : std::false_type {};
template <class T> struct IsSmartPointer<std::shared_ptr<T>> : std::true_type {};
template <class T> struct IsSmartPointer<std::weak_ptr<T>> : std::true_type {};
template <class T, class D> struct IsSmartPointer<std::unique_ptr<T, D>> : std::true_type {};
template <class T> struct IsSmartPointer<boost::shared_ptr<T>> : std::true_type {};
template <class T> struct IsSmartPointer<boost::weak_ptr<T>> : std::true_type {};

template <class T> struct IsOptional : std::false_type {};
template <class T> struct IsOptional<std::optional<T>> : std::true_type {};
template <class T> struct IsOptional<boost::optional<T>> : std::true_type {};

template <class T> struct IsFixedArray : std::false_type {};
template <class T, std::size_t N> struct IsFixedArray<std::array<T, N>> : std::true_type {};
template <class T, std::size_t N> struct IsFixedArray<boost::array<T, N>> : std::true_type {};

template <class T> struct IsArrayWrapper : std::false_type {};
template <class T> struct IsArrayWrapper<boost::serialization::array_wrapper<T>> : std::true_type {};

// Saved by value as one primitive node.
template <class T>
inline constexpr bool kIsLeafValue = std::is_arithmetic_v<T> || std::is_enum_v<T> ||
                                     std::is_same_v<T, std::string> || std::is_same_v<T, std::wstring>;

// Versions of the stored bytes, not part of the value.
template <class T>
inline constexpr bool kIsSchemaDetail = std::is_same_v<T, boost::serialization::item_version_type> ||
                                        std::is_same_v<T, boost::serialization::library_version_type>;

template <class T>
inline constexpr bool kIsPointerLike = std::is_pointer_v<T> || IsSmartPointer<T>::value;

template <class T>
concept KeyedContainer = requires { typename T::key_type; typename T::const_iterator; };
template <class T>
concept MapContainer = KeyedContainer<T> && requires { typename T::mapped_type; };

template <class T>
constexpr NodeKind kind_of() {
  if constexpr (kIsPointerLike<T>) return NodeKind::Pointer;
  else if constexpr (IsOptional<T>::value) return NodeKind::Optional;
  else if constexpr (MapContainer<T>) return NodeKind::Map;
  else if constexpr (KeyedContainer<T>) return NodeKind::Set;
  else if constexpr (IsFixedArray<T>::value || std::is_array_v<T>) return NodeKind::Sequence;
  else return NodeKind::Struct;  // becomes a Sequence if Boost writes a count
}

}  // namespace shmsession::graph::detail
