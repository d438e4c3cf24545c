// Failing over: promote a standby in place of its primary, demote (fence)
// a store that was superseded (README.md, "Failing over"); and bounding
// the replication lag applications may write under (`bound`).
#include <ostream>
#include <string>

#include "tools/shmctl/commands.hpp"
#include "tools/shmctl/failover_report.hpp"

namespace shmsession::shmctl {

void add_failover_fields(FieldList& fields, const FailoverState& failover) {
  std::string state = failover.promoted ? "promoted" : "serving";
  if (failover.fenced_by != 0) {
    state = failover.fenced_by > failover.epoch
                ? "fenced (superseded by epoch " + std::to_string(failover.fenced_by) + "): takes no commits"
                : "fenced (demoted at epoch " + std::to_string(failover.fenced_by) + "): takes no commits";
  }
  fields.add("epoch", std::to_string(failover.epoch)).add("state", state);
  if (failover.promoted_from.follows_a_primary())
    fields.add("promoted from", failover.promoted_from.primary_store_id_hex() + " at seq " +
                                    std::to_string(failover.promoted_from.applied_seq));
}

void add_failover_json(boost::json::object& doc, const FailoverState& failover) {
  doc["epoch"] = failover.epoch;
  doc["promoted"] = failover.promoted;
  doc["fenced_by"] = failover.fenced_by;
  if (failover.promoted_from.follows_a_primary())
    doc["promoted_from"] = boost::json::object{{"store_id", failover.promoted_from.primary_store_id_hex()},
                                               {"applied_seq", failover.promoted_from.applied_seq}};
  else
    doc["promoted_from"] = nullptr;
}

std::string format_bound(const ReplicationBound& bound) {
  if (bound.max_lag_ms == 0) return "off";
  return "lag above " + std::to_string(bound.max_lag_ms) + "ms: writes wait " + std::to_string(bound.wait_ms) +
         "ms, then fail (ReplicaBehind)";
}

namespace {

void print_failover(const Options& options, const FailoverState& failover, std::ostream& out) {
  if (options.json) {
    boost::json::object doc{{"store", options.store}};
    add_failover_json(doc, failover);
    print_json(out, doc);
    return;
  }
  FieldList fields;
  fields.add("store", options.store);
  add_failover_fields(fields, failover);
  fields.print(out);
}

}  // namespace

void run_promote(const Options& options, std::ostream& out) {
  Store store = attach_store(options.store);
  const std::string what = "promote " + quote(options.store);
  run_step(what, [&] { return Replica(store).promote(); });
  print_failover(options, run_step(what, [&] { return Replica(store).failover_state(); }), out);
}

void run_demote(const Options& options, std::ostream& out) {
  Store store = attach_store(options.store);
  const std::string what = "demote " + quote(options.store);
  run_step(what, [&] { return Replica(store).fence(options.epoch); });
  print_failover(options, run_step(what, [&] { return Replica(store).failover_state(); }), out);
}

void run_bound(const Options& options, std::ostream& out) {
  Store store = attach_store(options.store);
  const std::string what = "bound replication of " + quote(options.store);
  if (options.max_lag_ms >= 0) {
    const ReplicationBound bound{static_cast<std::uint32_t>(options.max_lag_ms),
                                 static_cast<std::uint32_t>(options.bound_wait_ms)};
    if (bound.max_lag_ms == 0 && bound.wait_ms != 0)
      throw UsageError("--wait needs --max-lag above 0 (--max-lag 0 turns the bound off)");
    run_step(what, [&] { store.set_replication_bound(bound); });
  }
  const ReplicationBound bound = run_step(what, [&] { return store.replication_bound(); });
  const StoreStats stats = run_step(what, [&] { return store.stats(); });
  if (options.json) {
    print_json(out, boost::json::object{{"store", options.store},
                                        {"max_lag_ms", bound.max_lag_ms},
                                        {"wait_ms", bound.wait_ms},
                                        {"bound_waits", stats.bound_waits},
                                        {"bound_refusals", stats.bound_refusals}});
    return;
  }
  FieldList()
      .add("store", options.store)
      .add("replication bound", format_bound(bound))
      .add("bounded writes",
           std::to_string(stats.bound_waits) + " waited, " + std::to_string(stats.bound_refusals) + " refused")
      .print(out);
}

}  // namespace shmsession::shmctl
