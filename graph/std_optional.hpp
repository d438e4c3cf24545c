// Boost.Serialization support for std::optional, which Boost 1.81 lacks.
//
// The format is boost::optional's ("initialized", then "value" when set),
// so GraphOArchive sees both alike and binary archives of attributes can
// load what they saved. Include it wherever a std::optional member is
// serialized, with any archive. Newer Boost versions ship their own
// <boost/serialization/std_optional.hpp>; that one is used when present.
//
// Requires: T default-constructible (loading constructs it before reading).
// Thread safety: stateless functions.
#pragma once

#if __has_include(<boost/serialization/std_optional.hpp>)
#include <boost/serialization/std_optional.hpp>
#else

#include <boost/serialization/nvp.hpp>

#include <optional>

namespace shmsession::graph::detail {

template <class Archive, class T>
void save_optional(Archive& archive, const std::optional<T>& value) {
  const bool initialized = value.has_value();
  archive << boost::serialization::make_nvp("initialized", initialized);
  if (initialized) archive << boost::serialization::make_nvp("value", *value);
}

template <class Archive, class T>
void load_optional(Archive& archive, std::optional<T>& value) {
  bool initialized = false;
  archive >> boost::serialization::make_nvp("initialized", initialized);
  if (!initialized) {
    value.reset();
    return;
  }
  if (!value.has_value()) value.emplace();
  archive >> boost::serialization::make_nvp("value", *value);
}

}  // namespace shmsession::graph::detail

namespace boost::serialization {

// Not split_free: its call to `load` also finds shared_ptr_helper's
// `load(Archive&, SPT<class U>&, unsigned)`, which fails hard on std::optional.
template <class Archive, class T>
void serialize(Archive& archive, std::optional<T>& value, const unsigned int /*version*/) {
  if constexpr (Archive::is_saving::value) {
    shmsession::graph::detail::save_optional(archive, value);
  } else {
    shmsession::graph::detail::load_optional(archive, value);
  }
}

}  // namespace boost::serialization

#endif
