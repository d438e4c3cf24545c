// Restore: fills an empty primary store from a backup daemon's standby
// (`shmctl restore NAME --from HOST:PORT --key FILE`). The daemon streams
// its standby as a snapshot; each session is applied with its version
// (Replica::apply), so clients that kept a version see the same one.
// The restored store is a primary with a new store id: an agent started on
// it later makes the backup take a full resync.
//
// Thread safety: one call at a time per store. Cross-process safety: app
// servers should not use the store before the restore returns (sessions
// appear one by one).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "shm/replica.hpp"
#include "shm/store.hpp"
#include "sync/backup/endpoint.hpp"
#include "sync/wire/frame_limits.hpp"
#include "sync/wire/key.hpp"

namespace shmsession::sync {

struct RestoreResult {
  std::uint64_t sessions = 0;
  std::uint64_t bytes_received = 0;
  ReplicaPosition backup_position;  // the primary the backup followed and its position
};

// Throws: Error(InvalidArgument) when the store holds sessions (restore
// fills an empty store only); Error(Io) when the daemon cannot be reached,
// closes early or stays silent for `timeout`; Error(Corrupt) for frames
// that fail their checks (a wrong key); Error(SegmentFull) when the store
// is too small (what was restored so far stays).
RestoreResult restore_from_backup(Store& primary, const Endpoint& from, const wire::KeyRing& keys,
                                  std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));

}  // namespace shmsession::sync
