// The storage behind an ObjectGraph: one flat vector of nodes in preorder.
//
// Layout: node 0 is the saved value; the children of node n start at n + 1
// and each next sibling starts `size` nodes after the previous one, so the
// subtree of n is the index range [n, n + size). The tree is the spanning
// tree of first occurrences in Boost's write order; an object reached a
// second time (shared or cyclic) is a node with `ref` set to the index of
// its first occurrence (which always precedes it) and no children.
//
// Hashes: `hash` covers the node's kind, type, value, children with their
// names, and for a reference the path from the reference to its target
// relative to their lowest common ancestor (never a write-order number), so
// the hash of a subtree does not depend on where the subtree sits.
// A subtree that holds a reference to a node outside it is flagged
// kEscapes: equal hashes alone do not prove two such subtrees equivalent in
// context.
//
// Thread safety: immutable once built; shared read-only between threads.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "graph/node_types.hpp"

namespace shmsession::graph::detail {

inline constexpr std::uint32_t kNoIndex = 0xffffffffu;

// 40 bytes: a 10,000-element vector of small structs is ~40,000 nodes.
struct Node {
  static constexpr std::uint8_t kReference = 1;    // payload holds the target's index
  static constexpr std::uint8_t kInlineValue = 2;  // payload holds the value's 8 bytes
  static constexpr std::uint8_t kEscapes = 4;      // the subtree refers to a node outside it

  std::uint64_t hash = 0;
  std::uint32_t parent = kNoIndex;
  std::uint32_t size = 1;         // nodes in the subtree, this one included
  std::uint32_t ordinal = 0;      // position among the parent's children
  std::uint32_t name = kNoIndex;  // index in GraphData::names; kNoIndex: positional
  // A reference's target; an inline scalar's little-endian bytes; or the
  // offset and size of a value's bytes in GraphData::values.
  std::array<char, 8> payload{};
  std::uint16_t type = 0;  // index in GraphData::types
  NodeKind kind = NodeKind::Struct;
  ValueTag tag = ValueTag::None;
  std::uint8_t flags = 0;

  std::uint32_t payload_word(int i) const noexcept {
    std::uint32_t word;
    std::memcpy(&word, payload.data() + std::ptrdiff_t{4} * i, sizeof word);
    return word;
  }
  void set_payload_word(int i, std::uint32_t word) noexcept {
    std::memcpy(payload.data() + std::ptrdiff_t{4} * i, &word, sizeof word);
  }
  bool is_reference() const noexcept { return (flags & kReference) != 0; }
  std::uint32_t ref() const noexcept { return is_reference() ? payload_word(0) : kNoIndex; }
};
static_assert(sizeof(Node) == 40);

struct GraphData {
  // A deque: built without reallocating, from recycled heap blocks (fresh
  // pages of a large vector cost more than the rest of the build).
  std::deque<Node> nodes;
  std::vector<std::string> names;
  std::vector<std::uint64_t> name_hashes;
  std::vector<std::string> types;
  std::vector<std::uint64_t> type_hashes;
  std::string values;  // the bytes of every non-inline Value, back to back

  std::string_view name_of(std::uint32_t n) const {
    const std::uint32_t name = nodes[n].name;
    return name == kNoIndex ? std::string_view{} : std::string_view{names[name]};
  }
  std::uint64_t name_hash_of(std::uint32_t n) const {
    const std::uint32_t name = nodes[n].name;
    return name == kNoIndex ? 0 : name_hashes[name];
  }
  std::string_view type_of(std::uint32_t n) const { return types[nodes[n].type]; }
  std::uint64_t type_hash_of(std::uint32_t n) const { return type_hashes[nodes[n].type]; }
  std::string_view value_of(std::uint32_t n) const {
    const Node& node = nodes[n];
    if ((node.flags & Node::kInlineValue) != 0) return std::string_view{node.payload.data(), node.payload.size()};
    return std::string_view{values}.substr(node.payload_word(0), node.payload_word(1));
  }
  bool is_reference(std::uint32_t n) const { return nodes[n].is_reference(); }
  std::uint32_t ref_of(std::uint32_t n) const { return nodes[n].ref(); }
  // Whether the subtree of n holds a reference to a node outside it.
  bool escapes(std::uint32_t n) const { return (nodes[n].flags & Node::kEscapes) != 0; }
  std::uint32_t next_sibling(std::uint32_t c) const { return c + nodes[c].size; }
  std::uint32_t end_of(std::uint32_t n) const { return n + nodes[n].size; }

  // The children of n, in order.
  std::vector<std::uint32_t> children(std::uint32_t n) const {
    std::vector<std::uint32_t> out;
    out.reserve(nodes[n].size - 1);  // an upper bound; pages never written cost nothing
    for (std::uint32_t c = n + 1; c < end_of(n); c = next_sibling(c)) out.push_back(c);
    return out;
  }
  std::uint32_t child_count(std::uint32_t n) const {
    std::uint32_t count = 0;
    for (std::uint32_t c = n + 1; c < end_of(n); c = next_sibling(c)) ++count;
    return count;
  }
};

}  // namespace shmsession::graph::detail
