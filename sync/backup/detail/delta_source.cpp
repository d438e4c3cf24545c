#include "sync/backup/detail/delta_source.hpp"

#include <algorithm>
#include <set>

#include "diff/detail/byte_io.hpp"
#include "shm/change_feed.hpp"
#include "sync/backup/detail/replication_item.hpp"
#include "sync/detail/foreign_errors.hpp"

namespace shmsession::sync::detail {
namespace {

// The size of the session payload that would carry the whole session
// (every attribute as a Put, from base 0; its id in full), without building
// it: what whole-session replication in the same format would ship
// (wire_format.md, "Session payloads").
template <class Attributes>
std::uint64_t whole_size(const std::string& id, std::uint64_t version, std::uint32_t idle_timeout_s,
                         const Attributes& attributes) {
  using diff::detail::varint_size;
  std::uint64_t n = 1 + 1 + varint_size(id.size()) + id.size() + varint_size(version) + varint_size(idle_timeout_s) +
                    varint_size(attributes.size());
  for (const auto& [name, shipped] : attributes)
    n += varint_size(name.size()) + name.size() + 1 + varint_size(shipped.flags) + varint_size(shipped.bytes.size()) +
         shipped.bytes.size();
  return n;
}

}  // namespace

DeltaSource::DeltaSource(Store& primary) : primary_(primary), next_seq_(primary.stats().next_change_seq) {}

std::optional<Outgoing> DeltaSource::delta_for(const std::string& id) {
  auto known = benchmark_.find(id);
  // The benchmark's attribute versions: the store copies only the values
  // that moved since (the others come back with value_omitted).
  std::vector<KnownAttribute> held;
  SessionVersion seen;
  if (known != benchmark_.end()) {
    seen = {known->second.version, known->second.incarnation};
    held.reserve(known->second.attributes.size());
    for (const auto& [name, shipped] : known->second.attributes) held.push_back({name, shipped.version});
  }
  SessionSnapshot snap;
  bool present = false;
  try {
    present = primary_.peek_moved(id, seen, held, snap);
  } catch (const Error& e) {
    if (e.code() != Errc::Corrupt) throw;
    ++damaged_;
    last_damaged_ = e.what();
    return std::nullopt;  // the benchmark stays: the backup keeps the last good version
  }
  if (!present) {
    if (known == benchmark_.end() && complete_) return std::nullopt;  // created and gone before we looked
    if (known == benchmark_.end()) return Outgoing{Outgoing::Kind::Removal, {id, 0, 0, {}}, 0};
    Outgoing removal{Outgoing::Kind::Removal, {id, known->second.version, 0, {}}, 0};
    benchmark_.erase(known);
    return removal;
  }
  if (known != benchmark_.end() && SessionVersion{snap.version, snap.incarnation} == seen)
    return std::nullopt;  // already shipped
  static const Benchmark kEmpty;
  const bool same_incarnation = known != benchmark_.end() && known->second.incarnation == snap.incarnation;
  const Benchmark& before = same_incarnation ? known->second : kEmpty;  // re-created: from empty

  // The delta, against `before`, by name: every attribute is listed, the
  // values that did not move are omitted.
  std::sort(snap.attributes.begin(), snap.attributes.end(),
            [](const Attribute& a, const Attribute& b) { return a.name < b.name; });
  Outgoing out{Outgoing::Kind::Delta, {id, before.version, snap.version, {}}, snap.idle_timeout_s};
  std::vector<diff::AttributeChange>& changes = out.delta.changes;
  auto b = before.attributes.begin();
  for (const Attribute& now : snap.attributes) {
    for (; b != before.attributes.end() && b->first < now.name; ++b)
      changes.push_back({b->first, diff::AttributeChange::Kind::Remove, {}, 0, 0});
    const Shipped* base = b != before.attributes.end() && b->first == now.name ? &b->second : nullptr;
    if (base != nullptr) ++b;
    if (now.value_omitted) continue;  // the bytes and flags the backup has
    if (base != nullptr && base->bytes == now.value && base->flags == now.flags) continue;  // written again, same
    changes.push_back(diff::make_change(now.name, base != nullptr ? &base->bytes : nullptr, now.value, now.flags));
  }
  for (; b != before.attributes.end(); ++b)
    changes.push_back({b->first, diff::AttributeChange::Kind::Remove, {}, 0, 0});
  try {
    delta_bytes_ += session_payload_bytes(out.delta, out.idle_timeout_s);
  } catch (const Error& e) {
    // Over a frame cap (a session of more than 256 MiB of changes): the
    // backup keeps the last version that fitted; counted and reported.
    if (e.code() != Errc::InvalidArgument) throw;
    ++oversized_;
    last_oversized_ = id + ": " + e.what();
    return std::nullopt;
  }

  // Shipped: the benchmark becomes the session as it is now.
  Benchmark& bench = benchmark_[id];
  if (!same_incarnation) bench = Benchmark{snap.incarnation, 0, {}};
  bench.version = snap.version;
  auto kept = bench.attributes.begin();
  for (Attribute& now : snap.attributes) {
    while (kept != bench.attributes.end() && kept->first < now.name) kept = bench.attributes.erase(kept);
    if (kept == bench.attributes.end() || kept->first != now.name)
      kept = bench.attributes.emplace_hint(kept, now.name, Shipped{});
    if (!now.value_omitted) kept->second.bytes = std::move(now.value);
    kept->second.flags = now.flags;
    kept->second.version = now.version;
    ++kept;
  }
  bench.attributes.erase(kept, bench.attributes.end());
  whole_bytes_ += whole_size(id, snap.version, snap.idle_timeout_s, bench.attributes);
  return out;
}

SourceBatch DeltaSource::poll(std::size_t max_entries) {
  ChangeBatch log = ChangeFeed(primary_).read(next_seq_, max_entries);
  SourceBatch batch;
  if (log.fell_behind) {
    batch.full_resync = true;
    batch.next_seq = next_seq_;
    return batch;
  }
  // One delta per session per poll, in the order of the session's first
  // change; first_change[i] is that change's seq for items[i].
  std::set<std::string> seen;
  std::vector<std::uint64_t> first_change;
  for (const ChangeEntry& e : log.entries)
    if (seen.insert(e.session_id).second)
      if (std::optional<Outgoing> out = delta_for(e.session_id)) {
        batch.items.push_back(std::move(*out));
        first_change.push_back(e.seq);
      }
  next_seq_ = log.next_seq;
  batch.next_seq = next_seq_;
  for (std::size_t i = 0; i < batch.items.size(); ++i)
    batch.items[i].seq = i + 1 < batch.items.size() ? first_change[i + 1] : batch.next_seq;
  return batch;
}

void DeltaSource::resume(std::uint64_t seq, const std::vector<std::string>& forget) {
  for (const std::string& id : forget) benchmark_.erase(id);
  next_seq_ = seq;
  complete_ = false;
}

DeltaSource::SnapshotPlan DeltaSource::begin_snapshot() {
  SnapshotPlan plan;
  plan.seq = ChangeFeed(primary_).next_seq();  // changes from here on are polled later
  benchmark_.clear();
  complete_ = true;
  primary_.for_each_session([&](const SessionInfo& info) {
    plan.ids.push_back(info.id);
    return true;
  });
  next_seq_ = plan.seq;
  return plan;
}

std::optional<Outgoing> DeltaSource::snapshot_item(const std::string& id, std::uint64_t seq) {
  if (benchmark_.contains(id)) return std::nullopt;  // listed twice (a table grew meanwhile)
  std::optional<Outgoing> out = delta_for(id);
  if (out && out->kind == Outgoing::Kind::Removal) return std::nullopt;
  if (out) out->seq = seq;
  return out;
}

SourceBatch DeltaSource::snapshot() {
  SnapshotPlan plan = begin_snapshot();
  SourceBatch batch;
  batch.next_seq = plan.seq;
  for (const std::string& id : plan.ids)
    if (std::optional<Outgoing> out = snapshot_item(id, plan.seq)) batch.items.push_back(std::move(*out));
  return batch;
}

std::optional<Outgoing> DeltaSource::full_session(const std::string& id) {
  benchmark_.erase(id);
  if (std::optional<Outgoing> out = delta_for(id)) return out;
  return Outgoing{Outgoing::Kind::Removal, {id, 0, 0, {}}, 0, 0};  // gone here: gone there too
}

}  // namespace shmsession::sync::detail
