#include "tools/shmctl/cli.hpp"

#include <limits>
#include <optional>
#include <string>

#include "tools/shmctl/output.hpp"
#include "tools/shmctl/parse.hpp"

namespace shmsession::shmctl {
namespace {

// A validator that replaces the option's text by its value in canonical
// decimal (what CLI11 then reads), or reports why the text is wrong.
template <typename Parse>
CLI::Validator canonical(Parse parse, const std::string& expected) {
  return CLI::Validator(
      [parse, expected](std::string& text) -> std::string {
        auto value = parse(text);
        if (!value) return "expected " + expected + ", got " + quote(text);
        text = std::to_string(*value);
        return {};
      },
      "", "canonical");
}

CLI::Validator decimal(std::uint64_t max) {
  return canonical([max](const std::string& text) { return parse_unsigned(text, max); },
                   "a decimal number from 0 to " + std::to_string(max));
}

constexpr std::uint64_t kMaxU32 = std::numeric_limits<std::uint32_t>::max();

// A subcommand with the options every command has: --json and the NAME of
// the store.
CLI::App* add_command(CLI::App& app, Options& options, const std::string& name, const std::string& description) {
  CLI::App* command = app.add_subcommand(name, description);
  command->add_option("NAME", options.store, "store name (A-Z a-z 0-9 . _ -)")->required();
  command->add_flag("--json", options.json, "print one JSON document instead of text");
  return command;
}

CLI::App* add_create(CLI::App& app, Options& options) {
  CLI::App* command = add_command(app, options, "create", "create a new store (error if it exists)");
  command->add_option("--size", options.create.size_bytes, "segment size, bytes or with K, M, G suffix")
      ->type_name("SIZE")
      ->default_str("256M")
      ->transform(canonical(parse_size, "bytes or a number with a K, M or G suffix"));
  command->add_option("--mode", options.create.mode, "permission bits of the segment")
      ->type_name("OCTAL")
      ->default_str(format_mode(options.create.mode))
      ->transform(canonical(parse_mode, "octal permission bits such as 0640"));
  command->add_flag("!--no-reserve", options.create.reserve,
                    "take pages from memory only once touched (a full /dev/shm then kills the writer "
                    "with SIGBUS) instead of reserving the whole size now");
  command->add_option("--shards", options.create.shards, "session table shards, a power of two")
      ->type_name("N")
      ->default_str("auto: 1 per 64K of size, at most 256")
      ->transform(decimal(kMaxU32));
  command->add_option("--log-capacity", options.create.change_log_capacity, "change log entries")
      ->type_name("N")
      ->default_str("auto: 1 per 2K of size, at most 16384")
      ->transform(decimal(kMaxU32));
  command
      ->add_option("--change-lanes", options.create.change_lanes,
                   "change lanes, a power of two up to 64: a change writes the lane of its CPU")
      ->type_name("N")
      ->default_str("auto: this machine's CPUs")
      ->transform(decimal(kMaxU32));
  command
      ->add_option("--idle-timeout", options.create.default_idle_timeout_s, "default session idle timeout, 0 for never")
      ->type_name("SECONDS")
      ->capture_default_str()
      ->transform(decimal(kMaxU32));
  command
      ->add_option("--lock-lease", options.create.lock_lease_ms,
                   "revoke a lock holder this long after a release was requested, 0 for never")
      ->type_name("MS")
      ->capture_default_str()
      ->transform(decimal(kMaxU32));
  command->add_option("--max-lock-queue", options.create.max_lock_queue, "waiting processes per session lock")
      ->type_name("N")
      ->capture_default_str()
      ->transform(decimal(kMaxU32));
  return command;
}

CLI::App* add_list(CLI::App& app, Options& options) {
  CLI::App* command = add_command(app, options, "list", "list sessions, sorted by id");
  command->add_option("--limit", options.limit, "most sessions listed, 0 for all")
      ->type_name("N")
      ->capture_default_str()
      ->transform(decimal(std::numeric_limits<std::uint64_t>::max()));
  return command;
}

CLI::App* add_show(CLI::App& app, Options& options) {
  CLI::App* command = add_command(app, options, "show", "show a session and its attributes (no values)");
  command->add_option("SESSION", options.session, "session id")->required();
  return command;
}

CLI::App* add_get(CLI::App& app, Options& options) {
  CLI::App* command = add_command(app, options, "get", "write an attribute's raw value to standard output");
  command->add_option("SESSION", options.session, "session id")->required();
  command->add_option("ATTR", options.attribute, "attribute name")->required();
  return command;
}

CLI::App* add_put(CLI::App& app, Options& options) {
  CLI::App* command = add_command(app, options, "put", "set an attribute, creating the session if missing");
  command->add_option("SESSION", options.session, "session id")->required();
  command->add_option("ATTR", options.attribute, "attribute name")->required();
  command->add_option("VALUE", options.value, "the value; - reads it from standard input")->required();
  command->add_flag("--immutable", options.immutable, "flag the attribute immutable");
  command->footer("Put -- before a VALUE that starts with '-'.\n");
  return command;
}

CLI::App* add_reset(CLI::App& app, Options& options) {
  CLI::App* command = add_command(app, options, "reset", "remove one session, or all with --all");
  CLI::Option* session = command->add_option("SESSION", options.session, "session id");
  command->add_flag("--all", options.all, "remove every session")->excludes(session);
  return command;
}

CLI::App* add_destroy(CLI::App& app, Options& options) {
  CLI::App* command = add_command(app, options, "destroy", "remove the store's segment");
  command->add_flag("--force", options.force,
                    "remove the name even if it does not attach as a store (corrupt, other layout) "
                    "or live processes have it mapped");
  return command;
}

CLI::App* add_unlock(CLI::App& app, Options& options) {
  CLI::App* command =
      add_command(app, options, "unlock", "revoke a session's process lock (the holder's token is refused)");
  command->add_option("SESSION", options.session, "session id")->required();
  command->add_flag("--force", options.force, "required: confirms revoking a holder that may be alive");
  return command;
}

// A command on one session of a store shared across hosts.
CLI::App* add_session_command(CLI::App& app, Options& options, const std::string& name,
                              const std::string& description) {
  CLI::App* command = add_command(app, options, name, description);
  command->add_option("SESSION", options.session, "session id")->required();
  return command;
}

CLI::App* add_take(CLI::App& app, Options& options) {
  CLI::App* command = add_session_command(
      app, options, "take", "grant a session to this host whoever owns it, and load it from Redis (hosts)");
  command->add_flag("--force", options.force, "required: confirms fencing the owner, which may be alive");
  return command;
}

CLI::App* add_restore(CLI::App& app, Options& options) {
  CLI::App* command = add_command(app, options, "restore",
                                  "fill an empty store from a backup daemon (created if missing, with --size)");
  command->add_option("--from", options.from, "the backup daemon, HOST:PORT")->required();
  command->add_option("--key", options.key_file, "pre-shared key file (mode 0600)")->required();
  command->add_option("--size", options.create.size_bytes, "segment size if the store is created (K, M, G)")
      ->type_name("SIZE")
      ->default_str("256M")
      ->transform(canonical(parse_size, "bytes or a number with a K, M or G suffix"));
  return command;
}

CLI::App* add_check(CLI::App& app, Options& options) {
  CLI::App* command =
      add_command(app, options, "check", "verify every record, checksum, lock slot, the allocator and the index");
  command->footer(
      "Repairs only what any access repairs (a shard lock whose holder died).\n"
      "Exit status: 0 clean, 3 problems found (the report is printed), 1 error, 2 usage.\n");
  return command;
}

CLI::App* add_recover(CLI::App& app, Options& options) {
  CLI::App* command =
      add_command(app, options, "recover", "free what dead processes left; rebuild into a new generation if damaged");
  command->add_flag("--rebuild", options.rebuild,
                    "copy the live records into a new generation even when nothing requires it "
                    "(revokes every process lock)");
  return command;
}

CLI::App* add_promote(CLI::App& app, Options& options) {
  CLI::App* command = add_command(app, options, "promote",
                                  "make a standby the primary: a new epoch; it follows no primary any more, and its "
                                  "backup daemon refuses the old primary's agent, which fences the old primary");
  command->footer(
      "Stop nothing first: a backup daemon applying into it stops at its next frame.\n"
      "Point the app servers at the promoted store. README.md, \"Failing over\".\n");
  return command;
}

CLI::App* add_demote(CLI::App& app, Options& options) {
  CLI::App* command = add_command(app, options, "demote",
                                  "fence a store that was superseded: commits, creations and removals fail with "
                                  "Fenced from now on; reads go on");
  command->add_option("--epoch", options.epoch, "the epoch that superseded it (shown by info); default its own")
      ->type_name("N")
      ->transform(decimal(std::numeric_limits<std::uint64_t>::max() >> 1));
  return command;
}

CLI::App* add_bound(CLI::App& app, Options& options) {
  CLI::App* command = add_command(app, options, "bound",
                                  "show or set the replication bound: while the sync agent lags more than --max-lag, "
                                  "writes wait up to --wait, then fail with ReplicaBehind");
  CLI::Option* lag = command->add_option("--max-lag", options.max_lag_ms, "the lag bound; 0 turns the bound off")
                         ->type_name("MS")
                         ->transform(decimal(kMaxU32));
  command->add_option("--wait", options.bound_wait_ms, "how long a write waits for the agent to catch up")
      ->type_name("MS")
      ->default_str("0")
      ->transform(decimal(kMaxU32))
      ->needs(lag);
  command->footer("Without --max-lag: shows the bound and the writes that waited or were refused.\n");
  return command;
}

// The commands whose only outcome besides failing is their output.
template <void (*Run)(const Options&, std::ostream&)>
int succeeds(const Options& options, std::ostream& out) {
  Run(options, out);
  return kExitSuccess;
}

}  // namespace

std::vector<Command> add_commands(CLI::App& app, Options& options) {
  app.require_subcommand(1);
  return {
      {add_create(app, options), succeeds<run_create>},
      {add_command(app, options, "info", "show the store's settings, statistics and replication agent"),
       succeeds<run_info>},
      {add_list(app, options), succeeds<run_list>},
      {add_show(app, options), succeeds<run_show>},
      {add_get(app, options), succeeds<run_get>},
      {add_put(app, options), succeeds<run_put>},
      {add_reset(app, options), succeeds<run_reset>},
      {add_command(app, options, "expire", "free every session past its idle timeout"), succeeds<run_expire>},
      {add_destroy(app, options), succeeds<run_destroy>},
      {add_command(app, options, "locks", "show locked sessions: holder, token, release requests, queue"),
       succeeds<run_locks>},
      {add_unlock(app, options), succeeds<run_unlock>},
      {add_restore(app, options), succeeds<run_restore>},
      {add_check(app, options), run_check},
      {add_recover(app, options), succeeds<run_recover>},
      {add_promote(app, options), succeeds<run_promote>},
      {add_demote(app, options), succeeds<run_demote>},
      {add_bound(app, options), succeeds<run_bound>},
      {add_command(app, options, "hosts", "sessions shared across hosts: this host, its Redis sink, its records"),
       succeeds<run_hosts>},
      {add_session_command(app, options, "owner", "which host owns a session (Redis): token, lease, queue"),
       succeeds<run_owner>},
      {add_session_command(app, options, "hand-over", "release a session this host owns (shipped first)"),
       succeeds<run_hand_over>},
      {add_take(app, options), succeeds<run_take>},
  };
}

}  // namespace shmsession::shmctl
