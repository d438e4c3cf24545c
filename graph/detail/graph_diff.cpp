#include "graph/detail/graph_diff.hpp"

#include "graph/detail/graph_text.hpp"
#include "graph/detail/sequence_alignment.hpp"

#include <algorithm>
#include <tuple>

namespace shmsession::graph::detail {
namespace {

// The node a keyed entry is matched by: a map entry's key, a set's element.
std::uint32_t key_node(const GraphData& g, std::uint32_t entry) {
  const Node& node = g.nodes[entry];
  const bool pair = g.nodes[node.parent].kind == NodeKind::Map && node.kind == NodeKind::Struct &&
                    !node.is_reference() && g.child_count(entry) == 2;
  return pair ? entry + 1 : entry;
}

struct KeyedEntry {
  std::uint64_t key_hash;
  std::uint32_t ordinal;
  std::uint32_t node;
};

std::vector<KeyedEntry> keyed_entries(const GraphData& g, std::uint32_t container) {
  std::vector<KeyedEntry> entries;
  for (std::uint32_t c : g.children(container))
    entries.push_back({g.nodes[key_node(g, c)].hash, g.nodes[c].ordinal, c});
  std::sort(entries.begin(), entries.end(), [](const KeyedEntry& x, const KeyedEntry& y) {
    return std::tie(x.key_hash, x.ordinal) < std::tie(y.key_hash, y.ordinal);
  });
  return entries;
}

std::vector<std::uint64_t> child_hashes(const GraphData& g, const std::vector<std::uint32_t>& children) {
  std::vector<std::uint64_t> hashes;
  hashes.reserve(children.size());
  for (std::uint32_t c : children) hashes.push_back(g.nodes[c].hash);
  return hashes;
}

// Appends a segment to a path and takes it off again at scope exit.
class PathScope {
 public:
  PathScope(std::string& path, const GraphData& g, std::uint32_t node) : path_(path), size_(path.size()) {
    append_segment(g, node, path);
  }
  ~PathScope() { path_.resize(size_); }
  PathScope(const PathScope&) = delete;
  PathScope& operator=(const PathScope&) = delete;

