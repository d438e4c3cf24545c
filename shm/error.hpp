// The one error family at shmsession's public boundary.
//
// Every public operation of every module reports failure by throwing
// shmsession::Error with an Errc code; expected outcomes (a session that is
// not there, a lock not granted at once) are values (std::optional), not
// errors. Boost.Interprocess exceptions never leave shm/.
//
// Header-only, so that modules that must not depend on shared memory
// (graph/, diff/) can report errors in the same family.
//
// Thread safety: Error is an immutable value; safe to copy between threads.
#pragma once

#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

namespace shmsession {

enum class Errc {
  // The segment has no room for the commit. Nothing stored was damaged.
  // Retrying helps only after sessions are removed or expired.
  SegmentFull,
  // No store or no session of that name. Retrying does not help.
  NotFound,
  // A store or session of that name exists already.
  AlreadyExists,
  // A lock token that is no longer current was presented (fencing). The
  // caller lost its lock: reacquire before writing again.
  StaleToken,
  // A lock was not granted in time. Retrying may help.
  LockTimeout,
  // The segment was made by a build with another layout version. Fix the
  // deployment (same build everywhere, or recreate the store) first.
  LayoutMismatch,
  // A name, id, size or option is not acceptable. Fix the input.
  InvalidArgument,
  // Stored or received bytes fail a check (magic, checksum, bounds).
  // Retrying does not help; run `shmctl check`.
  Corrupt,
  // An operating-system call failed (permissions, shm_open, mmap...).
  Io,
  // The store was fenced: another store superseded it (a standby promoted
  // in its place, shm/replica.hpp) or an operator demoted it. Commits,
  // creations and removals are refused; reads still work (to drain).
  // Retrying does not help: write to the promoted store. Also: a backup
  // daemon's store that was promoted refuses what its old primary sends.
  Fenced,
  // The store's replication agent lags more than the store's replication
  // bound (Store::set_replication_bound) and did not catch up within the
  // bound's wait: the write was not made. Retrying helps once the backup
  // acknowledges again.
  ReplicaBehind,
};

// Short stable name of a code, as printed by tools and in JSON ("SegmentFull").
inline std::string_view errc_name(Errc code) noexcept {
  switch (code) {
    case Errc::SegmentFull:
      return "SegmentFull";
    case Errc::NotFound:
      return "NotFound";
    case Errc::AlreadyExists:
      return "AlreadyExists";
    case Errc::StaleToken:
      return "StaleToken";
    case Errc::LockTimeout:
      return "LockTimeout";
    case Errc::LayoutMismatch:
      return "LayoutMismatch";
    case Errc::InvalidArgument:
      return "InvalidArgument";
    case Errc::Corrupt:
      return "Corrupt";
    case Errc::Io:
      return "Io";
    case Errc::Fenced:
      return "Fenced";
    case Errc::ReplicaBehind:
      return "ReplicaBehind";
  }
  return "Unknown";
}

// Whether retrying the same call later can succeed without other action.
inline bool errc_retryable(Errc code) noexcept {
  return code == Errc::LockTimeout || code == Errc::SegmentFull || code == Errc::ReplicaBehind;
}

class Error : public std::runtime_error {
 public:
  Error(Errc code, const std::string& what) : std::runtime_error(what), code_(code) {}
  Errc code() const noexcept { return code_; }

 private:
  Errc code_;
};

// The text of an errno value, as std::strerror gives it, but safe from any
// thread (strerror may hand every caller one shared buffer; the GNU
// strerror_r writes into the caller's, or returns a constant string).
inline std::string errno_text(int errnum) {
  char buffer[256];
  return ::strerror_r(errnum, buffer, sizeof buffer);
}

}  // namespace shmsession
