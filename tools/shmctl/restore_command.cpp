// shmctl restore: fills an empty primary store from a backup daemon
// (sync/backup/restore_client.hpp). The store is created when it does not
// exist (with --size); an existing store must hold no session.
#include <boost/json.hpp>

#include "sync/backup/endpoint.hpp"
#include "sync/backup/restore_client.hpp"
#include "sync/wire/key.hpp"
#include "tools/shmctl/commands.hpp"
#include "tools/shmctl/output.hpp"

namespace shmsession::shmctl {

void run_restore(const Options& options, std::ostream& out) {
  const std::string what = "restore " + quote(options.store);
  const sync::Endpoint from = run_step(what, [&] { return sync::parse_endpoint(options.from); });
  const sync::wire::KeyRing keys = run_step(what, [&] { return sync::wire::load_key_file(options.key_file); });
  bool created = false;
  Store store = run_step(what, [&] {
    if (Store::exists(options.store)) return Store::attach(options.store);
    created = true;
    return Store::create(options.store, options.create);
  });
  const sync::RestoreResult result = run_step(what, [&] { return sync::restore_from_backup(store, from, keys); });
  const std::string followed =
      result.backup_position.follows_a_primary() ? result.backup_position.primary_store_id_hex() : std::string("none");
  if (options.json) {
    print_json(out, boost::json::object{{"store", options.store},
                                        {"created", created},
                                        {"from", from.to_string()},
                                        {"sessions", result.sessions},
                                        {"bytes_received", result.bytes_received},
                                        {"backup_followed_store", followed},
                                        {"backup_position", result.backup_position.applied_seq}});
  } else {
    FieldList()
        .add("store", options.store + (created ? " (created)" : ""))
        .add("restored from", from.to_string())
        .add("sessions", std::to_string(result.sessions))
        .add("bytes received", std::to_string(result.bytes_received))
        .add("backup followed", followed + " at seq " + std::to_string(result.backup_position.applied_seq))
        .print(out);
  }
}

}  // namespace shmsession::shmctl
