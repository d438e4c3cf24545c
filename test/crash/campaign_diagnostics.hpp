// Diagnostics of the kill campaign, printed only when a bound is missed:
// what each worker is doing, every thread's stack (through gdb, when it is
// installed) with the words of the futex a stuck main thread sleeps on, and
// a stall reporter process that takes those pictures while a stall lasts
// (the supervisor only sees a stall once it ends).
//
// Cross-process safety: reads the WorkerControls only. gdb attaches for a
// moment (ptrace), and that interrupts a thread sleeping on a futex: a
// waiter that missed its wakeup resumes after the picture, so a picture may
// end the stall it shows.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>

#include "test/crash/campaign_worker.hpp"

namespace shmsession::test::crash {

// "in <op> of '<session>' for <n> ms", or "between operations".
std::string describe_current_op(const WorkerControl& control);

// Every thread's stack of `pid`, and the six words at the main thread's
// futex (for a pthread mutex: lock word = owner tid | waiters | owner died,
// count, owner, users, kind); empty if gdb is not installed.
std::string debugger_view(pid_t pid, const std::string& who);

// Every thread of the machine (ps -eLo): to find the owner tid of a mutex.
std::string threads_view();

// The body of the stall reporter, a forked process: whenever a worker's
// store call has run for `threshold`, writes describe_current_op of every
// worker and debugger_view of each to stderr, with `controls.reporting()`
// set meanwhile. Runs until killed.
int run_stall_reporter(SharedControls& controls, int workers, std::chrono::nanoseconds threshold);

}  // namespace shmsession::test::crash
