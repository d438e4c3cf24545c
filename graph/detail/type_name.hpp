// Readable, interned names of the C++ types that appear in object graphs.
//
// Every node of a graph carries the static type it was saved as (the
// dynamic type for a pointee). The name is demangled once per type and
// shortened for people ("std::vector<Item>" rather than the allocator-laden
// spelling); each type also gets a small process-wide id so that a graph
// builder can map types to its own table without hashing strings per node.
//
// Thread safety: type_entry<T>() and register_type_name() may be called from
// any thread; the returned entries are immutable and live until exit.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <typeinfo>

namespace shmsession::graph::detail {

struct TypeEntry {
  std::uint32_t id = 0;  // dense, process-wide, in order of first use
  std::string name;      // pretty_type_name of the demangled name
};

// The entry of a type, created on first use.
// Throws: std::bad_alloc.
const TypeEntry& register_type_name(const std::type_info& info);

// The entry of T, looked up once per type and then cached.
template <class T>
const TypeEntry& type_entry() {
  static const TypeEntry& entry = register_type_name(typeid(T));
  return entry;
}

// Shortens a demangled name: drops default allocator, comparator, hasher and
// char-traits arguments, "std::__cxx11::" and spells std::string/wstring.
std::string pretty_type_name(std::string_view demangled);

}  // namespace shmsession::graph::detail
