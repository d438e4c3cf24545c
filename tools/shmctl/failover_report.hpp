// A store's failover state (Replica::failover_state) and replication
// bound (Store::replication_bound) as `shmctl info`, `promote`, `demote`
// and `bound` print them.
//
// Thread safety: pure formatting.
#pragma once

#include <string>

#include <boost/json/object.hpp>

#include "shm/replica.hpp"
#include "tools/shmctl/output.hpp"

namespace shmsession::shmctl {

// "epoch", "state" (serving, promoted, fenced by N) and "promoted from".
void add_failover_fields(FieldList& fields, const FailoverState& failover);
// {"epoch", "promoted", "fenced_by", "promoted_from": {store_id, applied_seq} or null}
void add_failover_json(boost::json::object& doc, const FailoverState& failover);
// "off", or "lag above 500ms: writes wait 200ms, then fail (ReplicaBehind)".
std::string format_bound(const ReplicationBound& bound);

}  // namespace shmsession::shmctl
