// SessionGate: a condition a Client checks before it serves a session,
// with the session's process lock held. The hosts module's HostGate
// (sync/hosts/host_gate.hpp) is one: a host serves a session only while it
// owns it, and takes ownership (and Redis's state of the session) first.
//
// Thread safety: admit may be called by several threads at once, for
// different sessions (a Client holds each session's process lock while
// it calls admit for it).
#pragma once

#include <chrono>
#include <string_view>

#include "shm/store.hpp"

namespace shmsession::sync {

class SessionGate {
 public:
  virtual ~SessionGate() = default;
  // Called by Client::open after it took (or reused) the process lock of
  // session `id` in `store` (`token`), before its copy is refreshed. It may
  // read and commit the session with `token` (loading a state from
  // elsewhere: the Client's refresh then copies it). Returns when the
  // session may be served; throws to refuse this open (LockTimeout when the
  // session could not be had in `timeout`), after which the Client lets the
  // process lock go.
  virtual void admit(Store& store, std::string_view id, LockToken token, std::chrono::milliseconds timeout) = 0;
};

}  // namespace shmsession::sync
