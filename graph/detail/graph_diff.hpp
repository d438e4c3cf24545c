// The walk behind graph::diff: compares two graphs node by node from their
// roots and reports the paths that differ.
//
// Pairing: members by name, sequence elements by alignment on subtree
// hashes, set and map entries by key hash. A pair whose subtrees hash equal
// and refer to nothing outside themselves is skipped as a whole (O(1)).
// References are checked after the walk, when every pairing is known: a
// reference is unchanged iff the counterpart of its old target is its new
// target, whichever indices either has.
//
// Thread safety: one GraphDiff per call; it only reads the graphs.
#pragma once

#include "graph/detail/graph_data.hpp"
#include "graph/object_graph.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace shmsession::graph::detail {

class GraphDiff {
 public:
  // Requires: both graphs non-empty; they outlive the GraphDiff.
  GraphDiff(const GraphData& before, const GraphData& after, std::string_view root_name);
  // Throws: std::bad_alloc.
  std::vector<Change> run();

 private:
  struct SkippedRange {
    std::uint32_t before;
    std::uint32_t after;
    std::uint32_t size;
  };
  struct PendingReference {
    std::uint32_t before;
    std::uint32_t after;
    std::string path;
  };

  void compare(std::uint32_t a, std::uint32_t b);
  bool headers_differ(std::uint32_t a, std::uint32_t b) const;
  void compare_child(std::uint32_t a, std::uint32_t b);
  void compare_members(std::uint32_t a, std::uint32_t b);
  void compare_by_position(std::uint32_t a, std::uint32_t b);
  void compare_sequence(std::uint32_t a, std::uint32_t b);
  void compare_keyed(std::uint32_t a, std::uint32_t b);
  bool same_member(std::uint32_t a, std::uint32_t b) const;
  void report(ChangeKind kind);
  void report_child(ChangeKind kind, const GraphData& g, std::uint32_t child);
  void check_references();
  std::uint32_t counterpart(std::uint32_t a) const;

  const GraphData& before_;
  const GraphData& after_;
  std::string path_;
  std::vector<Change> changes_;
  std::vector<std::uint32_t> match_;  // before node -> after node, for nodes walked into
  std::vector<SkippedRange> skipped_;
  std::vector<PendingReference> references_;
};

}  // namespace shmsession::graph::detail
