// Client: one process's client state of the sessions it serves, on top of a
// Store (the primary state). This is the request cycle of the seed claims:
//
//   Client client(store);
//   {
//     SessionHandle s = client.open("c0ffee");    // process lock taken or reused,
//                                                 // copy refreshed only if the primary moved
//     int n = s.get<Profile>("profile")->visits;  // read access: not tracked
//     s.edit<Cart>("cart")->items.push_back(i);   // mutable access: tracked
//     s.commit();                                 // compares tracked attributes with their
//   }                                             // benchmark; writes only the modified ones
//
// Comparison is by object graph (graph/) by default, or by the serialized
// bytes (ClientOptions::comparison, or SHMSESSION_COMPARE_BINARY(T) per
// type). Types declared SHMSESSION_IMMUTABLE_TYPE(T) are written once and
// never tracked or compared; edit<T> refuses them at compile time.
//
// Process locks: open() takes the session's process lock, or reuses the one
// this process still holds (sticky). When another process asks for it, the
// holder commits pending edits and releases at its next safe point: at once
// if no request of this process has the session open, else when the last
// SessionHandle of it is destroyed. release() gives a lock up early.
//
// Thread-level locks: each attribute has a reader/writer lock (TBB) held by
// ReadHandle (shared) and EditHandle (exclusive) for their lifetime: threads
// on different attributes proceed in parallel, a read waits for a writer of
// the same attribute. A thread holding handles must take further ones in
// ascending attribute-name order (commit and refresh take them in that
// order), and must not commit while holding a handle of the same session.
//
// Thread safety: a Client and its SessionHandles may be used by any number
// of threads of one process. One Client per Store (it owns the Store's
// release-request callback). Not usable across fork(): make a Client in the
// child.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "shm/store.hpp"
#include "sync/attribute_codec.hpp"
#include "sync/detail/client_state.hpp"

namespace shmsession::sync {

using detail::CommitOutcome;

struct ClientOptions {
  Comparison comparison = Comparison::ObjectGraph;
  std::chrono::milliseconds lock_timeout{5000};
  bool create_missing_sessions = true;  // open() of an absent session creates it
};

// Shared access to one attribute for as long as the handle lives.
template <class T>
class ReadHandle {
 public:
  ReadHandle(std::shared_lock<oneapi::tbb::rw_mutex> lock, std::shared_ptr<void> object)
      : lock_(std::move(lock)), object_(std::move(object)) {}
  const T& operator*() const noexcept { return *static_cast<const T*>(object_.get()); }
  const T* operator->() const noexcept { return static_cast<const T*>(object_.get()); }

 private:
  std::shared_lock<oneapi::tbb::rw_mutex> lock_;
  std::shared_ptr<void> object_;
};

// Exclusive, tracked access to one attribute for as long as the handle lives.
template <class T>
class EditHandle {
 public:
  EditHandle(std::unique_lock<oneapi::tbb::rw_mutex> lock, std::shared_ptr<void> object)
      : lock_(std::move(lock)), object_(std::move(object)) {}
  T& operator*() const noexcept { return *static_cast<T*>(object_.get()); }
  T* operator->() const noexcept { return static_cast<T*>(object_.get()); }

 private:
  std::unique_lock<oneapi::tbb::rw_mutex> lock_;
  std::shared_ptr<void> object_;
};

class Client;

// One request's access to a session; the request ends when it is destroyed.
class SessionHandle {
 public:
  SessionHandle(SessionHandle&& other) noexcept;
  SessionHandle& operator=(SessionHandle&&) = delete;
  ~SessionHandle();

  const std::string& id() const noexcept { return state_->id(); }
  LockToken token() const;

  // Read access. Throws: NotFound (no such attribute), InvalidArgument (it
  // holds another type), Corrupt.
  template <class T>
  ReadHandle<T> get(std::string_view name) {
    const detail::TypeOps& ops = detail::type_ops<T>();
    detail::Slot& s = existing(name);
    {
      std::shared_lock<oneapi::tbb::rw_mutex> r(s.lock);
      if (s.object && s.ops == &ops) return ReadHandle<T>(std::move(r), s.object);
    }
    {
      std::unique_lock<oneapi::tbb::rw_mutex> w(s.lock);
      state_->materialize(s, name, ops);
    }
    std::shared_lock<oneapi::tbb::rw_mutex> r(s.lock);
    if (!s.object || s.ops != &ops)  // removed or replaced between the two locks
      throw Error(Errc::NotFound, "attribute '" + std::string(name) + "' changed while being read; read it again");
    return ReadHandle<T>(std::move(r), s.object);
  }

  // Mutable access, tracked for the next commit. Throws: as get.
  template <class T>
  EditHandle<T> edit(std::string_view name) {
    static_assert(!is_immutable<T>::value, "an immutable type is written once: put a new value instead");
    detail::Slot& s = existing(name);
    std::unique_lock<oneapi::tbb::rw_mutex> w(s.lock);
    state_->materialize(s, name, detail::type_ops<T>());
    state_->prepare_edit(s);
    s.tracked = true;
    return EditHandle<T>(std::move(w), s.object);
  }

  // Sets an attribute (created if absent), tracked for the next commit.
  template <class T>
  void put(std::string_view name, T value) {
    const detail::TypeOps& ops = detail::type_ops<T>();
    detail::Slot& s = state_->slot(name);
    std::unique_lock<oneapi::tbb::rw_mutex> w(s.lock);
    if (!s.object && s.in_primary && !s.removed && detail::tag_of(s.benchmark_bytes, name) == ops.tag)
      state_->materialize(s, name, ops);  // so that putting an equal value writes nothing
    if (s.object && s.ops == &ops && !ops.immutable) state_->prepare_edit(s);
    s.object = std::make_shared<T>(std::move(value));
    s.ops = &ops;
    s.removed = false;
    s.tracked = true;
  }

  // Removes an attribute at the next commit; false if it was not there.
  bool remove(std::string_view name);
  bool contains(std::string_view name);

  // Writes the modified attributes in one atomic commit (see Client).
  // Throws: StaleToken (the lock was lost: reopen), SegmentFull, ...
  CommitOutcome commit();

 private:
  friend class Client;
  SessionHandle(Client* client, std::shared_ptr<detail::ClientState> state)
      : client_(client), state_(std::move(state)) {}
  detail::Slot& existing(std::string_view name);

  Client* client_;
  std::shared_ptr<detail::ClientState> state_;
};

class Client {
 public:
  explicit Client(Store& store, ClientOptions options = {});
  ~Client();  // commits pending edits and releases every lock it holds
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Starts a request on a session. Throws: LockTimeout, NotFound (absent and
  // create_missing_sessions off), StaleToken never (a lost lock is retaken).
  SessionHandle open(std::string_view id);
  SessionHandle open(std::string_view id, std::chrono::milliseconds timeout);
  // Commits pending edits and releases the session's lock now.
  void release(std::string_view id);
  bool holds(std::string_view id);
  Store& store() noexcept { return store_; }

 private:
  friend class SessionHandle;
  std::shared_ptr<detail::ClientState> state_for(std::string_view id, bool create);
  void take_lock(detail::ClientState& state, std::chrono::milliseconds timeout);
  void end_request(detail::ClientState& state);
  void on_release_request(const std::string& id);
  void flush_and_release(detail::ClientState& state) noexcept;

  Store& store_;
  const ClientOptions options_;
  std::mutex states_mutex_;
  std::unordered_map<std::string, std::shared_ptr<detail::ClientState>> states_;
};

}  // namespace shmsession::sync
