#include "shm/detail/robust_mutex.hpp"

#include <linux/futex.h>
#include <time.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "shm/detail/test_hooks.hpp"
#include "shm/error.hpp"

namespace shmsession::shm::detail {

void robust_mutex_init(RobustMutexStorage& m) {
  pthread_mutexattr_t attr;
  int rc = pthread_mutexattr_init(&attr);
  if (rc == 0) rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  if (rc == 0) rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  if (rc == 0) rc = pthread_mutex_init(&m.native, &attr);
  pthread_mutexattr_destroy(&attr);
  if (rc != 0) throw Error(Errc::Io, std::string("cannot initialize a robust mutex: ") + shmsession::errno_text(rc));
}

bool robust_mutex_plausible(const RobustMutexStorage& m, const RobustMutexStorage& reference) noexcept {
  return m.native.__data.__kind == reference.native.__data.__kind;
}

namespace {

// How often a waiter looks at the lock word again on its own. The robust
// futex protocol can lose a wake-up: an unlock wakes one waiter; if that
// waiter is killed before it takes the lock while another process has
// taken it meanwhile (without the waiters bit, which only a waiter sets),
// nobody is left to wake the others, and they sleep on a free lock until
// someone else contends for it, which on a retired generation is never.
// (The kernel covers the case where the lock is still free when the woken
// waiter dies, not this one. Seen in the kill campaign: a worker asleep
// 17 s on a free shard lock; reproduced by
// shard_crash_test/a_woken_waiter_killed_before_it_takes_the_lock_strands_nobody.)
// So no waiter sleeps unboundedly: a lost wake-up costs at most this long.
constexpr long kRecheckNs = 10'000'000;

timespec recheck_deadline(clockid_t clock) noexcept {
  timespec t{};
  ::clock_gettime(clock, &t);
  t.tv_nsec += kRecheckNs;
  if (t.tv_nsec >= 1'000'000'000) {
    t.tv_nsec -= 1'000'000'000;
    ++t.tv_sec;
  }
  return t;
}

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SHMSESSION_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define SHMSESSION_TSAN 1
#endif

// One bounded wait for the lock: 0, EOWNERDEAD, ETIMEDOUT or an error.
int lock_for_a_while(pthread_mutex_t& m) noexcept {
#ifdef SHMSESSION_TSAN
  // ThreadSanitizer (clang 14, gcc 12) does not intercept
  // pthread_mutex_clocklock and would miss the acquisition; timedlock's
  // CLOCK_REALTIME only changes the length of one re-check on a clock step.
  const timespec deadline = recheck_deadline(CLOCK_REALTIME);
  return pthread_mutex_timedlock(&m, &deadline);
#else
  const timespec deadline = recheck_deadline(CLOCK_MONOTONIC);
  return pthread_mutex_clocklock(&m, CLOCK_MONOTONIC, &deadline);
#endif
}

// How long a locker that found the lock held spins before it sleeps in the
// kernel: ~200 rounds of a load and a pause, ~5 us here (a pause is ~20 ns
// on the EPYC CI machines). The critical sections under these locks are
// short (a commit's publish, a lock hand-over, one session's copy: ~0.1 to
// 2 us), so the holder is usually about to let go; a sleep instead costs
// the waiter a futex wait, a wake-up and, when more processes are runnable
// than there are CPUs, a wait for a CPU of up to a scheduler tick (4 ms at
// HZ=250). Those waits made the p99 of shmbench cycle with 4 processes on
// 2 CPUs (~1,400 sleeps a second on shard locks at ~155k requests/s). A
// holder that is not running (preempted, or dead) costs the spinner this
// much at most.
constexpr int kSpinRounds = 200;

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Spins while the lock word names a live holder; tries the lock when it
// does not (free, or its holder died: the kernel clears the holder's TID
// and sets FUTEX_OWNER_DIED). EBUSY if the holder kept it throughout.
int spin_then_try(pthread_mutex_t& m) noexcept {
  run_test_hook(HookPoint::kRobustLockSpins);
  for (int round = 0; round < kSpinRounds; ++round) {
    if ((__atomic_load_n(&m.__data.__lock, __ATOMIC_RELAXED) & FUTEX_TID_MASK) == 0) {
      const int rc = pthread_mutex_trylock(&m);
      if (rc != EBUSY) return rc;
    }
    cpu_relax();
  }
  return EBUSY;
}

}  // namespace

bool RobustLockGuard::lock_raw() {
  // Uncontended: one compare-and-swap, no clock read.
  int rc = pthread_mutex_trylock(&m_.native);
  if (rc == EBUSY) rc = spin_then_try(m_.native);
  while (rc == EBUSY || rc == ETIMEDOUT) rc = lock_for_a_while(m_.native);
  if (rc == 0) return false;
  if (rc == EOWNERDEAD) return true;
  if (rc == ENOTRECOVERABLE)
    throw Error(Errc::Corrupt,
                "a lock in the store's segment is unrecoverable (its repair failed); run 'shmctl check'");
  throw Error(Errc::Io, std::string("cannot take a lock in the store's segment: ") + shmsession::errno_text(rc));
}

void RobustLockGuard::make_consistent() { pthread_mutex_consistent(&m_.native); }

RobustLockGuard::~RobustLockGuard() { pthread_mutex_unlock(&m_.native); }

}  // namespace shmsession::shm::detail
