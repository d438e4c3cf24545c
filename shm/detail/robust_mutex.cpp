#include "shm/detail/robust_mutex.hpp"

#include <cerrno>
#include <cstring>
#include <string>

#include "shm/error.hpp"

namespace shmsession::shm::detail {

void robust_mutex_init(RobustMutexStorage& m) {
  pthread_mutexattr_t attr;
  int rc = pthread_mutexattr_init(&attr);
  if (rc == 0) rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  if (rc == 0) rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  if (rc == 0) rc = pthread_mutex_init(&m.native, &attr);
  pthread_mutexattr_destroy(&attr);
  if (rc != 0) throw Error(Errc::Io, std::string("cannot initialize a robust mutex: ") + std::strerror(rc));
}

bool robust_mutex_plausible(const RobustMutexStorage& m, const RobustMutexStorage& reference) noexcept {
  return m.native.__data.__kind == reference.native.__data.__kind;
}

bool RobustLockGuard::lock_raw() {
  int rc = pthread_mutex_lock(&m_.native);
  if (rc == 0) return false;
  if (rc == EOWNERDEAD) return true;
  if (rc == ENOTRECOVERABLE)
    throw Error(Errc::Corrupt, "a lock in the store's segment is unrecoverable (its repair failed); run 'shmctl check'");
  throw Error(Errc::Io, std::string("cannot take a lock in the store's segment: ") + std::strerror(rc));
}

void RobustLockGuard::make_consistent() { pthread_mutex_consistent(&m_.native); }

RobustLockGuard::~RobustLockGuard() { pthread_mutex_unlock(&m_.native); }

}  // namespace shmsession::shm::detail
