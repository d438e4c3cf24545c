// Helpers shared by the tests that drive the built shmctl binary as an
// operator would: running it, reading its one JSON document, and checking
// that a failure is the one "shmctl: <what failed>: <why>" line the tools
// promise (README.md, "shmctl").
//
// Requires: SHMCTL_PATH names the binary (shmctl_binary_test in
// test/tools/CMakeLists.txt defines it); Boost.Test's main comes from
// test/support/test_main.cpp.
// Thread safety: call from the test's own thread (the assertions report to
// Boost.Test). Each call runs shmctl as a process of its own, so it is safe
// while other processes, forked children included, are attached to the store.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include "test/support/test_support.hpp"

namespace shmsession::test {

// Runs shmctl with `args` and `input` on its standard input, capturing both
// outputs; fails the test if it runs over a minute (run_command's default).
inline CommandResult shmctl(std::vector<std::string> args, const std::string& input = {}) {
  args.insert(args.begin(), SHMCTL_PATH);
  return run_command(args, input);
}

// Runs shmctl with --json, requires `exit_code` and nothing on stderr, checks
// that stdout is exactly one line, and parses that one document.
inline boost::json::value shmctl_json(std::vector<std::string> args, const std::string& input = {}, int exit_code = 0) {
  args.push_back("--json");
  CommandResult r = shmctl(args, input);
  BOOST_TEST_REQUIRE(r.exit_code == exit_code, "shmctl " << args.front() << ": " << r.err << r.out);
  BOOST_TEST(r.err.empty(), r.err);
  BOOST_TEST_REQUIRE(!r.out.empty());
  BOOST_TEST(r.out.back() == '\n');
  BOOST_TEST(std::count(r.out.begin(), r.out.end(), '\n') == 1, r.out);
  return boost::json::parse(r.out);
}

// Whether `r` failed the way every shmctl failure must: nothing on stdout and
// exactly one newline-terminated line on stderr that starts with `starts_with`.
// Asserts nothing, for callers that check the exit status their own way.
inline bool is_one_line_error(const CommandResult& r, const std::string& starts_with = "shmctl: ") {
  return r.out.empty() && std::count(r.err.begin(), r.err.end(), '\n') == 1 && r.err.back() == '\n' &&
         r.err.rfind(starts_with, 0) == 0;
}

// Asserts that `r` exited with `exit_code` and is_one_line_error(r, starts_with).
inline void check_one_line_error(const CommandResult& r, int exit_code, const std::string& starts_with = "shmctl: ") {
  BOOST_TEST(r.exit_code == exit_code, "stderr: " << r.err);
  BOOST_TEST(is_one_line_error(r, starts_with), "stdout: " << r.out << "stderr: " << r.err);
}

}  // namespace shmsession::test
