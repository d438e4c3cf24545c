// A process-shared robust pthread mutex living in the segment, and its RAII
// guard.
//
// Why not boost::interprocess::interprocess_mutex: in Boost 1.81 a mutex
// whose holder was SIGKILLed throws not_recoverable forever. A robust pthread
// mutex reports EOWNERDEAD to the next locker, which repairs the protected
// state and marks it consistent (shm/recovery.md has what each repair does).
//
// Thread and process safety: any thread of any process may lock it. The
// guard must be released by the thread that took it.
#pragma once

#include "shm/detail/segment_format.hpp"

namespace shmsession::shm::detail {

// Initializes the mutex in place (once, by the creator of the segment).
// Throws: Error(Io) if pthread refuses the attributes.
void robust_mutex_init(RobustMutexStorage& m);

// Whether `m` looks like a mutex made by robust_mutex_init, as `reference`
// is (the same kind bits): how attach tells an array of mutexes from bytes
// a damaged pointer leads to, before anyone sleeps on them. glibc-specific.
bool robust_mutex_plausible(const RobustMutexStorage& m, const RobustMutexStorage& reference) noexcept;

// Locks `m`. When the previous holder died holding it, calls `repair()`
// before returning (the protected state is then exactly as the dead holder
// left it) and marks the mutex consistent. A waiter looks at the lock
// again every 10 ms even if nobody wakes it: the robust futex protocol can
// lose a wake-up when a woken waiter is killed (robust_mutex.cpp).
// Throws: Error(Corrupt) if the mutex is unrecoverable, Error(Io) otherwise.
class SCOPED_CAPABILITY RobustLockGuard {
 public:
  template <typename Repair>
  RobustLockGuard(RobustMutexStorage& m, Repair&& repair) ACQUIRE(m) : m_(m) {
    if (lock_raw()) {
      repair();
      make_consistent();
    }
  }
  explicit RobustLockGuard(RobustMutexStorage& m) ACQUIRE(m) : RobustLockGuard(m, [] {}) {}
  ~RobustLockGuard() RELEASE();
  RobustLockGuard(const RobustLockGuard&) = delete;
  RobustLockGuard& operator=(const RobustLockGuard&) = delete;

 private:
  bool lock_raw();  // true: the previous owner died
  void make_consistent();
  RobustMutexStorage& m_;
};

}  // namespace shmsession::shm::detail
