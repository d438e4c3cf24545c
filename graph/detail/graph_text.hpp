// How graphs and their paths read to people: path segments
// ("cart.items[3].qty", "cart.by_sku[\"A-1\"]"), primitive values, map keys
// and the to_text() dump.
//
// Path rules: a member is ".name", or "[k]" (its position) when the
// serialize() gave no name; a sequence element is "[i]"; a set element and a
// map entry are "[key]" with the key rendered on one line; a pointee and an
// optional's value add nothing (the pointer's path is the object's path);
// a map entry's value adds nothing to its "[key]".
//
// Thread safety: pure functions of immutable data.
#pragma once

#include "graph/detail/graph_data.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace shmsession::graph::detail {

// Appends the segment leading from n's parent to n (nothing for the root).
void append_segment(const GraphData& g, std::uint32_t n, std::string& path);

// The path from the root to n, starting with `root_name`.
std::string path_of(const GraphData& g, std::uint32_t n, std::string_view root_name);

// A primitive as text: 42, -1.5, true, "quoted \"text\"".
std::string value_text(const GraphData& g, std::uint32_t n);

// A subtree on one line, shortened past about 64 characters: "A-1" quoted,
// 42, {sku="A-1", qty=2}, [1, 2].
std::string key_text(const GraphData& g, std::uint32_t n);

// One line per node, indented by depth: "label: type = value",
// "label: type -> $.path" for references.
std::string graph_to_text(const GraphData& g);

}  // namespace shmsession::graph::detail
