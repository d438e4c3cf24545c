// SessionBridge: what the PHP save handler (bindings/php/php_shmsession.cpp)
// does with a store, free of PHP's API so that Boost.Test can drive it.
//
// A PHP session is a session of the store; each top-level key of $_SESSION
// is one attribute, whose value is the key's value in PHP's own
// serialization (serialized on its own, see session_frame.hpp). A request
// reads the session under the store's process lock (read), which it keeps
// until close(); its write commits only the keys whose bytes differ from
// what it read, and removes the keys it no longer has, so two requests
// that change different keys never undo each other.
//
// Thread safety: none; a PHP worker process runs one request at a time and
// keeps one bridge per store name for its whole life. Cross-process: every
// worker has its own; the store's lock serializes requests on one session
// (FIFO, sleeping, the holder asked to release). A worker killed while it
// holds a session's lock loses it within the store's dead-holder bound.
// Safe after fork() only if no bridge was made before it (php-fpm's master
// never makes one: handlers run in the workers).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "shm/lock.hpp"
#include "shm/store.hpp"

namespace shmsession::php {

struct BridgeOptions {
  bool auto_create = true;                           // create a missing store (else: an error naming it)
  std::uint64_t store_bytes = kDefaultSegmentBytes;  // size of a store this bridge creates
  std::chrono::milliseconds lock_wait{30000};        // longest wait for a session's lock
  bool write_all = false;                            // write every key, changed or not
};

// The store's attribute name of a PHP key, and back. Keys that are 1-255
// printable ASCII characters and do not start with '%' are kept as they
// are; any other key becomes '%' followed by its bytes, each byte outside
// printable ASCII (and '%') as %XX. Throws: Error(InvalidArgument) when the
// name would pass the store's 255 bytes (attribute_key: Error(Corrupt) for
// a name no attribute_name made).
std::string attribute_name(std::string_view key);
std::string attribute_key(std::string_view name);

class SessionBridge {
 public:
  // Attaches to the store `name`, or creates it (options.auto_create).
  // Throws: Error(NotFound) naming the store when it is missing and may not
  // be created; InvalidArgument for a bad name; Io.
  SessionBridge(std::string_view store_name, const BridgeOptions& options);
  SessionBridge(const SessionBridge&) = delete;
  SessionBridge& operator=(const SessionBridge&) = delete;
  ~SessionBridge();

  const std::string& store_name() const noexcept { return store_.name(); }
  void set_options(const BridgeOptions& options) { options_ = options; }

  // Takes the session's lock, waiting in its queue for at most
  // options.lock_wait, creates the session if it does not exist (idle
  // timeout `idle_timeout_s`), and returns its keys, framed
  // (session_frame.hpp). A lock held for another id is released first.
  // Throws: Error(LockTimeout) when the lock was not granted in time
  // (nothing held then), InvalidArgument (bad id), SegmentFull, Corrupt.
  std::string read(std::string_view id, std::uint32_t idle_timeout_s);

  // Commits the keys of `frame` that differ from what read() returned, and
  // removes the keys read() returned that `frame` lacks: one atomic commit.
  // Requires: read(id) succeeded and the lock is still held. A session
  // removed meanwhile (destroyed, expired) is created again and written
  // whole. Returns how many attributes were written or removed.
  // Throws: Error(StaleToken) when the lock was lost (forced unlock, lease)
  // and nothing was written; InvalidArgument (a bad frame or key), SegmentFull.
  std::size_t write(std::string_view id, std::string_view frame, std::uint32_t idle_timeout_s);

  // Releases the lock if this bridge holds one. Never throws.
  void close() noexcept;

  // Removes the session (and forgets its lock). Returns whether it existed.
  bool destroy(std::string_view id);
  // Creates an empty session; false if the id is taken.
  bool create(std::string_view id, std::uint32_t idle_timeout_s);
  // Whether the session exists (and has not expired).
  bool exists(std::string_view id) const;
  // Refreshes the session's last access; false if it is gone.
  bool touch(std::string_view id);
  // Frees the sessions idle past their timeout; returns how many.
  std::uint64_t collect_garbage();

  // The id whose lock is held, if any (tests).
  const std::optional<std::string>& held() const noexcept { return held_id_; }

 private:
  void take_lock(std::string_view id, std::uint32_t idle_timeout_s);

  BridgeOptions options_;
  Store store_;
  std::optional<std::string> held_id_;
  std::optional<LockToken> token_;
  std::map<std::string, std::string, std::less<>> seen_;  // attribute name -> bytes, as read
};

}  // namespace shmsession::php
