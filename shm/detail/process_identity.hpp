// Who a process is, robustly: its pid and its start time (clock ticks since
// boot, /proc/<pid>/stat field 22), so that a reused pid is not mistaken for
// the process that died. Used to record lock holders and waiters and to
// tell whether they are still alive.
//
// Thread safety: all functions may be called from any thread; self() caches
// per process and notices a fork (a new pid).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>

namespace shmsession::shm::detail {

struct ProcessIdentity {
  pid_t pid = 0;
  std::uint64_t start_time = 0;
};

ProcessIdentity self_identity();

// The start time of a live (not zombie) process, or nullopt if it is gone.
std::optional<std::uint64_t> process_start_time(pid_t pid);

// Whether the process recorded as (pid, start_time) still runs.
bool process_alive(pid_t pid, std::uint64_t start_time);

}  // namespace shmsession::shm::detail
