// Commands about process locks: locks (who holds what, who waits) and
// unlock --force (revoke a holder; its token stays refused).
#include <ostream>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "tools/shmctl/commands.hpp"
#include "tools/shmctl/output.hpp"

namespace shmsession::shmctl {
namespace {

std::string queue_text(const std::vector<pid_t>& queue) {
  if (queue.empty()) return "-";
  std::string out;
  for (pid_t pid : queue) out += (out.empty() ? "" : ",") + std::to_string(pid);
  return out;
}

boost::json::object lock_json(const LockInfo& l) {
  boost::json::array queue;
  for (pid_t pid : l.queue) queue.push_back(pid);
  return {{"session", l.session},
          {"holder_pid", l.holder_pid},
          {"token", l.token},
          {"acquired_unix_ms", l.acquired_unix_ms},
          {"held_for_ms", l.held_for_ms},
          {"release_requested", l.release_requested},
          {"release_requested_unix_ms", l.release_requested_unix_ms},
          {"queue", std::move(queue)}};
}

}  // namespace

void run_locks(const Options& options, std::ostream& out) {
  Store store = attach_store(options.store);
  std::vector<LockInfo> locks = run_step("list the locks of " + quote(options.store), [&] { return store.locks(); });
  if (options.json) {
    boost::json::array doc;
    for (const LockInfo& l : locks) doc.push_back(lock_json(l));
    print_json(out, doc);
    return;
  }
  Table table({{"SESSION"},
               {"HOLDER", Align::Right},
               {"TOKEN", Align::Right},
               {"HELD FOR", Align::Right},
               {"RELEASE REQUESTED"},
               {"QUEUE"}});
  for (const LockInfo& l : locks) {
    table.add_row({quote(l.session), l.holder_pid ? std::to_string(l.holder_pid) : "-", std::to_string(l.token),
                   std::to_string(l.held_for_ms) + "ms", l.release_requested ? "yes" : "no", queue_text(l.queue)});
  }
  table.print(out);
  if (locks.empty()) out << "(no session is locked)\n";
}

void run_unlock(const Options& options, std::ostream& out) {
  if (!options.force) throw UsageError("unlock revokes a live holder's lock: confirm with --force");
  Store store = attach_store(options.store);
  const std::string what = "unlock session " + quote(options.session);
  bool revoked = run_step(what, [&] { return store.force_unlock(options.session); });
  if (!revoked) throw CommandError(what, "the session is not locked");
  if (options.json) {
    print_json(out, boost::json::object{{"session", options.session}, {"revoked", true}});
  } else {
    FieldList().add("session", options.session).add("revoked", "yes (the old token is now refused)").print(out);
  }
}

}  // namespace shmsession::shmctl
