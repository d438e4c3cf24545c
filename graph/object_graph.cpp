#include "graph/object_graph.hpp"

#include "graph/detail/graph_diff.hpp"
#include "graph/detail/graph_text.hpp"

#include <ostream>
#include <utility>

namespace shmsession::graph {

ObjectGraph::ObjectGraph(std::shared_ptr<const detail::GraphData> data) noexcept : data_(std::move(data)) {}

std::uint64_t ObjectGraph::root_hash() const noexcept {
  return data_ && !data_->nodes.empty() ? data_->nodes.front().hash : 0;
}

std::size_t ObjectGraph::node_count() const noexcept { return data_ ? data_->nodes.size() : 0; }

std::string ObjectGraph::to_text() const { return data_ ? detail::graph_to_text(*data_) : std::string{}; }

std::string_view to_string(ChangeKind kind) noexcept {
  switch (kind) {
    case ChangeKind::Added:
      return "Added";
    case ChangeKind::Removed:
      return "Removed";
    case ChangeKind::Modified:
      return "Modified";
  }
  return "Unknown";
}

std::ostream& operator<<(std::ostream& out, ChangeKind kind) { return out << to_string(kind); }

std::ostream& operator<<(std::ostream& out, const Change& change) { return out << change.kind << ' ' << change.path; }

bool equivalent(const ObjectGraph& a, const ObjectGraph& b) {
  return a.node_count() == b.node_count() && a.root_hash() == b.root_hash();
}

std::vector<Change> diff(const ObjectGraph& before, const ObjectGraph& after, std::string_view root_name) {
  if (equivalent(before, after)) return {};
  if (before.empty()) return {Change{std::string{root_name}, ChangeKind::Added}};
  if (after.empty()) return {Change{std::string{root_name}, ChangeKind::Removed}};
  std::vector<Change> changes = detail::GraphDiff(*before.data_, *after.data_, root_name).run();
  // The hashes differ, so something does: never claim otherwise.
  if (changes.empty()) changes.push_back(Change{std::string{root_name}, ChangeKind::Modified});
  return changes;
}

}  // namespace shmsession::graph
