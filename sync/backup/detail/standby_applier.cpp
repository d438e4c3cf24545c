#include "sync/backup/detail/standby_applier.hpp"
#include "shm/replica.hpp"

#include <vector>

#include "sync/detail/foreign_errors.hpp"

namespace shmsession::sync::detail {

StandbyApplier::Outcome StandbyApplier::apply(const Outgoing& item) {
  if (item.kind == Outgoing::Kind::Removal) {
    Replica(target()).remove(item.delta.session_id);
    return Outcome::Applied;
  }
  return apply_delta(item);
}

StandbyApplier::Outcome StandbyApplier::apply_delta(const Outgoing& item) {
  const diff::SessionDelta& d = item.delta;
  std::optional<SessionSnapshot> current = target().peek(d.session_id);
  const bool from_empty = d.base_version == 0;
  if (!from_empty && (!current || current->version != d.base_version)) return Outcome::NeedFull;
  diff::AttributeMap attrs;
  if (current && !from_empty)
    for (const Attribute& a : current->attributes) attrs.emplace(a.name, std::make_pair(a.value, a.flags));
  try {
    // Verifies every resulting checksum; all or nothing.
    detail::with_store_errors([&] { diff::apply_delta(attrs, d); });
  } catch (const Error& e) {
    if (e.code() == Errc::Corrupt) return Outcome::NeedFull;
    throw;
  }
  // A full copy not newer than what the standby holds is of a re-created
  // session (versions restart): drop the old incarnation first.
  if (from_empty && current && current->version >= d.new_version) {
    Replica(target()).remove(d.session_id);  // a full copy of an older incarnation: start over
    current.reset();
  }
  CommitBatch batch;
  if (from_empty) {  // the whole session: everything it has, nothing it lacks
    for (const auto& [name, value] : attrs) batch.put(name, value.first, value.second);
    if (current)
      for (const Attribute& a : current->attributes)
        if (!attrs.contains(a.name)) batch.remove(a.name);
  } else {  // only what changed, so attribute versions follow the primary's
    for (const diff::AttributeChange& c : d.changes) {
      if (c.kind == diff::AttributeChange::Kind::Remove) {
        batch.remove(c.name);
      } else {
        const auto& value = attrs.at(c.name);
        batch.put(c.name, value.first, value.second);
      }
    }
  }
  std::optional<std::uint64_t> base = current ? std::optional<std::uint64_t>(current->version) : std::nullopt;
  try {
    return Replica(target()).apply(d.session_id, base, d.new_version, batch, item.idle_timeout_s) ? Outcome::Applied
                                                                                                  : Outcome::NeedFull;
  } catch (const Error&) {
    // Replica::apply creates an absent session before committing to it: a
    // refused commit (SegmentFull, a name the store refuses) must not leave
    // an empty session behind.
    if (!current) Replica(target()).remove(d.session_id);
    throw;
  }
}

void StandbyApplier::begin_full() {
  draft_.reset();  // an unfinished one before: removed
  draft_.emplace(Replica(standby_).begin_resync());
}

void StandbyApplier::end_full(const ReplicaPosition& position) {
  if (!draft_) throw Error(Errc::InvalidArgument, "no full resync began");
  ResyncDraft draft = std::move(*draft_);
  draft_.reset();
  draft.publish(position);
}

}  // namespace shmsession::sync::detail
