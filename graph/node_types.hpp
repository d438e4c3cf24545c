// The vocabulary GraphOArchive's templates record a value in: the kind of
// each node, the tag of each primitive value, and the interned name of each
// C++ type. Public because the archive's templates are instantiated in the
// user's code; the graph's storage and its builder stay in graph/detail.
//
// Thread safety: type_entry<T>() and register_type_name() may be called from
// any thread; the returned entries are immutable and live until exit.
#pragma once

#include <cstdint>
#include <string>
#include <typeinfo>

namespace shmsession::graph {

enum class NodeKind : std::uint8_t {
  Value,     // a primitive: number, bool, enum, string, bytes
  Struct,    // a class: children are members, by NVP name or position
  Sequence,  // vector, list, deque, array: children by index
  Set,       // set-like container: children are the keys
  Map,       // map-like container: children are (first, second) pairs
  Pointer,   // raw or smart pointer: no child (null), one child (the
             // pointee, first reached here) or `ref` (reached before)
  Optional,  // std::optional / boost::optional: zero or one child
};

enum class ValueTag : std::uint8_t { None, Bool, Signed, Unsigned, Float, String, WideString, Binary, Text };

// What an open node takes over from its first child instead of nesting it:
// a smart pointer its raw pointer, std::array its C array, an optional its
// "initialized" flag.
enum class Absorb : std::uint8_t { Nothing, Pointer, Array, OptionalFlag };

// Every node of a graph carries the static type it was saved as (the
// dynamic type for a pointee). The name is demangled once per type and
// shortened for people ("std::vector<Item>" rather than the allocator-laden
// spelling); each type also gets a small process-wide id so that a graph
// builder can map types to its own table without hashing strings per node.
struct TypeEntry {
  std::uint32_t id = 0;  // dense, process-wide, in order of first use
  std::string name;      // the shortened demangled name
};

// The entry of a type, made on first use.
// Throws: std::bad_alloc.
const TypeEntry& register_type_name(const std::type_info& info);

template <class T>
const TypeEntry& type_entry() {
  static const TypeEntry& entry = register_type_name(typeid(T));
  return entry;
}

}  // namespace shmsession::graph
