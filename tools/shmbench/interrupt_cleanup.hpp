// InterruptCleanup: what an interrupted shmbench must not leave behind.
// Destructors do not run when SIGINT/SIGTERM/SIGHUP kill a process, so the
// owners of a scratch segment and of a peer server register them here, and
// the handler unlinks the segments, SIGTERMs the servers, then dies of the
// same signal (exit status as if no handler were installed).
//
// Thread safety: register/unregister from one thread (the main one).
// Async-signal safety: the handler only reads registered slots and calls
// shm_unlink(3), kill(2), signal(2) and raise(3). Forked children reset the
// handlers (follow_parent, peer_process.hpp), so only the owning process
// cleans up.
#pragma once

#include <sys/types.h>

#include <string_view>

namespace shmsession::bench {

// Installs the handlers; idempotent.
void install_interrupt_cleanup();

// Returns a slot for unregister_cleanup, or -1 if every slot is taken (the
// object is then only cleaned up by its destructor).
int register_segment_cleanup(std::string_view shm_object_name);  // e.g. "/shmbench_1_x"
int register_process_cleanup(pid_t pid);
void unregister_cleanup(int slot) noexcept;

}  // namespace shmsession::bench
