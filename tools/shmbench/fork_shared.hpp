// ForkShared<T>: one T in an anonymous MAP_SHARED mapping, made before
// run_in_processes forks, so that the parent and every worker see the same
// object: a place where workers of one measurement meet (who holds a lock,
// when it was released) and leave figures that WorkerSample does not carry.
//
// Thread safety: T's own; the wrapper only maps and unmaps.
// Cross-process safety: T must hold no pointers and its atomics must be
// lock-free (address-free), as for anything placed in shared memory. Only
// the process that made the mapping destroys T; a forked worker leaves with
// _exit (process_group.hpp) and never runs the destructor.
#pragma once

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "shm/error.hpp"

namespace shmsession::bench {

template <class T>
class ForkShared {
  static_assert(std::is_default_constructible_v<T>, "constructed in place in the mapping");

 public:
  // Throws std::runtime_error if the mapping cannot be made.
  ForkShared() {
    void* base = ::mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) throw std::runtime_error(std::string("mmap: ") + shmsession::errno_text(errno));
    object_ = new (base) T{};
  }
  ~ForkShared() {
    object_->~T();
    ::munmap(object_, sizeof(T));
  }
  ForkShared(const ForkShared&) = delete;
  ForkShared& operator=(const ForkShared&) = delete;

  T& operator*() const noexcept { return *object_; }
  T* operator->() const noexcept { return object_; }

 private:
  T* object_ = nullptr;
};

}  // namespace shmsession::bench
