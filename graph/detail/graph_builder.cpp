#include "graph/detail/graph_builder.hpp"

#include "graph/error.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include <xxhash.h>

namespace shmsession::graph::detail {
namespace {

std::uint64_t hash_bytes(std::string_view bytes) noexcept { return XXH3_64bits(bytes.data(), bytes.size()); }

bool contains(const GraphData& g, std::uint32_t ancestor, std::uint32_t node) noexcept {
  return ancestor <= node && node - ancestor < g.nodes[ancestor].size;
}

// A reference is hashed by where its target lies relative to it: how many
// levels up to their lowest common ancestor, then the child positions down
// to the target. Inside a sequence the first step down is an offset from
// the reference's own element, so "the previous element" hashes the same at
// every index and inserting elements elsewhere does not disturb it.
void append_reference_words(const GraphData& g, std::uint32_t n, std::vector<std::uint64_t>& words) {
  const std::uint32_t target = g.ref_of(n);
  std::uint32_t ancestor = n;
  std::uint32_t reference_side = n;
  std::uint64_t up = 0;
  while (!contains(g, ancestor, target) && g.nodes[ancestor].parent != kNoIndex) {
    reference_side = ancestor;
    ancestor = g.nodes[ancestor].parent;
    ++up;
  }
  words.push_back(up);
  const std::size_t down_start = words.size();
  for (std::uint32_t t = target; t != ancestor && t != kNoIndex; t = g.nodes[t].parent) {
    words.push_back(g.nodes[t].ordinal);
  }
  std::reverse(words.begin() + static_cast<std::ptrdiff_t>(down_start), words.end());
  if (g.nodes[ancestor].kind == NodeKind::Sequence && words.size() > down_start && reference_side != n) {
    words[down_start] -= g.nodes[reference_side].ordinal;
  }
}

void append_children_words(const GraphData& g, std::uint32_t n, std::vector<std::uint64_t>& words) {
  const Node& node = g.nodes[n];
  const bool named = node.kind == NodeKind::Struct || node.kind == NodeKind::Pointer || node.kind == NodeKind::Optional;
  const std::size_t first = words.size();
  for (std::uint32_t c = n + 1; c < g.end_of(n); c = g.next_sibling(c)) {
    if (named) words.push_back(g.name_hash_of(c));
    words.push_back(g.nodes[c].hash);
  }
  // Keyed containers: equal contents in another order (unordered_map) are equal.
  if (node.kind == NodeKind::Set || node.kind == NodeKind::Map) {
    std::sort(words.begin() + static_cast<std::ptrdiff_t>(first), words.end());
  }
  words.push_back(words.size() - first);
}

std::uint64_t hash_node(const GraphData& g, std::uint32_t n, std::vector<std::uint64_t>& words) {
  const Node& node = g.nodes[n];
  words.clear();
  const bool reference = node.is_reference();
  words.push_back(static_cast<std::uint64_t>(node.kind) | static_cast<std::uint64_t>(node.tag) << 8 |
                  static_cast<std::uint64_t>(reference) << 16);
  words.push_back(g.type_hash_of(n));
  if (reference) {
    append_reference_words(g, n, words);
  } else if (node.kind == NodeKind::Value) {
    const std::string_view value = g.value_of(n);
    words.push_back(value.size());
    words.push_back(hash_bytes(value));
  } else {
    append_children_words(g, n, words);
  }
  return XXH3_64bits(words.data(), words.size() * sizeof(std::uint64_t));
}

}  // namespace

void compute_hashes(GraphData& g) {
  std::vector<std::uint64_t> words;
  // The smallest reference target in each subtree, to flag those that
  // refer outside themselves.
  std::vector<std::uint32_t> min_ref(g.nodes.size(), kNoIndex);
  // Reverse preorder visits every child before its parent.
  for (std::size_t i = g.nodes.size(); i-- > 0;) {
    const auto n = static_cast<std::uint32_t>(i);
    Node& node = g.nodes[n];
    min_ref[n] = std::min(min_ref[n], node.ref());
    if (min_ref[n] < n) node.flags |= Node::kEscapes;
    node.hash = hash_node(g, n, words);
    if (node.parent != kNoIndex) min_ref[node.parent] = std::min(min_ref[node.parent], min_ref[n]);
  }
}

std::uint32_t GraphBuilder::new_node(const char* name, const TypeEntry& type, NodeKind kind) {
  if (data_.nodes.size() >= kNoIndex - 1) {
    throw UnsupportedValue("graph: more than 4294967294 nodes in one value");
  }
  const auto index = static_cast<std::uint32_t>(data_.nodes.size());
  Node node;
  node.kind = kind;
  node.name = intern_name(name);
  node.type = intern_type(type);
  if (!stack_.empty()) {
    Frame& parent = stack_.back();
    node.parent = parent.node;
    node.ordinal = parent.child_count++;
    parent.last_child = index;
  } else if (!data_.nodes.empty()) {
    throw UnsupportedValue("graph: an archive holds one value; save a struct of several instead");
  }
  data_.nodes.push_back(node);
  return index;
}

std::uint32_t GraphBuilder::intern_name(const char* name) {
  if (name == nullptr || *name == '\0') return kNoIndex;
  // NVP names are mostly literals: a cache by address, checked by content
  // since a name built at run time may reuse an address.
  NameSlot& slot = name_cache_[(reinterpret_cast<std::uintptr_t>(name) >> 3) % name_cache_.size()];
  if (slot.address == name && data_.names[slot.index] == name) return slot.index;
  const std::string_view text{name};
  auto found = name_index_.find(text);
  std::uint32_t index;
  if (found != name_index_.end()) {
    index = found->second;
  } else {
    index = static_cast<std::uint32_t>(data_.names.size());
    data_.names.emplace_back(text);
    data_.name_hashes.push_back(hash_bytes(text));
    name_index_.emplace(std::string{text}, index);
  }
  slot = NameSlot{name, index};
  return index;
}

std::uint16_t GraphBuilder::intern_type(const TypeEntry& type) {
  if (type.id >= type_index_.size()) type_index_.resize(type.id + 1, kNoIndex);
  std::uint32_t& index = type_index_[type.id];
  if (index == kNoIndex) {
    if (data_.types.size() > std::numeric_limits<std::uint16_t>::max()) {
      throw UnsupportedValue("graph: more than 65536 distinct types in one value");
    }
    index = static_cast<std::uint32_t>(data_.types.size());
    data_.types.push_back(type.name);
    data_.type_hashes.push_back(hash_bytes(type.name));
  }
  return static_cast<std::uint16_t>(index);
}

std::uint32_t GraphBuilder::append_value(std::string_view bytes) {
  if (data_.values.size() + bytes.size() > std::numeric_limits<std::uint32_t>::max()) {
    throw UnsupportedValue("graph: more than 4 GiB of primitive values in one value");
  }
  const auto offset = static_cast<std::uint32_t>(data_.values.size());
  data_.values.append(bytes);
  return offset;
}

void GraphBuilder::open(const char* name, const TypeEntry& type, NodeKind kind, Absorb absorb) {
  const std::uint32_t index = new_node(name, type, kind);
  stack_.push_back(Frame{index, kNoIndex, kNoIndex, 0, absorb});
}

void GraphBuilder::close() {
  const Frame top = stack_.back();
  stack_.pop_back();
  data_.nodes[top.node].size = static_cast<std::uint32_t>(data_.nodes.size() - top.node);
  // Boost numbers a pointee before saving it through its pointer; the
  // pointee is the pointer's last child (after any save_construct_data).
  if (top.pending_oid != kNoIndex && top.last_child != kNoIndex) set_oid_node(top.pending_oid, top.last_child);
}

void GraphBuilder::add_scalar(const char* name, const TypeEntry& type, ValueTag tag, std::uint64_t bits) {
  Node& node = data_.nodes[new_node(name, type, NodeKind::Value)];
  node.tag = tag;
  node.flags |= Node::kInlineValue;
  for (std::size_t i = 0; i < node.payload.size(); ++i) node.payload[i] = static_cast<char>(bits >> (8 * i) & 0xff);
}

void GraphBuilder::add_bytes(const char* name, const TypeEntry& type, ValueTag tag, std::string_view bytes) {
  const std::uint32_t offset = append_value(bytes);
  Node& node = data_.nodes[new_node(name, type, NodeKind::Value)];
  node.tag = tag;
  node.set_payload_word(0, offset);
  node.set_payload_word(1, static_cast<std::uint32_t>(bytes.size()));
}

void GraphBuilder::set_bytes(ValueTag tag, std::string_view bytes) {
  if (stack_.empty()) return;
  const std::uint32_t offset = append_value(bytes);
  Node& node = data_.nodes[stack_.back().node];
  node.kind = NodeKind::Value;
  node.tag = tag;
  node.set_payload_word(0, offset);
  node.set_payload_word(1, static_cast<std::uint32_t>(bytes.size()));
}

void GraphBuilder::note_count() {
  if (stack_.empty()) return;
  Node& node = data_.nodes[stack_.back().node];
  if (node.kind == NodeKind::Struct) node.kind = NodeKind::Sequence;
}

void GraphBuilder::note_object_id(std::uint32_t oid) {
  if (stack_.empty()) return;
  Frame& top = stack_.back();
  if (data_.nodes[top.node].kind == NodeKind::Pointer) {
    top.pending_oid = oid;
  } else {
    set_oid_node(oid, top.node);
  }
}

void GraphBuilder::note_reference(std::uint32_t oid) {
  if (stack_.empty()) return;
  const std::uint32_t node = stack_.back().node;
  data_.nodes[node].flags |= Node::kReference;
  data_.nodes[node].set_payload_word(0, oid);
  reference_nodes_.push_back(node);
}

bool GraphBuilder::absorbs(Absorb what) const noexcept {
  if (stack_.empty() || stack_.back().absorb != what) return false;
  return stack_.back().child_count == 0 && !data_.nodes[stack_.back().node].is_reference();
}

void GraphBuilder::set_oid_node(std::uint32_t oid, std::uint32_t node) {
  if (oid >= oid_nodes_.size()) oid_nodes_.resize(oid + 1, kNoIndex);
  oid_nodes_[oid] = node;
}

void GraphBuilder::resolve_references() {
  for (std::uint32_t n : reference_nodes_) {
    const std::uint32_t oid = data_.nodes[n].payload_word(0);
    const std::uint32_t target = oid < oid_nodes_.size() ? oid_nodes_[oid] : kNoIndex;
    // Boost refers only to objects saved earlier; anything else would break
    // the preorder invariants the diff relies on.
    if (target == kNoIndex || target >= n) {
      throw UnsupportedValue("graph: the archive referred to an object it had not saved");
    }
    data_.nodes[n].set_payload_word(0, target);
  }
}

std::shared_ptr<const GraphData> GraphBuilder::finish() {
  if (data_.nodes.empty()) throw UnsupportedValue("graph: nothing was saved");
  if (!stack_.empty()) throw UnsupportedValue("graph: finish() inside an unfinished save");
  resolve_references();
  compute_hashes(data_);
  return std::make_shared<const GraphData>(std::move(data_));
}

}  // namespace shmsession::graph::detail
