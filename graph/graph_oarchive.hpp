// GraphOArchive: a Boost.Serialization output archive that records the
// object graph of what is saved instead of writing bytes.
//
// It records, for any type Boost.Serialization can save: a node per value
// with its C++ type; members by their make_nvp names (positional when the
// serialize() gives none); primitive values; containers as sequences
// (vector, list, deque, arrays), sets and maps (Boost's "count" /
// "item_version" / "item" records become indexed or keyed children);
// std::optional / boost::optional as zero or one child; and pointers
// (raw, std:: and boost:: shared_ptr / weak_ptr, unique_ptr) with identity:
// an object reached a second time through any pointer is a reference node,
// so shared and cyclic objects appear once. Boost numbers tracked objects
// in write order; those numbers are replaced by node positions when the
// graph is finished, and references are hashed relative to their targets,
// so identities do not shift when objects are inserted earlier.
//
// Limits: Boost tracks objects by address and type, so the usual Boost rules
// apply (an object saved through a pointer may not later be saved by value;
// polymorphic pointees must be exported, with this header included before
// BOOST_CLASS_EXPORT, or registered). Base classes saved with base_object are
// child nodes (named by BOOST_SERIALIZATION_BASE_OBJECT_NVP or positional),
// not merged into the derived class. Floating-point values compare by bits
// (long double is narrowed to double).
//
// Usage: prefer build_graph() (graph/object_graph.hpp). Directly:
//   GraphOArchive archive; archive << value; ObjectGraph g{archive.release()};
//
// Thread safety: an archive belongs to one thread; any number of archives
// may run concurrently in different threads (Boost's serializer registry is
// filled during static initialisation and then only read).
#pragma once

#include "graph/archive_traits.hpp"
#include "graph/node_types.hpp"

#include <boost/archive/basic_archive.hpp>
#include <boost/archive/detail/common_oarchive.hpp>
#include <boost/archive/detail/register_archive.hpp>
#include <boost/serialization/nvp.hpp>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <sstream>
#include <string_view>
#include <type_traits>

namespace shmsession::graph {

class ObjectGraph;
namespace detail {
class GraphBuilder;
}  // namespace detail

class GraphOArchive : public boost::archive::detail::common_oarchive<GraphOArchive> {
 public:
  GraphOArchive();
  ~GraphOArchive() override;
  GraphOArchive(const GraphOArchive&) = delete;
  GraphOArchive& operator=(const GraphOArchive&) = delete;

  // The graph of the one value saved. Call once, after saving.
  // Throws: UnsupportedValue if nothing was saved.
  ObjectGraph release();

  // Called by Boost for types of primitive implementation level that are not
  // numbers or strings: recorded as their operator<< text.
  template <class T>
  void save(const T& value) {
    static_assert(
        requires(std::ostream & os) { os << value; }, "GraphOArchive records primitive-level types through operator<<");
    std::ostringstream text;
    text << value;
    set_bytes(ValueTag::Text, text.str());
  }
  // Called by Boost for binary_object (make_binary_object).
  void save_binary(const void* address, std::size_t count);

 private:
  friend class boost::archive::detail::interface_oarchive<GraphOArchive>;
  friend class boost::archive::detail::common_oarchive<GraphOArchive>;
  friend class boost::archive::save_access;
  template <class T>
  void save_override(const boost::serialization::nvp<T>& t) {
    save_named(t.name(), t.const_value());
  }
  template <class T>
  void save_override(const T& t) {
    save_named(nullptr, t);
  }
  // Boost's tracking records: the only ones that carry the value's shape.
  void save_override(const boost::archive::object_id_type& t);
  void save_override(const boost::archive::object_reference_type& t);
  // Class ids, versions, tracking flags and exported names describe the
  // bytes of a real archive; they depend on what was saved before, so they
  // stay out of the graph. A null pointer is a pointer node left empty.
  void save_override(const boost::archive::class_id_type&) {}
  void save_override(const boost::archive::class_id_optional_type&) {}
  void save_override(const boost::archive::class_id_reference_type&) {}
  void save_override(const boost::archive::class_name_type&) {}
  void save_override(const boost::archive::version_type&) {}
  void save_override(const boost::archive::tracking_type&) {}

