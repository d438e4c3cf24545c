// A store's failover state (Replica::failover_state) as `shmctl info`,
// `promote` and `demote` print it.
//
// Thread safety: pure formatting.
#pragma once

#include <boost/json/object.hpp>

#include "shm/replica.hpp"
#include "tools/shmctl/output.hpp"

namespace shmsession::shmctl {

// "epoch", "state" (serving, promoted, fenced by N) and "promoted from".
void add_failover_fields(FieldList& fields, const FailoverState& failover);
// {"epoch", "promoted", "fenced_by", "promoted_from": {store_id, applied_seq} or null}
void add_failover_json(boost::json::object& doc, const FailoverState& failover);

}  // namespace shmsession::shmctl
