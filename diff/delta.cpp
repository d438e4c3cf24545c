// value_checksum, make_delta and apply_delta; the frame codec is in
// delta_codec.cpp.
#include "diff/delta.hpp"

#include <xxhash.h>

#include <algorithm>

#include "diff/binary_diff.hpp"
#include "diff/error.hpp"

namespace shmsession::diff {
namespace {

using Kind = AttributeChange::Kind;
using Attribute = AttributeMap::value_type;

[[noreturn]] void corrupt(const AttributeChange& change, const std::string& message) {
  throw CorruptInput("delta: attribute '" + change.name + "': " + message);
}

void check_names(const SessionDelta& delta, const DeltaLimits& limits) {
  if (delta.changes.size() > limits.max_changes)
    throw RefusedInput("delta: " + std::to_string(delta.changes.size()) + " changes exceed the limit of " +
                       std::to_string(limits.max_changes));
  std::vector<std::string_view> names;
  names.reserve(delta.changes.size());
  for (const AttributeChange& change : delta.changes) names.push_back(change.name);
  std::sort(names.begin(), names.end());
  const auto same = std::adjacent_find(names.begin(), names.end());
  if (same != names.end()) throw RefusedInput("delta: attribute '" + std::string(*same) + "' changes twice");
}

// The value a Put or Patch produces, its checksum verified.
std::string resulting_value(const AttributeMap& attrs, const AttributeChange& change, const DeltaLimits& limits) {
  std::string value;
  if (change.kind == Kind::Put) {
    if (change.bytes.size() > limits.max_value_bytes)
      throw RefusedInput("delta: value of '" + change.name + "' exceeds the limit of " +
                         std::to_string(limits.max_value_bytes) + " bytes");
    value = change.bytes;
  } else {
    const auto base = attrs.find(change.name);
    if (base == attrs.end()) corrupt(change, "patch for an attribute the base does not have");
    try {
      value = apply_patch(base->second.first, change.bytes, limits.max_value_bytes);
    } catch (const CorruptInput& e) {
      corrupt(change, e.what());
    }
  }
  if (value_checksum(value) != change.checksum)
    corrupt(change, change.kind == Kind::Put ? "checksum mismatch: the value is damaged"
                                             : "checksum mismatch after the patch: the base is not its benchmark");
  return value;
}

}  // namespace

std::uint64_t value_checksum(std::string_view value) noexcept { return XXH3_64bits(value.data(), value.size()); }

AttributeChange make_change(std::string_view name, const std::string* base, std::string_view bytes,
                            std::uint32_t flags) {
  AttributeChange change{std::string(name), Kind::Put, std::string(bytes), flags, value_checksum(bytes)};
  if (base == nullptr) return change;
  std::string patch = make_patch(*base, change.bytes);
  if (patch.size() < change.bytes.size()) {
    change.kind = Kind::Patch;
    change.bytes = std::move(patch);
  }
  return change;
}

SessionDelta make_delta(std::string_view session_id, std::uint64_t base_version, std::uint64_t new_version,
                        const AttributeMap& base, const AttributeMap& target) {
  SessionDelta delta{std::string(session_id), base_version, new_version, {}};
  auto b = base.begin();
  auto t = target.begin();
  while (b != base.end() || t != target.end()) {
    if (t == target.end() || (b != base.end() && b->first < t->first)) {
      delta.changes.push_back(AttributeChange{b->first, Kind::Remove, {}, 0, 0});
      ++b;
    } else if (b == base.end() || t->first < b->first) {
      delta.changes.push_back(make_change(t->first, nullptr, t->second.first, t->second.second));
      ++t;
    } else {
      if (b->second != t->second)
        delta.changes.push_back(make_change(t->first, &b->second.first, t->second.first, t->second.second));
      ++b;
      ++t;
    }
  }
  return delta;
}

void apply_delta(AttributeMap& attrs, const SessionDelta& delta, const DeltaLimits& limits) {
  check_names(delta, limits);
  // Everything that can throw happens before `attrs` is touched: new values
  // are built in `staged`, whose nodes are then moved in without allocating.
  AttributeMap staged;
  std::vector<AttributeMap::iterator> removed;
  for (const AttributeChange& change : delta.changes) {
    if (change.kind == Kind::Remove) {
      const auto it = attrs.find(change.name);
      if (it == attrs.end()) corrupt(change, "removal of an attribute the base does not have");
      removed.push_back(it);
    } else if (change.kind == Kind::Put || change.kind == Kind::Patch) {
      staged.emplace(change.name, std::pair(resulting_value(attrs, change, limits), change.flags));
    } else {
      throw RefusedInput("delta: attribute '" + change.name + "' has an unknown change kind");
    }
  }
  for (const auto it : removed) attrs.erase(it);
  while (!staged.empty()) {
    auto node = staged.extract(staged.begin());
    const auto it = attrs.find(node.key());
    if (it != attrs.end()) {
      it->second = std::move(node.mapped());
    } else {
      attrs.insert(std::move(node));
    }
  }
}

}  // namespace shmsession::diff
