// shmctl's command line: one CLI11 subcommand per command, each with its
// own --help and --json, bound to the fields of one Options.
//
// Thread safety: built and parsed once, from main's thread.
#pragma once

#include <iosfwd>
#include <vector>

#include <CLI/CLI.hpp>

#include "tools/shmctl/commands.hpp"

namespace shmsession::shmctl {

// Runs the command and returns its exit status (see commands.hpp).
using CommandFn = int (*)(const Options&, std::ostream&);

struct Command {
  CLI::App* app;  // the subcommand, owned by the parent CLI::App
  CommandFn run;
};

// Adds every command to `app` and returns them; parsing fills `options`.
// Option values CLI11 would misread (sizes, octal modes, "010", "-1") are
// checked by validators here, so they fail as parse errors.
std::vector<Command> add_commands(CLI::App& app, Options& options);

}  // namespace shmsession::shmctl
