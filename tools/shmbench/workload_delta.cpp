#include "tools/shmbench/workload_delta.hpp"

#include <algorithm>
#include <chrono>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "diff/binary_diff.hpp"
#include "diff/delta.hpp"
#include "graph/object_graph.hpp"
#include "sync/attribute_codec.hpp"
#include "tools/shmbench/session_objects.hpp"
#include "tools/shmbench/session_shape.hpp"

namespace shmsession::bench {

// The helpers in a namespace of their own: the other workloads, compiled in
// the same unity batch, have helpers of the same names.
namespace delta_workload {
namespace {

constexpr std::string_view kName = "delta";
constexpr std::size_t kLargeValueBytes = std::size_t{1} << 20;
constexpr std::size_t kListOrders = 1000;
constexpr std::size_t kScatteredEdits = 100;
constexpr std::size_t kCartItems = 20;  // as the cycle workload's cart

struct DeltaConfig {
  std::chrono::duration<double> budget{0};  // of each timed measurement
  std::uint64_t seed = 0;
};

DeltaConfig delta_config(const RunOptions& options) {
  return {std::chrono::duration<double>(options.quick ? 0.05 : 0.5), options.seed};
}

// One edit: the attribute before and after, and how many paths an object
// graph diff should report for it.
template <class T>
struct Edit {
  std::string scenario;
  std::string attribute;
  T before;
  T after;
  std::size_t expected_changes = 1;
};

template <class T>
std::string encoded(const T& value) {
  return sync::encode_attribute(value);
}

// Seconds per call of f, over at least 3 calls and at least `budget`.
template <class F>
double seconds_per_call(F&& f, std::chrono::duration<double> budget) {
  const auto start = std::chrono::steady_clock::now();
  std::uint64_t calls = 0;
  std::chrono::duration<double> elapsed{0};
  do {
    f();
    ++calls;
    elapsed = std::chrono::steady_clock::now() - start;
  } while (calls < 3 || elapsed < budget);
  return elapsed.count() / static_cast<double>(calls);
}

double mb_per_s(std::size_t bytes, double seconds) { return static_cast<double>(bytes) / 1e6 / seconds; }

std::uint64_t frame_bytes(std::string_view attribute, const std::string& base, const std::string& target) {
  diff::AttributeMap before;
  diff::AttributeMap after;
  before.emplace(std::string(attribute), std::make_pair(base, std::uint32_t{0}));
  after.emplace(std::string(attribute), std::make_pair(target, std::uint32_t{0}));
  return diff::encode_delta(diff::make_delta(session_id(0), 1, 2, before, after)).size();
}

void measure_patch(DeltaRow& row, const std::string& base, const std::string& target, const DeltaConfig& config) {
  std::string patch = diff::make_patch(base, target);
  if (diff::apply_patch(base, patch) != target)
    throw std::runtime_error(row.scenario + ": apply_patch(old, make_patch(old, new)) is not the new value");
  row.patch_bytes = patch.size();
  row.method = std::string(diff::patch_method_name(diff::patch_method(patch)));
  const double make_s = seconds_per_call([&] { patch = diff::make_patch(base, target); }, config.budget);
  std::string applied;
  const double apply_s = seconds_per_call([&] { applied = diff::apply_patch(base, patch); }, config.budget);
  row.diff_mb_per_s = mb_per_s(target.size(), make_s);
  row.apply_mb_per_s = mb_per_s(target.size(), apply_s);
}

template <class T>
void measure_graph(DeltaRow& row, const Edit<T>& edit, const DeltaConfig& config) {
  const graph::ObjectGraph benchmark = graph::build_graph(edit.before);  // cached by a client
  std::vector<graph::Change> changes;
  const double seconds = seconds_per_call(
      [&] { changes = graph::diff(benchmark, graph::build_graph(edit.after), edit.attribute); }, config.budget);
  row.graph_changes = changes.size();
  if (!changes.empty()) {
    std::ostringstream first;
    first << changes.front();
    row.graph_first_path = first.str();
  }
  row.graph_ms = seconds * 1e3;
}

template <class T>
DeltaRow measure_edit(const Edit<T>& edit, const DeltaConfig& config, BenchReport& report) {
  const std::string base = encoded(edit.before);
  const std::string target = encoded(edit.after);
  DeltaRow row;
  row.scenario = edit.scenario;
  row.whole_bytes = target.size();
  row.frame_bytes = frame_bytes(edit.attribute, base, target);
  measure_patch(row, base, target, config);
  measure_graph(row, edit, config);
  if (row.graph_changes != edit.expected_changes)
    report.notes.push_back(edit.scenario + ": graph::diff reported " + std::to_string(row.graph_changes) +
                           " changed paths, the edit made " + std::to_string(edit.expected_changes));
  return row;
}

// --- the edits ----------------------------------------------------------------

// An order history of about `bytes` encoded bytes.
OrderHistory history_of_about(std::uint64_t seed, std::size_t bytes) {
  constexpr std::size_t kSample = 256;
  const double per_order = static_cast<double>(encoded(make_history(seed, kSample)).size()) / kSample;
  return make_history(seed, static_cast<std::size_t>(static_cast<double>(bytes) / per_order));
}

Edit<OrderHistory> one_field(const OrderHistory& history) {
  Edit<OrderHistory> edit{"one field in a 1 MiB attribute", "history", history, history};
  edit.after.orders[history.orders.size() / 2].total_cents += 150;
  return edit;
}

Edit<OrderHistory> scattered(const OrderHistory& history, std::uint64_t seed) {
  Edit<OrderHistory> edit{"100 scattered edits in it", "history", history, history, kScatteredEdits};
  std::vector<std::size_t> picks(history.orders.size());
  std::iota(picks.begin(), picks.end(), std::size_t{0});
  SplitMix64 random(seed);
  for (std::size_t i = 0; i < kScatteredEdits; ++i)  // a partial Fisher-Yates: distinct orders
    std::swap(picks[i], picks[i + random.below(picks.size() - i)]);
  for (std::size_t i = 0; i < kScatteredEdits; ++i) {
    Order& order = edit.after.orders[picks[i]];
    if (i % 2 == 0)
      order.total_cents += 1 + static_cast<std::int64_t>(random.below(1000));
    else
      order.lines.front().qty = order.lines.front().qty % 9 + 1;
  }
  return edit;
}

Edit<OrderHistory> string_grown(const OrderHistory& history) {
  Edit<OrderHistory> edit{"a string in it grown by one byte", "history", history, history};
  edit.after.orders[history.orders.size() / 2].ship_to += 'a';
  return edit;
}

Edit<OrderHistory> inserted_at_front(std::uint64_t seed) {
  OrderHistory history = make_history(seed, kListOrders);
  Edit<OrderHistory> edit{"an object inserted at the front of a list of 1,000", "history", history, history};
  edit.after.orders.insert(edit.after.orders.begin(), make_order(seed ^ 0x5eed));
  return edit;
}

Edit<Cart> small_cart(std::uint64_t seed) {
  const Cart cart = make_cart(seed, kCartItems);
  Edit<Cart> edit{"one field in the cycle workload's cart", "cart", cart, cart};
  change_one_quantity(edit.after, 7);
  return edit;
}

// --- the report -----------------------------------------------------------------

void describe(BenchReport& report, const DeltaConfig& config, const OrderHistory& large) {
  report.description =
      "bytes sent to replicate one edit of one attribute: the whole value (whole-attribute replication, "
      "as Tomcat's DeltaManager and WildFly) beside shmsession's patch and delta frame; make_patch and "
      "apply_patch speed; the object-graph diff's changed paths";
  report.peer = "whole-attribute replication (Tomcat DeltaManager, WildFly)";
  report.peer_origin = "computed: the size of the whole new value; no server runs";
  report.parameters = {{"large_value_bytes", encoded(large).size()},
                       {"large_value_orders", large.orders.size()},
                       {"list_orders", kListOrders},
                       {"scattered_edits", kScatteredEdits},
                       {"budget_s", config.budget.count()},
                       {"seed", config.seed}};
}

void add_notes(BenchReport& report) {
  report.notes.push_back(
      "whole = the new value in our encoding (Boost binary archive); Java serialization of the same objects, "
      "as Tomcat and WildFly send them, carries class descriptors and is larger, so whole/patch is a lower "
      "bound");
  report.notes.push_back(
      "no peer server runs in this workload: whole-attribute replication sends the whole value, so its figure "
      "is computed, not measured");
  report.notes.push_back(
      "frame = diff::encode_delta of a one-change session delta (id " + session_id(0) +
      "): header, versions, attribute name, flags, checksums and the patch (or the value if smaller)");
  report.notes.push_back(
      "graph ms = build_graph(new value) + graph::diff against the cached graph of the old one, per call");
}

}  // namespace
}  // namespace delta_workload

BenchReport run_delta(const RunOptions& options) {
  using namespace delta_workload;
  BenchReport report = start_report(kName, options);
  const DeltaConfig config = delta_config(options);
  progress(options, kName, "building the values");
  const OrderHistory large = history_of_about(config.seed, kLargeValueBytes);
  describe(report, config, large);

  const auto measure = [&](const auto& edit) {
    progress(options, kName, edit.scenario);
    report.deltas.push_back(measure_edit(edit, config, report));
  };
  measure(one_field(large));
  measure(scattered(large, config.seed));
  measure(string_grown(large));
  measure(inserted_at_front(config.seed ^ 1));
  measure(small_cart(config.seed ^ 2));
  add_notes(report);

  progress(options, kName, "done");
  return report;
}

}  // namespace shmsession::bench
