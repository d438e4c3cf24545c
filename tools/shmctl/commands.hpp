// The shmctl commands. Each attaches to (or creates, or removes) one store,
// performs one operator action and prints its result to `out`: a table or
// field list for people, or exactly one JSON document with --json.
//
// Thread safety: a command is run once per process, from main's thread.
// Cross-process safety: as Store: a command may run while app servers work
// on the same store. `show`, `list` and `info` do not refresh a session's
// last access; `get` does (Store::read always does). `destroy` removes the
// name only: processes still attached keep their mapping until they detach.
// `check` repairs only what any access repairs; `recover` frees what dead
// processes left, and a rebuild moves attached processes to a new segment
// generation and revokes every process lock (holders get StaleToken).
// Failures: a command throws CommandError ("<what failed>: <why>", exit 1
// unless it names another status) or UsageError (arguments CLI11 cannot
// check, exit 2); nothing else is expected, but main turns any
// std::exception into a one-line error. `check` alone has a third outcome:
// it found problems (report printed, exit 3).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <stdexcept>
#include <string>
#include <utility>

#include <boost/json/object.hpp>

#include "shm/error.hpp"
#include "shm/store.hpp"

namespace shmsession::shmctl {

// shmctl's exit statuses.
inline constexpr int kExitSuccess = 0;
inline constexpr int kExitFailure = 1;   // a command failed (CommandError)
inline constexpr int kExitUsage = 2;     // the command line is wrong
inline constexpr int kExitProblems = 3;  // check found problems in the store

// Everything any command reads from the command line; each command's CLI
// binds only the fields it uses.
struct Options {
  std::string store;
  std::string session;
  std::string attribute;
  std::string value;  // "-": read the value from standard input
  bool json = false;
  bool all = false;                 // reset: every session
  bool immutable = false;           // put: flag the attribute kAttributeImmutable
  bool force = false;               // destroy: remove even what does not attach; unlock, take: confirm
  bool rebuild = false;             // recover: copy the live records into a new generation
  std::uint64_t limit = 100;        // list: most sessions shown, 0 for all
  std::string from;                 // restore: the backup daemon, HOST:PORT
  std::string key_file;             // restore: the pre-shared key file
  std::uint64_t epoch = 0;          // demote: the superseding epoch, 0 for the store's own
  std::int64_t max_lag_ms = -1;     // bound: the lag bound; -1: not given (show the bound only)
  std::uint64_t bound_wait_ms = 0;  // bound: how long a write waits
  CreateOptions create;
};

// A failed step of a command; main prints "shmctl: <what_failed>: <why>"
// and exits with `exit_status`.
class CommandError : public std::runtime_error {
 public:
  CommandError(std::string what_failed, std::string why, int exit_status = kExitFailure)
      : std::runtime_error(what_failed + ": " + why),
        what_failed_(std::move(what_failed)),
        why_(std::move(why)),
        exit_status_(exit_status) {}
  const std::string& what_failed() const noexcept { return what_failed_; }
  const std::string& why() const noexcept { return why_; }
  int exit_status() const noexcept { return exit_status_; }

 private:
  std::string what_failed_;
  std::string why_;
  int exit_status_;
};

// The command line is wrong in a way the parser could not see.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Runs `step`; a shmsession::Error it throws becomes a CommandError naming
// `what` as the step that failed. Throws: CommandError.
template <typename Step>
decltype(auto) run_step(const std::string& what, Step&& step) {
  try {
    return std::forward<Step>(step)();
  } catch (const Error& e) {
    throw CommandError(what, e.what());
  }
}

// Store::attach, reported as "attach '<name>'". Throws: CommandError.
Store attach_store(const std::string& name);

// Each command. Throws: CommandError, UsageError.
void run_create(const Options& options, std::ostream& out);
void run_info(const Options& options, std::ostream& out);
void run_list(const Options& options, std::ostream& out);
void run_expire(const Options& options, std::ostream& out);
void run_destroy(const Options& options, std::ostream& out);
void run_show(const Options& options, std::ostream& out);
void run_get(const Options& options, std::ostream& out);
void run_put(const Options& options, std::ostream& out);
void run_reset(const Options& options, std::ostream& out);
void run_locks(const Options& options, std::ostream& out);
void run_unlock(const Options& options, std::ostream& out);
void run_restore(const Options& options, std::ostream& out);
void run_recover(const Options& options, std::ostream& out);
void run_promote(const Options& options, std::ostream& out);  // tools/shmctl/failover_commands.cpp
void run_demote(const Options& options, std::ostream& out);
void run_bound(const Options& options, std::ostream& out);
void run_hosts(const Options& options, std::ostream& out);  // tools/shmctl/host_commands.cpp
// For `info`: when the store is shared across hosts, its host id, Redis,
// and its Redis sink's owned sessions, lag, ships and bytes ("hosts" in
// the JSON document, "hosts ..." fields in the text). Nothing otherwise.
class FieldList;
void add_hosts_info(const std::string& store, boost::json::object* json, FieldList* fields);
void run_owner(const Options& options, std::ostream& out);
void run_hand_over(const Options& options, std::ostream& out);
void run_take(const Options& options, std::ostream& out);
// Returns kExitSuccess, or kExitProblems after printing a report that lists
// problems. A header that fails its checks (Corrupt, LayoutMismatch) is a
// problem too: one JSON document with --json, else a CommandError with
// status kExitProblems.
int run_check(const Options& options, std::ostream& out);

}  // namespace shmsession::shmctl