  template <class T>
  void save_named(const char* name, const T& t);
  template <class T>
  void save_leaf(const char* name, const T& t);
  template <class T>
  bool absorbed_by_open_node() const noexcept;

  // What the templates above record, passed on to the builder (detail/
  // graph_builder.hpp, which says what each throws).
  void open_node(const char* name, const TypeEntry& type, NodeKind kind, Absorb absorb);
  void close_node();
  void add_scalar(const char* name, const TypeEntry& type, ValueTag tag, std::uint64_t bits);
  void add_bytes(const char* name, const TypeEntry& type, ValueTag tag, std::string_view bytes);
  void set_bytes(ValueTag tag, std::string_view bytes);
  void note_count();
  bool absorbs(Absorb what) const noexcept;

  std::unique_ptr<detail::GraphBuilder> builder_;
};

template <class T>
void GraphOArchive::save_named(const char* name, const T& t) {
  using U = std::remove_cv_t<T>;
  if constexpr (std::is_same_v<U, boost::serialization::collection_size_type>) {
    note_count();
  } else if constexpr (traits::kIsSchemaDetail<U>) {
    // versions of the bytes, not the value
  } else if constexpr (traits::IsArrayWrapper<U>::value) {  // NOLINT(bugprone-branch-clone): chosen at compile time
    boost::archive::save(*this, t);                         // its items belong to the enclosing array
  } else if constexpr (traits::kIsLeafValue<U>) {
    if (std::is_same_v<U, bool> && name != nullptr && std::strcmp(name, "initialized") == 0 &&
        absorbs(Absorb::OptionalFlag)) {
      return;  // an optional's presence is its child count
    }
    save_leaf(name, t);
  } else if (absorbed_by_open_node<U>()) {
    boost::archive::save(*this, t);
  } else {
    constexpr Absorb absorb = traits::IsSmartPointer<U>::value ? Absorb::Pointer
                              : traits::IsOptional<U>::value   ? Absorb::OptionalFlag
                              : traits::IsFixedArray<U>::value ? Absorb::Array
                                                               : Absorb::Nothing;
    open_node(name, type_entry<U>(), traits::kind_of<U>(), absorb);
    boost::archive::save(*this, t);
    close_node();
  }
}

template <class T>
void GraphOArchive::save_leaf(const char* name, const T& t) {
  const TypeEntry& type = type_entry<T>();
  if constexpr (std::is_same_v<T, bool>) {
    add_scalar(name, type, ValueTag::Bool, t ? 1 : 0);
  } else if constexpr (std::is_enum_v<T>) {
    using Underlying = std::underlying_type_t<T>;
    const auto tag = std::is_signed_v<Underlying> ? ValueTag::Signed : ValueTag::Unsigned;
    add_scalar(name, type, tag, static_cast<std::uint64_t>(static_cast<Underlying>(t)));
  } else if constexpr (std::is_floating_point_v<T>) {
    add_scalar(name, type, ValueTag::Float, std::bit_cast<std::uint64_t>(static_cast<double>(t)));
  } else if constexpr (std::is_integral_v<T>) {
    const auto tag = std::is_signed_v<T> ? ValueTag::Signed : ValueTag::Unsigned;
    add_scalar(name, type, tag, static_cast<std::uint64_t>(t));
  } else if constexpr (std::is_same_v<T, std::string>) {
    add_bytes(name, type, ValueTag::String, t);
  } else {
    const std::string_view bytes{reinterpret_cast<const char*>(t.data()), t.size() * sizeof(wchar_t)};
    add_bytes(name, type, ValueTag::WideString, bytes);
  }
}

template <class T>
bool GraphOArchive::absorbed_by_open_node() const noexcept {
  if constexpr (traits::kIsPointerLike<T>)
    return absorbs(Absorb::Pointer);
  else if constexpr (std::is_array_v<T>)
    return absorbs(Absorb::Array);
  else
    return false;
}

}  // namespace shmsession::graph

BOOST_SERIALIZATION_REGISTER_ARCHIVE(shmsession::graph::GraphOArchive)
