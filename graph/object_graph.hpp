// ObjectGraph: the object graph of one attribute value, and the graph diff
// that tells which paths inside it changed against a benchmark version.
//
// A graph is built from any value Boost.Serialization can save (member or
// free serialize(), NVPs, std::string, std::vector, std::list, std::map,
// std::set, std::optional via "graph/std_optional.hpp", std::shared_ptr,
// raw pointers, nested classes): nodes with their types, named members,
// primitive values, containers and pointers with identity, so that shared
// and cyclic objects appear once (see graph/graph_oarchive.hpp).
//
// Identity: an object's identity is where it is first reached in the value,
// and a second pointer to it is recorded relative to that place, never by
// Boost's write-order number; so inserting an object earlier in the value
// does not make later objects look changed.
//
// Diff semantics: members compare by NVP name; sequences are aligned on
// element hashes (inserting at the front reports one Added path); sets and
// maps compare by key; a pointer that becomes null or non-null, targets
// another object, or stops or starts sharing its target is Modified at the
// pointer's path; a different type at a path is Modified there, and nothing
// below it is reported. Subtrees with equal hashes are skipped in O(1).
//
// Thread safety: an ObjectGraph is immutable; copies share its storage;
// any number of threads may read, copy, diff and compare graphs at once.
// build_graph may run in several threads at once on different values.
#pragma once

#include "graph/error.hpp"
#include "graph/graph_oarchive.hpp"

#include <boost/archive/archive_exception.hpp>

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace shmsession::graph {

namespace detail {
struct GraphData;
}  // namespace detail

enum class ChangeKind { Added, Removed, Modified };

struct Change {
  std::string path;
  ChangeKind kind;
  friend bool operator==(const Change&, const Change&) = default;
};

class ObjectGraph {
 public:
  // The graph of no value: node_count() 0, root_hash() 0. A graph of a value
  // comes from build_graph() or GraphOArchive::release().
  ObjectGraph() = default;

  // Hash of the whole graph: shape, types, names, values and aliasing.
  std::uint64_t root_hash() const noexcept;
  std::size_t node_count() const noexcept;
  bool empty() const noexcept { return node_count() == 0; }
  // One line per node, indented by depth, for debugging and tests:
  //   $: Cart
  //     items: std::vector<Item> [2]
  //       [0]: Item
  //         qty: int = 2
  //     featured: std::shared_ptr<Item> -> $.items[0]
  // Throws: std::bad_alloc.
  std::string to_text() const;

  friend std::vector<Change> diff(const ObjectGraph& before, const ObjectGraph& after, std::string_view root_name);

 private:
  friend class GraphOArchive;
  explicit ObjectGraph(std::shared_ptr<const detail::GraphData> data) noexcept;

  std::shared_ptr<const detail::GraphData> data_;  // null when empty
};

// Builds the object graph of `value`.
// Throws: UnsupportedValue when Boost.Serialization refuses the value
// (an unregistered polymorphic pointee, an object saved by value after it
// was saved through a pointer); whatever the value's serialize() throws;
// std::bad_alloc.
template <class T>
ObjectGraph build_graph(const T& value) {
  GraphOArchive archive;
  try {
    archive << value;
  } catch (const boost::archive::archive_exception& e) {
    throw UnsupportedValue(std::string("graph: Boost.Serialization cannot save the value: ") + e.what());
  }
  return archive.release();
}

// Whether a value holding a T (as itself or anywhere inside) may have a
// graph equivalent to another value's while the two serialize to different
// Boost archive bytes (keyed containers, float, long double, types saved as
// text, arrays of bitwise-serializable classes: see
// traits::GraphCoarserThanBytes). When no type a value holds is,
// its bytes decide: equal bytes, equivalent graphs; different bytes,
// different graphs (a 64-bit hash collision aside, as for equivalent()).
template <class T>
inline constexpr bool kGraphCoarserThanBytes = traits::kGraphCoarserThanBytes<T>;

// "Added", "Removed", "Modified".
std::string_view to_string(ChangeKind kind) noexcept;
std::ostream& operator<<(std::ostream& out, ChangeKind kind);
std::ostream& operator<<(std::ostream& out, const Change& change);  // "Modified cart.items[3].qty"

// The paths that differ between `before` and `after`, rooted at
// `root_name`: "cart.items[3].qty", map entries as "cart.by_sku[\"A-1\"]"
// (keys rendered readably), members by their NVP names (positional "[0]",
// "[1]"... when the archive gives no name). Added and Modified paths use
// `after`'s indices, Removed paths `before`'s. A graph compared with an
// empty one is one Added or Removed change at `root_name`.
// Empty iff equivalent(before, after).
// Throws: std::bad_alloc.
std::vector<Change> diff(const ObjectGraph& before, const ObjectGraph& after, std::string_view root_name);

// Same shape, types, names, values and aliasing (by the 64-bit root hash).
bool equivalent(const ObjectGraph& a, const ObjectGraph& b);

}  // namespace shmsession::graph
