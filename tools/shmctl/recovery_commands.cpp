// Commands about crash recovery (shm/recovery.hpp, check_store and
// recover_store): check verifies a store and lists its problems; recover
// repairs what dead processes left and rebuilds a damaged store into a new
// generation.
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "shm/recovery.hpp"
#include "tools/shmctl/commands.hpp"
#include "tools/shmctl/output.hpp"

namespace shmsession::shmctl {
namespace {

boost::json::array json_strings(const std::vector<std::string>& items) {
  return boost::json::array(items.begin(), items.end());
}

// "2 ('a', 'b')": a count and the ids known, "(first: ...)" when the
// count is larger than the list.
std::string count_with_ids(std::uint64_t count, const std::vector<std::string>& ids) {
  std::string text = std::to_string(count);
  if (ids.empty()) return text;
  text += ids.size() < count ? " (first: " : " (";
  for (std::size_t i = 0; i < ids.size(); ++i) text += (i == 0 ? "" : ", ") + quote(ids[i]);
  return text + ")";
}

// --- check ---

boost::json::object check_json(const std::string& store, const CheckReport& r) {
  return {
      {"store", store},
      {"clean", r.clean()},
      {"generation", r.generation},
      {"moved", r.moved},
      {"sessions", r.sessions},
      {"attributes", r.attributes},
      {"damaged_sessions", r.damaged_sessions},
      {"damaged_ids", json_strings(r.damaged_ids)},
      {"broken_links", r.broken_links},
      {"damaged_lock_queues", r.damaged_lock_queues},
      {"damaged_lock_references", r.damaged_lock_references},
      {"damaged_lock_tables", r.damaged_lock_tables},
      {"lock_table_damage", json_strings(r.lock_table_damage)},
      {"lock_states", r.lock_states},
      {"shard_repairs", r.shard_repairs},
      {"miscounted_shards", r.miscounted_shards},
      {"damaged_spares", r.damaged_spares},
      {"dead_lock_holders", r.dead_lock_holders},
      {"dead_waiters", r.dead_waiters},
      {"dead_process_slots", r.dead_process_slots},
      {"allocator_ok", r.allocator_ok},
      {"index_ok", r.index_ok},
      {"unreferenced_bytes", r.unreferenced_bytes},
      {"problems", json_strings(r.problems)},
  };
}

FieldList check_fields(const std::string& store, const CheckReport& r) {
  FieldList fields;
  fields.add("store", store)
      .add("generation", std::to_string(r.generation) + (r.moved ? " (replaced by a newer generation)" : ""))
      .add("sessions verified", std::to_string(r.sessions))
      .add("attributes verified", std::to_string(r.attributes))
      .add("damaged sessions", count_with_ids(r.damaged_sessions, r.damaged_ids))
      .add("broken links", std::to_string(r.broken_links))
      .add("damaged lock queues", std::to_string(r.damaged_lock_queues))
      .add("damaged lock references", std::to_string(r.damaged_lock_references))
      .add("damaged lock tables", std::to_string(r.damaged_lock_tables))
      .add("lock states in use", std::to_string(r.lock_states))
      .add("shard locks repaired",
           std::to_string(r.shard_repairs) + (r.shard_repairs ? " (by this check, as any access would)" : ""))
      .add("miscounted shards", std::to_string(r.miscounted_shards))
      .add("dead processes", "lock holders " + std::to_string(r.dead_lock_holders) + ", waiters " +
                                 std::to_string(r.dead_waiters) + ", process slots " +
                                 std::to_string(r.dead_process_slots) +
                                 "; informational: the store clears them on its own")
      .add("allocator", r.allocator_ok ? "ok" : "unsound (mutex poisoned or free tree damaged)")
      .add("index", r.index_ok ? "ok" : "unusable")
      .add("unreferenced bytes",
           format_bytes(r.unreferenced_bytes) + "; informational: freed by `shmctl recover --rebuild`");
  if (r.clean()) {
    fields.add("result", "clean");
  } else {
    fields.add("result", std::to_string(r.problems.size()) + (r.problems.size() == 1 ? " problem" : " problems"));
    for (const std::string& problem : r.problems) fields.add("problem", problem);
  }
  return fields;
}

// A segment that exists but fails the header checks: what check found.
bool header_problem(Errc code) { return code == Errc::Corrupt || code == Errc::LayoutMismatch; }

int report_header_problem(const Options& options, const Error& e, std::ostream& out) {
  const std::string what = "attach " + quote(options.store);
  if (!options.json) throw CommandError(what, e.what(), kExitProblems);
  print_json(out, boost::json::object{{"store", options.store},
                                      {"clean", false},
                                      {"problems", boost::json::array{"header: " + std::string(e.what())}},
                                      {"error", errc_name(e.code())}});
  return kExitProblems;
}

// --- recover ---

boost::json::object recovery_json(const std::string& store, const RecoveryReport& r) {
  return {
      {"store", store},
      {"action", r.action},
      {"reason", r.reason},
      {"from_generation", r.from_generation},
      {"to_generation", r.to_generation},
      {"shard_repairs", r.shard_repairs},
      {"locks_revoked", r.locks_revoked},
      {"slots_freed", r.slots_freed},
      {"sessions_copied", r.sessions_copied},
      {"sessions_dropped", r.sessions_dropped},
      {"sessions_relinked", r.sessions_relinked},
      {"dropped_ids", json_strings(r.dropped_ids)},
      {"bytes_reclaimed", r.bytes_reclaimed},
  };
}

FieldList recovery_fields(const std::string& store, const RecoveryReport& r) {
  const bool rebuilt = r.action == "rebuilt";
  const std::string revoked_note = rebuilt && r.locks_revoked ? " (every lock: holders get StaleToken)" : "";
  const std::string generation = r.from_generation == r.to_generation
                                     ? std::to_string(r.to_generation)
                                     : std::to_string(r.from_generation) + " -> " + std::to_string(r.to_generation);
  FieldList fields;
  fields.add("store", store)
      .add("action", r.action + (r.reason.empty() ? "" : " (" + r.reason + ")"))
      .add("generation", generation)
      .add("shard locks repaired", std::to_string(r.shard_repairs))
      .add("locks revoked", std::to_string(r.locks_revoked) + revoked_note)
      .add("slots freed", std::to_string(r.slots_freed));
  // Copies, drops and reclaimed bytes exist only for a rebuild.
  if (rebuilt) {
    fields.add("sessions copied", std::to_string(r.sessions_copied))
        .add("sessions dropped", count_with_ids(r.sessions_dropped, r.dropped_ids))
        .add("sessions relinked", std::to_string(r.sessions_relinked))
        .add("bytes reclaimed", format_bytes(r.bytes_reclaimed));
  }
  return fields;
}

}  // namespace

int run_check(const Options& options, std::ostream& out) {
  std::optional<Store> store;
  try {
    store.emplace(Store::attach(options.store));
  } catch (const Error& e) {
    if (!header_problem(e.code())) throw CommandError("attach " + quote(options.store), e.what());
    return report_header_problem(options, e, out);
  }
  const CheckReport report = run_step("check " + quote(options.store), [&] { return check_store(*store); });
  if (options.json) {
    print_json(out, check_json(options.store, report));
  } else {
    check_fields(options.store, report).print(out);
  }
  return report.clean() ? kExitSuccess : kExitProblems;
}

void run_recover(const Options& options, std::ostream& out) {
  Store store = attach_store(options.store);
  const RecoveryReport report =
      run_step("recover " + quote(options.store), [&] { return recover_store(store, options.rebuild); });
  if (options.json) {
    print_json(out, recovery_json(options.store, report));
  } else {
    recovery_fields(options.store, report).print(out);
  }
}

}  // namespace shmsession::shmctl
