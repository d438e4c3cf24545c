#include "sync/backup/delta_source.hpp"

#include <set>

namespace shmsession::sync {
namespace {

diff::AttributeMap attribute_map(const SessionSnapshot& snap) {
  diff::AttributeMap map;
  for (const Attribute& a : snap.attributes) map.emplace(a.name, std::make_pair(a.value, a.flags));
  return map;
}

std::uint64_t whole_size(const SessionSnapshot& snap) {
  std::uint64_t n = 0;
  for (const Attribute& a : snap.attributes) n += a.name.size() + a.value.size();
  return n;
}

}  // namespace

DeltaSource::DeltaSource(Store& primary) : primary_(primary), next_seq_(primary.stats().next_change_seq) {}

std::optional<Outgoing> DeltaSource::delta_for(const std::string& id) {
  std::optional<SessionSnapshot> snap = primary_.peek(id);
  auto known = benchmark_.find(id);
  if (!snap) {
    if (known == benchmark_.end()) return std::nullopt;  // created and gone before we looked
    Outgoing removal{Outgoing::Kind::Removal, {id, known->second.version, 0, {}}, 0};
    benchmark_.erase(known);
    return removal;
  }
  Benchmark& bench = benchmark_[id];
  if (bench.incarnation != snap->incarnation) bench = Benchmark{snap->incarnation, 0, {}};  // removed and re-created
  else if (known != benchmark_.end() && bench.version == snap->version) return std::nullopt;  // already shipped
  diff::AttributeMap now = attribute_map(*snap);
  Outgoing out{Outgoing::Kind::Delta, diff::make_delta(id, bench.version, snap->version, bench.attributes, now),
               snap->idle_timeout_s};
  delta_bytes_ += diff::encode_delta(out.delta).size();
  whole_bytes_ += whole_size(*snap);
  bench.version = snap->version;
  bench.attributes = std::move(now);
  return out;
}

SourceBatch DeltaSource::poll(std::size_t max_entries) {
  ChangeBatch log = primary_.read_changes(next_seq_, max_entries);
  SourceBatch batch;
  if (log.fell_behind) {
    batch.full_resync = true;
    batch.next_seq = next_seq_;
    return batch;
  }
  std::set<std::string> seen;  // one delta per session per poll, in log order
  for (const ChangeEntry& e : log.entries)
    if (seen.insert(e.session_id).second)
      if (std::optional<Outgoing> out = delta_for(e.session_id)) batch.items.push_back(std::move(*out));
  next_seq_ = log.next_seq;
  batch.next_seq = next_seq_;
  return batch;
}

SourceBatch DeltaSource::snapshot() {
  SourceBatch batch;
  batch.next_seq = primary_.stats().next_change_seq;  // changes from here on are polled later
  benchmark_.clear();
  primary_.for_each_session([&](const SessionInfo& info) {
    if (std::optional<Outgoing> out = delta_for(info.id)) batch.items.push_back(std::move(*out));
    return true;
  });
  next_seq_ = batch.next_seq;
  return batch;
}

std::optional<Outgoing> DeltaSource::full_session(const std::string& id) {
  benchmark_.erase(id);
  if (std::optional<Outgoing> out = delta_for(id)) return out;
  return Outgoing{Outgoing::Kind::Removal, {id, 0, 0, {}}, 0};  // gone here: gone there too
}

}  // namespace shmsession::sync
