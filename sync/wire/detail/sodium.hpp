// One-time libsodium initialization for sync/wire. sodium_init() must run
// before randombytes_* is used; it is idempotent and thread-safe, and this
// wrapper turns its failure (no usable entropy source) into an Error.
//
// Thread safety: may be called from any thread, any number of times.
#pragma once

namespace shmsession::sync::wire::detail {

// Throws: Error(Io) when libsodium cannot initialize (sodium_init() < 0).
void ensure_sodium();

}  // namespace shmsession::sync::wire::detail