 private:
  std::string& path_;
  std::size_t size_;
};

}  // namespace

GraphDiff::GraphDiff(const GraphData& before, const GraphData& after, std::string_view root_name)
    : before_(before), after_(after), path_(root_name), match_(before.nodes.size(), kNoIndex) {}

std::vector<Change> GraphDiff::run() {
  compare(0, 0);
  check_references();
  return std::move(changes_);
}

bool GraphDiff::headers_differ(std::uint32_t a, std::uint32_t b) const {
  const Node& na = before_.nodes[a];
  const Node& nb = after_.nodes[b];
  return na.kind != nb.kind || na.tag != nb.tag || before_.type_hash_of(a) != after_.type_hash_of(b) ||
         before_.type_of(a) != after_.type_of(b) || before_.is_reference(a) != after_.is_reference(b);
}

void GraphDiff::compare(std::uint32_t a, std::uint32_t b) {
  const Node& na = before_.nodes[a];
  const Node& nb = after_.nodes[b];
  if (na.hash == nb.hash && na.size == nb.size && !before_.escapes(a) && !after_.escapes(b)) {
    skipped_.push_back({a, b, na.size});
    return;
  }
  match_[a] = b;
  if (headers_differ(a, b)) return report(ChangeKind::Modified);
  if (before_.is_reference(a)) {
    references_.push_back({a, b, path_});
    return;
  }
  switch (na.kind) {
    case NodeKind::Value:
      if (before_.value_of(a) != after_.value_of(b)) report(ChangeKind::Modified);
      return;
    case NodeKind::Struct:
      return compare_members(a, b);
    case NodeKind::Sequence:
      return compare_sequence(a, b);
    case NodeKind::Set:
    case NodeKind::Map:
      return compare_keyed(a, b);
    case NodeKind::Pointer:
    case NodeKind::Optional:
      // null / non-null, empty / set
      if (before_.child_count(a) != after_.child_count(b)) return report(ChangeKind::Modified);
      return compare_by_position(a, b);
  }
}

void GraphDiff::compare_child(std::uint32_t a, std::uint32_t b) {
  PathScope scope(path_, after_, b);
  compare(a, b);
}

bool GraphDiff::same_member(std::uint32_t a, std::uint32_t b) const {
  const bool named_a = before_.nodes[a].name != kNoIndex;
  const bool named_b = after_.nodes[b].name != kNoIndex;
  if (named_a != named_b) return false;
  if (!named_a) return before_.nodes[a].ordinal == after_.nodes[b].ordinal;
  return before_.name_hash_of(a) == after_.name_hash_of(b) && before_.name_of(a) == after_.name_of(b);
}

void GraphDiff::compare_members(std::uint32_t a, std::uint32_t b) {
  const std::vector<std::uint32_t> ca = before_.children(a);
  const std::vector<std::uint32_t> cb = after_.children(b);
  std::vector<bool> used(cb.size(), false);
  for (std::size_t i = 0; i < ca.size(); ++i) {
    // Members usually keep their order: try the same position first.
    std::size_t j = i < cb.size() && !used[i] && same_member(ca[i], cb[i]) ? i : cb.size();
    for (std::size_t k = 0; j == cb.size() && k < cb.size(); ++k) {
      if (!used[k] && same_member(ca[i], cb[k])) j = k;
    }
    if (j == cb.size()) {
      report_child(ChangeKind::Removed, before_, ca[i]);
      continue;
    }
    used[j] = true;
    compare_child(ca[i], cb[j]);
  }
  for (std::size_t j = 0; j < cb.size(); ++j) {
    if (!used[j]) report_child(ChangeKind::Added, after_, cb[j]);
  }
}

void GraphDiff::compare_by_position(std::uint32_t a, std::uint32_t b) {
  const std::vector<std::uint32_t> ca = before_.children(a);
  const std::vector<std::uint32_t> cb = after_.children(b);
  for (std::size_t i = 0; i < ca.size() && i < cb.size(); ++i) compare_child(ca[i], cb[i]);
}

void GraphDiff::compare_sequence(std::uint32_t a, std::uint32_t b) {
  const std::vector<std::uint32_t> ca = before_.children(a);
  const std::vector<std::uint32_t> cb = after_.children(b);
  const std::vector<std::uint64_t> ha = child_hashes(before_, ca);
  const std::vector<std::uint64_t> hb = child_hashes(after_, cb);
  for (const AlignmentStep& step : align_sequences(ha, hb)) {
    switch (step.op) {
      case AlignmentStep::Op::Pair:
        compare_child(ca[step.before], cb[step.after]);
        break;
      case AlignmentStep::Op::Removed:
        report_child(ChangeKind::Removed, before_, ca[step.before]);
        break;
      case AlignmentStep::Op::Added:
        report_child(ChangeKind::Added, after_, cb[step.after]);
        break;
    }
  }
}

void GraphDiff::compare_keyed(std::uint32_t a, std::uint32_t b) {
  const std::vector<KeyedEntry> ka = keyed_entries(before_, a);
  const std::vector<KeyedEntry> kb = keyed_entries(after_, b);
  std::vector<std::pair<std::uint32_t, std::uint32_t>> matched;  // (after node, before node or none)
  std::vector<std::uint32_t> removed;
  std::size_t i = 0;
  std::size_t j = 0;
  while (i < ka.size() || j < kb.size()) {
    if (j == kb.size() || (i < ka.size() && ka[i].key_hash < kb[j].key_hash)) {
      removed.push_back(ka[i++].node);
    } else if (i == ka.size() || kb[j].key_hash < ka[i].key_hash) {
      matched.emplace_back(kb[j++].node, kNoIndex);
    } else {
      matched.emplace_back(kb[j++].node, ka[i++].node);
    }
  }
  // Reported in container order: removals as in `before`, then the rest as in `after`.
  std::sort(removed.begin(), removed.end());
  std::sort(matched.begin(), matched.end());
  for (std::uint32_t node : removed) report_child(ChangeKind::Removed, before_, node);
  for (auto [after_node, before_node] : matched) {
    if (before_node == kNoIndex)
      report_child(ChangeKind::Added, after_, after_node);
    else
      compare_child(before_node, after_node);
  }
}

void GraphDiff::report(ChangeKind kind) { changes_.push_back(Change{path_, kind}); }

void GraphDiff::report_child(ChangeKind kind, const GraphData& g, std::uint32_t child) {
  PathScope scope(path_, g, child);
  report(kind);
}

std::uint32_t GraphDiff::counterpart(std::uint32_t a) const {
  if (match_[a] != kNoIndex) return match_[a];
  // Inside a skipped subtree the two sides have the same layout.
  auto after_start = std::upper_bound(skipped_.begin(), skipped_.end(), a,
                                      [](std::uint32_t x, const SkippedRange& r) { return x < r.before; });
  if (after_start == skipped_.begin()) return kNoIndex;
  const SkippedRange& range = *std::prev(after_start);
  return a - range.before < range.size ? range.after + (a - range.before) : kNoIndex;
}

void GraphDiff::check_references() {
  if (references_.empty()) return;
  std::sort(skipped_.begin(), skipped_.end(),
            [](const SkippedRange& x, const SkippedRange& y) { return x.before < y.before; });
  for (const PendingReference& reference : references_) {
    const std::uint32_t old_target = before_.ref_of(reference.before);
    const std::uint32_t new_target = after_.ref_of(reference.after);
    if (counterpart(old_target) != new_target) changes_.push_back(Change{reference.path, ChangeKind::Modified});
  }
}

}  // namespace shmsession::graph::detail
