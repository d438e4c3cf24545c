// Turns the event stream of a GraphOArchive into GraphData.
//
// The archive reports nodes as Boost walks the value: open/close for
// composites, add_value for primitives, and Boost's tracking records
// (object id on first save, object reference afterwards). Write-order object
// ids are used only while building: finish() replaces each by the index of
// the node first reached, so no id survives into the graph.
//
// Thread safety: one builder belongs to one archive and one thread.
#pragma once

#include "graph/detail/graph_data.hpp"
#include "graph/node_types.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace shmsession::graph::detail {

class GraphBuilder {
 public:
  // Opens a child of the open node (the root if none is open).
  // Throws: UnsupportedValue for a second root, more than 2^32-2 nodes
  // or more than 65536 types.
  void open(const char* name, const TypeEntry& type, NodeKind kind, Absorb absorb);
  void close();
  // A primitive child: 8 little-endian bytes of `bits`, or `bytes`.
  // Throws: as open(); UnsupportedValue past 4 GiB of values.
  void add_scalar(const char* name, const TypeEntry& type, ValueTag tag, std::uint64_t bits);
  void add_bytes(const char* name, const TypeEntry& type, ValueTag tag, std::string_view bytes);
  // The open node itself is a primitive (a user type of primitive level,
  // boost::serialization::binary_object).
  void set_bytes(ValueTag tag, std::string_view bytes);
  // The open node received a collection count: a sequence unless keyed.
  void note_count();
  void note_object_id(std::uint32_t oid);
  void note_reference(std::uint32_t oid);
  // Whether the open node takes over its next child as `what`.
  bool absorbs(Absorb what) const noexcept;

  // Requires: every open() closed. Resolves references and computes hashes.
  // Throws: UnsupportedValue if nothing was saved.
  std::shared_ptr<const GraphData> finish();

 private:
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view name) const noexcept { return std::hash<std::string_view>{}(name); }
  };
  struct Frame {
    std::uint32_t node;
    std::uint32_t pending_oid;  // a pointer's id, given to its pointee at close
    std::uint32_t last_child;
    std::uint32_t child_count;
    Absorb absorb;
  };

  std::uint32_t new_node(const char* name, const TypeEntry& type, NodeKind kind);
  std::uint32_t intern_name(const char* name);
  std::uint16_t intern_type(const TypeEntry& type);
  std::uint32_t append_value(std::string_view bytes);
  void set_oid_node(std::uint32_t oid, std::uint32_t node);
  void resolve_references();

  GraphData data_;
  std::vector<Frame> stack_;
  std::vector<std::uint32_t> oid_nodes_;        // Boost object id -> node
  std::vector<std::uint32_t> reference_nodes_;  // their payload holds an id until finish()
  struct NameSlot {
    const char* address = nullptr;
    std::uint32_t index = 0;
  };
  std::unordered_map<std::string, std::uint32_t, NameHash, std::equal_to<>> name_index_;
  std::array<NameSlot, 64> name_cache_{};
  std::vector<std::uint32_t> type_index_;  // TypeEntry::id -> index in data_.types
};

// Computes every node's hash and kEscapes flag (see graph_data.hpp).
void compute_hashes(GraphData& data);

}  // namespace shmsession::graph::detail
