// Compile-time classification of the types a GraphOArchive meets: which are
// primitive values, pointers, optionals, keyed containers, and which are
// Boost's own bookkeeping types that describe the bytes, not the value.
//
// Thread safety: compile-time only.
#pragma once

#include "graph/node_types.hpp"

#include <boost/archive/basic_archive.hpp>
#include <boost/serialization/array_wrapper.hpp>
#include <boost/serialization/collection_size_type.hpp>
#include <boost/serialization/is_bitwise_serializable.hpp>
#include <boost/serialization/item_version_type.hpp>
#include <boost/serialization/level.hpp>
#include <boost/serialization/library_version_type.hpp>

#include <array>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

namespace boost {
template <class T>
class shared_ptr;
template <class T>
class weak_ptr;
template <class T>
class optional;
template <class T, std::size_t N>
class array;
}  // namespace boost

namespace shmsession::graph::traits {

template <class T>
struct IsSmartPointer : std::false_type {};
template <class T>
struct IsSmartPointer<std::shared_ptr<T>> : std::true_type {};
template <class T>
struct IsSmartPointer<std::weak_ptr<T>> : std::true_type {};
template <class T, class D>
struct IsSmartPointer<std::unique_ptr<T, D>> : std::true_type {};
template <class T>
struct IsSmartPointer<boost::shared_ptr<T>> : std::true_type {};
template <class T>
struct IsSmartPointer<boost::weak_ptr<T>> : std::true_type {};

template <class T>
struct IsOptional : std::false_type {};
template <class T>
struct IsOptional<std::optional<T>> : std::true_type {};
template <class T>
struct IsOptional<boost::optional<T>> : std::true_type {};

template <class T>
struct IsFixedArray : std::false_type {};
template <class T, std::size_t N>
struct IsFixedArray<std::array<T, N>> : std::true_type {};
template <class T, std::size_t N>
struct IsFixedArray<boost::array<T, N>> : std::true_type {};

template <class T>
struct IsArrayWrapper : std::false_type {};
template <class T>
struct IsArrayWrapper<boost::serialization::array_wrapper<T>> : std::true_type {};

// Saved by value as one primitive node.
template <class T>
inline constexpr bool kIsLeafValue =
    std::is_arithmetic_v<T> || std::is_enum_v<T> || std::is_same_v<T, std::string> || std::is_same_v<T, std::wstring>;

// Versions of the stored bytes, not part of the value.
template <class T>
inline constexpr bool kIsSchemaDetail = std::is_same_v<T, boost::serialization::item_version_type> ||
                                        std::is_same_v<T, boost::serialization::library_version_type>;

template <class T>
inline constexpr bool kIsPointerLike = std::is_pointer_v<T> || IsSmartPointer<T>::value;

template <class T>
concept KeyedContainer = requires {
  typename T::key_type;
  typename T::const_iterator;
};
template <class T>
concept MapContainer = KeyedContainer<T> && requires {
  typename T::mapped_type;
};

template <class T>
constexpr NodeKind kind_of() {
  if constexpr (kIsPointerLike<T>)
    return NodeKind::Pointer;
  else if constexpr (IsOptional<T>::value)
    return NodeKind::Optional;
  else if constexpr (MapContainer<T>)
    return NodeKind::Map;
  else if constexpr (KeyedContainer<T>)
    return NodeKind::Set;
  else if constexpr (IsFixedArray<T>::value || std::is_array_v<T>)
    return NodeKind::Sequence;
  else
    return NodeKind::Struct;  // becomes a Sequence if Boost writes a count
}

// Boost's own records: they describe the bytes and never reach a node.
template <class T>
inline constexpr bool kIsArchiveRecord =
    kIsSchemaDetail<T> || std::is_same_v<T, boost::serialization::collection_size_type> ||
    std::is_same_v<T, boost::archive::object_id_type> || std::is_same_v<T, boost::archive::object_reference_type> ||
    std::is_same_v<T, boost::archive::class_id_type> || std::is_same_v<T, boost::archive::class_id_optional_type> ||
    std::is_same_v<T, boost::archive::class_id_reference_type> || std::is_same_v<T, boost::archive::class_name_type> ||
    std::is_same_v<T, boost::archive::version_type> || std::is_same_v<T, boost::archive::tracking_type>;

// Whether a value holding a T may have a graph equivalent to another
// value's while their Boost binary archives differ: keyed containers (their
// children compare as unordered: an unordered_map in another order, a
// multiset's equivalent elements), float and long double (compared as
// doubles: long double narrows, a signalling float NaN turns quiet),
// primitive-level types recorded through their operator<< text, and arrays
// of those or of bitwise-serializable classes (a binary archive writes such
// an array as one block, without visiting its items). For values of every
// other type the graph is a function of the bytes and back (the same Boost
// walk records the same shape, values and write order), so equal bytes
// mean equivalent graphs and different bytes different graphs.
template <class T>
struct GraphCoarserThanBytes
    : std::bool_constant<KeyedContainer<T> || std::is_same_v<T, float> || std::is_same_v<T, long double> ||
                         (boost::serialization::implementation_level<T>::value ==
                              boost::serialization::primitive_type &&
                          !kIsLeafValue<T> && !kIsArchiveRecord<T> && !std::is_pointer_v<T>)> {};
template <class T>
struct GraphCoarserThanBytes<boost::serialization::array_wrapper<T>>
    : std::bool_constant<GraphCoarserThanBytes<std::remove_cv_t<T>>::value ||
                         (std::is_class_v<T> &&
                          boost::serialization::is_bitwise_serializable<std::remove_cv_t<T>>::value)> {};

template <class T>
inline constexpr bool kGraphCoarserThanBytes = GraphCoarserThanBytes<std::remove_cv_t<T>>::value;

}  // namespace shmsession::graph::traits
