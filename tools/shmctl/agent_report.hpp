// The sync agent's status (AgentSeat::status) as people and programs
// read it: shared by `shmctl info` and `shmsession-agent status`.
//
// Thread safety: pure formatting; print_agent_report reads the store
// without locking (AgentSeat::status never blocks).
#pragma once

#include <iosfwd>

#include <boost/json/value.hpp>

#include "shm/agent_seat.hpp"
#include "shm/store.hpp"
#include "tools/shmctl/output.hpp"

namespace shmsession::shmctl {

// null when no agent ever ran on the store.
boost::json::value agent_json(const AgentStatus& agent, const StoreStats& stats);
// "agent", "agent lag", "agent shipped", "agent resyncs" (and "agent last
// error") lines; "agent  none" when no agent ever ran.
void add_agent_fields(FieldList& fields, const AgentStatus& agent, const StoreStats& stats);
// The store's agent section alone: the field list, or {"store", "agent"} as JSON.
// Only reads; a Store& because an AgentSeat is made from one.
void print_agent_report(std::ostream& out, Store& store, bool json);

}  // namespace shmsession::shmctl
