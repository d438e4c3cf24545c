// Readable names of the C++ types that appear in object graphs: how
// register_type_name (graph/node_types.hpp) shortens a demangled name.
//
// Thread safety: a pure function.
#pragma once

#include <string>
#include <string_view>

namespace shmsession::graph::detail {

// Shortens a demangled name: drops default allocator, comparator, hasher and
// char-traits arguments, "std::__cxx11::" and spells std::string/wstring.
std::string pretty_type_name(std::string_view demangled);

}  // namespace shmsession::graph::detail
