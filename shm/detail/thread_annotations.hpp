// Clang thread-safety annotations (-Wthread-safety): which mutex guards a
// member, and which a function needs held, said to the compiler rather than
// only in prose. Other compilers ignore them; CI's
// ThreadSanitizer pass builds with clang and -Werror=thread-safety
// (cmake/ShmsessionHelpers.cmake).
//
// Also `Mutex` and `MutexLock`: std::mutex and std::lock_guard with the
// annotations, for the process-private mutexes (libstdc++'s carry none).
//
// Thread safety: as std::mutex.
#pragma once

#include <mutex>

#if defined(__clang__)
#define SHMSESSION_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define SHMSESSION_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) SHMSESSION_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY SHMSESSION_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) SHMSESSION_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) SHMSESSION_THREAD_ANNOTATION(pt_guarded_by(x))
#define REQUIRES(...) SHMSESSION_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define ACQUIRE(...) SHMSESSION_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) SHMSESSION_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define EXCLUDES(...) SHMSESSION_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define NO_THREAD_SAFETY_ANALYSIS SHMSESSION_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace shmsession::shm::detail {

class CAPABILITY("mutex") Mutex {
 public:
  void lock() ACQUIRE() { m_.lock(); }
  void unlock() RELEASE() { m_.unlock(); }

 private:
  std::mutex m_;
};

class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& m) ACQUIRE(m) : m_(m) { m_.lock(); }
  ~MutexLock() RELEASE() { m_.unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& m_;
};

}  // namespace shmsession::shm::detail
