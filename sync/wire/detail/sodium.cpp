#include "sync/wire/detail/sodium.hpp"

#include <sodium.h>

#include "shm/error.hpp"

namespace shmsession::sync::wire::detail {

void ensure_sodium() {
  // sodium_init returns 0 the first time, 1 when already done, -1 on failure.
  static const int result = sodium_init();
  if (result < 0) throw Error(Errc::Io, "libsodium: sodium_init failed (no usable random source)");
}

}  // namespace shmsession::sync::wire::detail
