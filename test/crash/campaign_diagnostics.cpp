#include "test/crash/campaign_diagnostics.hpp"

#include <unistd.h>

#include <cstdio>
#include <thread>
#include <vector>

#include "test/support/test_support.hpp"

namespace shmsession::test::crash {

std::string describe_current_op(const WorkerControl& control) {
  int op = control.current_op.load(std::memory_order_acquire);
  if (op == kNotArmed) return "between operations";
  double for_ms = static_cast<double>(monotonic_ns() - control.current_since_ns.load()) / 1e6;
  char text[320];
  std::snprintf(text, sizeof text, "in %s of '%s' for %.1f ms", op_kind_name(op), control.current_session, for_ms);
  return text;
}

std::string debugger_view(pid_t pid, const std::string& who) {
  static const char* kGdb = "/usr/bin/gdb";
  if (pid <= 0 || ::access(kGdb, X_OK) != 0) return {};
  try {
    // The futex words first: $rdi still holds the futex address of a
    // thread stopped in its wait, before the detach restarts the wait.
    CommandResult r = run_command({kGdb, "-p", std::to_string(pid), "-batch", "-nx", "-ex", "thread 1", "-ex",
                                   "x/6wx $rdi", "-ex", "thread apply all bt"},
                                  {}, std::chrono::seconds(60));
    return "---- " + who + " (pid " + std::to_string(pid) + ") ----\n" + r.out + r.err;
  } catch (const std::exception& e) {
    return "---- " + who + ": gdb failed: " + e.what() + "\n";
  }
}

std::string threads_view() {
  try {
    return "---- threads ----\n" +
           run_command({"/bin/ps", "-eLo", "pid,tid,stat,wchan:32,comm"}, {}, std::chrono::seconds(30)).out;
  } catch (const std::exception& e) {
    return std::string("---- ps failed: ") + e.what() + "\n";
  }
}

int run_stall_reporter(SharedControls& controls, int workers, std::chrono::nanoseconds threshold) {
  std::vector<std::uint64_t> reported(static_cast<std::size_t>(workers), 0);  // current_since_ns told
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    for (int w = 0; w < workers; ++w) {
      WorkerControl& c = controls[w];
      std::uint64_t since = c.current_since_ns.load();
      if (c.current_op.load() == kNotArmed || since == reported[w]) continue;
      if (monotonic_ns() - since < static_cast<std::uint64_t>(threshold.count())) continue;
      reported[w] = since;
      controls.reporting() = 1;
      std::string text = "==== stall: worker " + std::to_string(w) + " " + describe_current_op(c) + " ====\n";
      for (int o = 0; o < workers; ++o)
        text += "worker " + std::to_string(o) + " (pid " + std::to_string(controls[o].pid.load()) +
                "): " + describe_current_op(controls[o]) + "\n";
      std::fprintf(stderr, "%s", text.c_str());
      std::fprintf(stderr, "%s", debugger_view(c.pid.load(), "stalled worker " + std::to_string(w)).c_str());
      for (int o = 0; o < workers; ++o)
        if (o != w)
          std::fprintf(stderr, "%s", debugger_view(controls[o].pid.load(), "worker " + std::to_string(o)).c_str());
      std::fprintf(stderr, "==== end of stall report ====\n");
      controls.reporting() = 0;
    }
  }
}

}  // namespace shmsession::test::crash
