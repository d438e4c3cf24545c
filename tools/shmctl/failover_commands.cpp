// Failing over: promote a standby in place of its primary, demote (fence)
// a store that was superseded. The procedure: README.md, "Failing over".
#include <ostream>

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

}  // namespace shmsession::shmctl
