// shmctl: the operator tool for shmsession stores. Parses the command line,
// runs one command and maps failures to one line on stderr and an exit
// status: 0 success, 1 the command failed, 2 the command line is wrong, 3
// `check` found problems.
#include <cerrno>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "tools/shmctl/cli.hpp"
#include "tools/shmctl/commands.hpp"
#include "tools/shmctl/output.hpp"

namespace {

using shmsession::shmctl::Command;
using shmsession::shmctl::kExitFailure;
using shmsession::shmctl::kExitUsage;
using shmsession::shmctl::Options;

// Prints "shmctl: <what failed>: <why>" as exactly one line.
void print_error(const std::string& what_failed, const std::string& why) {
  std::string line = "shmctl: " + what_failed + ": " + why;
  while (!line.empty() && line.back() == '\n') line.pop_back();
  for (char& c : line)
    if (c == '\n' || c == '\r') c = ' ';
  std::cerr << line << '\n';
}

// "shmctl create" if a subcommand was recognized, else "shmctl".
std::string command_path(const CLI::App& app) {
  std::vector<CLI::App*> selected = app.get_subcommands();
  return selected.empty() ? std::string("shmctl") : "shmctl " + selected.front()->get_name();
}

int report_usage(const CLI::App& app, const std::string& why) {
  const std::string path = command_path(app);
  print_error(path == "shmctl" ? "usage" : path.substr(7), why + " (see '" + path + " --help')");
  return kExitUsage;
}

int run(const CLI::App& app, const Command& command, const Options& options) {
  const std::string name = command.app->get_name();
  try {
    const int status = command.run(options, std::cout);
    std::cout.flush();
    if (!std::cout) {
      print_error("write output", shmsession::errno_text(errno));
      return kExitFailure;
    }
    return status;
  } catch (const shmsession::shmctl::CommandError& e) {
    print_error(e.what_failed(), e.why());
    return e.exit_status();
  } catch (const shmsession::shmctl::UsageError& e) {
    return report_usage(app, e.what());
  } catch (const std::exception& e) {
    print_error(name, e.what());
  }
  return kExitFailure;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app{"Create, inspect, reset and destroy shmsession stores.", "shmctl"};
  std::vector<Command> commands = shmsession::shmctl::add_commands(app, options);
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help: usage on stdout, exit 0
  } catch (const CLI::ParseError& e) {
    // CLI11 takes an unknown command for a missing one; name it instead.
    bool unknown = app.get_subcommands().empty() && argc > 1 && argv[1][0] != '-';
    return report_usage(app, unknown ? "unknown command " + shmsession::shmctl::quote(argv[1]) : e.what());
  }
  for (const Command& command : commands) {
    if (command.app->parsed()) return run(app, command, options);
  }
  return report_usage(app, "no command given");
}
