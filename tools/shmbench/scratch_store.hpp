// ScratchStore: a shmsession store that exists only for one benchmark
// phase. Its name is unique to the process ("shmbench_<pid>_<tag>"), a
// leftover of that name (a crashed earlier run with the same pid) is removed
// first, and the segment is removed when the ScratchStore goes away, when
// the run throws, and on SIGINT/SIGTERM/SIGHUP (see interrupt_cleanup.hpp).
//
// Thread safety: store() is a Store, usable from many threads; the guard
// itself belongs to one thread.
// Cross-process safety: other processes may attach by name(); only the
// creating process removes the segment, so a forked worker that leaves by
// any path never removes it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "shm/store.hpp"

namespace shmsession::bench {

class ScratchStore {
 public:
  // Throws shmsession::Error as Store::create.
  ScratchStore(std::string_view tag, std::uint64_t size_bytes);
  // The same with every option of the store (e.g. a longer change log).
  ScratchStore(std::string_view tag, const CreateOptions& options);
  ~ScratchStore();
  ScratchStore(const ScratchStore&) = delete;
  ScratchStore& operator=(const ScratchStore&) = delete;

  const std::string& name() const noexcept { return name_; }
  Store& store() noexcept { return *store_; }

 private:
  std::string name_;
  pid_t owner_;
  int cleanup_slot_ = -1;  // see interrupt_cleanup.hpp
  std::optional<Store> store_;
};

}  // namespace shmsession::bench
