#include "tools/shmctl/agent_report.hpp"
#include "shm/agent_seat.hpp"

#include <cstdio>
#include <ostream>

#include <boost/json/object.hpp>

namespace shmsession::shmctl {
namespace {

// Changes logged but not yet acknowledged by the backup (acked_seq is a
// position: the first sequence not acknowledged).
std::uint64_t agent_lag_changes(const AgentStatus& agent, const StoreStats& stats) {
  return stats.next_change_seq > agent.acked_seq ? stats.next_change_seq - agent.acked_seq : 0;
}

// The agent's own text (it comes from another process) on one line,
// unquoted, with anything outside printable ASCII escaped.
std::string agent_text(const std::string& text) {
  std::string quoted = quote(text);
  return quoted.substr(1, quoted.size() - 2);
}

// "streaming to 127.0.0.1:7001", "stopped", ...
std::string agent_activity(const AgentStatus& agent) {
  std::string activity(agent_state_name(agent.state));
  if (agent.backup.empty()) return activity;
  return activity + (agent.state == AgentState::Stopped ? ", backup " : " to ") + agent_text(agent.backup);
}

// "3.2%" of delta bytes over whole-session bytes; "n/a" before anything was shipped.
std::string delta_ratio(const AgentStatus& agent) {
  if (agent.whole_bytes == 0) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%",
                100.0 * static_cast<double>(agent.delta_bytes) / static_cast<double>(agent.whole_bytes));
  return buf;
}

}  // namespace

boost::json::value agent_json(const AgentStatus& agent, const StoreStats& stats) {
  if (agent.pid == 0) return nullptr;
  bool lossy = false;
  return boost::json::object{
      {"pid", agent.pid},
      {"alive", agent.alive},
      {"state", agent_state_name(agent.state)},
      {"backup", to_valid_utf8(agent.backup, &lossy)},
      {"last_error", to_valid_utf8(agent.last_error, &lossy)},
      {"started_unix_ms", agent.started_unix_ms},
      {"updated_unix_ms", agent.updated_unix_ms},
      {"connected_unix_ms", agent.connected_unix_ms},
      {"sent_seq", agent.sent_seq},
      {"acked_seq", agent.acked_seq},
      {"lag_changes", agent_lag_changes(agent, stats)},
      {"lag_ms", agent.lag_ms},
      {"frames_sent", agent.frames_sent},
      {"frames_per_s", agent.frames_per_s},
      {"wire_bytes", agent.wire_bytes},
      {"delta_bytes", agent.delta_bytes},
      {"whole_bytes", agent.whole_bytes},
      {"full_resyncs", agent.full_resyncs},
      {"partial_resyncs", agent.partial_resyncs},
      {"reconnects", agent.reconnects},
      {"resends", agent.resends},
  };
}

void add_agent_fields(FieldList& fields, const AgentStatus& agent, const StoreStats& stats) {
  if (agent.pid == 0) {
    fields.add("agent", "none");
    return;
  }
  fields
      .add("agent", "pid " + std::to_string(agent.pid) + (agent.alive ? " (running), " : " (not running), ") +
                        agent_activity(agent))
      .add("agent lag",
           std::to_string(agent_lag_changes(agent, stats)) + " changes, " + std::to_string(agent.lag_ms) + " ms")
      .add("agent shipped", std::to_string(agent.delta_bytes) + " delta bytes for " +
                                std::to_string(agent.whole_bytes) + " whole-session bytes (" + delta_ratio(agent) +
                                "), " + std::to_string(agent.frames_sent) + " frames, " +
                                std::to_string(agent.frames_per_s) + " frames/s")
      .add("agent resyncs", "full " + std::to_string(agent.full_resyncs) + ", partial " +
                                std::to_string(agent.partial_resyncs) + ", reconnects " +
                                std::to_string(agent.reconnects) + ", resends " + std::to_string(agent.resends));
  if (!agent.last_error.empty()) fields.add("agent last error", agent_text(agent.last_error));
}

void print_agent_report(std::ostream& out, Store& store, bool json) {
  const AgentStatus agent = AgentSeat(store).status();
  const StoreStats stats = store.stats();
  if (json) {
    print_json(out, boost::json::object{{"store", store.info().name}, {"agent", agent_json(agent, stats)}});
    return;
  }
  FieldList fields;
  fields.add("store", store.info().name);
  add_agent_fields(fields, agent, stats);
  fields.print(out);
}

}  // namespace shmsession::shmctl
