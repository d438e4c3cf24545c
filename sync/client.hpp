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
// With LockPolicy::PerRequest the holder does that at the end of every
// request instead (the last SessionHandle of the session destroyed): no
// other process ever has to ask, which suits any-worker-serves-any-request
// routing (PHP-FPM, SO_REUSEPORT); the copy is kept, so the next open()
// takes the free lock and copies only the attributes that moved meanwhile.
// LockPolicy::Adaptive (the default) chooses per session by evidence: once
// another process asks for a session, this process releases it at the end
// of each of its requests; when it has taken the free lock back several
// times in a row with nobody having held or written it in between, it
// keeps it (sticky), and each relapse doubles the quiet spell needed next
// time (8, 16, ... 256 requests). A session without evidence of its own
// follows the Client's lean: per request while most of the Client's recent
// evidence (release requests, sessions found moved or held by another
// process, against locks kept and reused) says its sessions are shared.
// When the lean turns so, the next open() also releases the idle locks of
// such sessions the Client still holds.
// open(id, OpenOptions) overrides the policy for one request.
//
// Bounded client state: a Client keeps at most `max_sessions` sessions (a
// copy and a sticky process lock each) and about `max_bytes` of copies;
// a session not opened for `max_idle` goes too. Beyond a bound, open()
// drops idle sessions, least recently used first: pending edits are
// committed, the lock released, the copy freed (flush). trim() applies the
// bounds now. A session removed or expired in the store (by any process)
// is dropped at the next open() or trim(). forget(id) drops one session.
// Sessions in use (a SessionHandle alive) are never dropped, so a Client
// holds more only while more are in use at once.
//
// No silent loss: a flush that fails (the commit behind a release request,
// an eviction, forget, release) keeps the lock and the edits; the failure
// is counted (Client::stats, and the store's `unflushed edits` that shmctl
// info shows) and passed to `on_unflushed_edits`; the next open() of that
// session throws the original error once (code and message), after which
// the edits are still pending and the next commit retries them. A waiter
// for that lock meanwhile gets LockTimeout (or the lease revokes the lock:
// see shm/lock.hpp). Edits that can never be committed are reported the
// same way with `dropped` set: the session was removed or expired, the
// lock was revoked and the primary moved, or the Client was destroyed with
// a commit failing (without a callback, the destructor writes one line per
// session to stderr).
//
// A session that vanished while this process held it (removed, expired)
// starts afresh at the next open(): a new session, or NotFound when
// create_missing_sessions is off. A SessionHandle whose session vanished
// in the middle of a request gets NotFound from commit (StaleToken if the
// lock was revoked): the caller may open it again.
//
// Thread-level locks: each attribute has a reader/writer lock (TBB) held by
// ReadHandle (shared) and EditHandle (exclusive) for their lifetime: threads
// on different attributes proceed in parallel, a read waits for a writer of
// the same attribute. A thread that needs several attributes at once takes
// them in one call, `edit<A, B>("a", "b")`, which locks in a safe order. A
// thread holding handles may take further ones only in ascending
// attribute-name order, and must not commit or open the same session
// while holding a handle of it; with `check_handle_order` (on by default
// in builds without NDEBUG) a call that breaks this throws InvalidArgument
// instead of risking a deadlock. Handles are released on the thread that
// took them.
//
// Thread safety: a Client and its SessionHandles may be used by any number
// of threads of one process. One Client per Store (it owns the Store's
// release-request callback). Not usable across fork(): make a Client in the
// child.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <oneapi/tbb/rw_mutex.h>
#include <boost/unordered/unordered_flat_map.hpp>

#include "shm/store.hpp"
#include "sync/attribute_codec.hpp"
#include "sync/commit_outcome.hpp"
#include "sync/session_gate.hpp"

namespace shmsession::sync {

// Edits a flush could not commit (see Client, "No silent loss").
struct UnflushedEdits {
  std::string session;
  std::vector<std::string> attributes;  // names with pending edits
  Errc code = Errc::Io;                 // of the failed commit
  std::string message;
  // false: the edits and the lock are kept, the next open() throws this
  // error once and the next commit retries them. true: they are gone (the
  // session was removed or expired, the lock was revoked and the primary
  // moved, or the Client was destroyed).
  bool dropped = false;
};

// When a Client gives a session's process lock up (see Client).
enum class LockPolicy {
  Sticky,      // keep it until another process asks for it
  PerRequest,  // release it at the end of every request
  Adaptive,    // per session: sticky until other processes ask, then per request
};

struct ClientOptions {
  Comparison comparison = Comparison::ObjectGraph;
  LockPolicy lock_policy = LockPolicy::Adaptive;
  std::chrono::milliseconds lock_timeout{5000};
  bool create_missing_sessions = true;  // open() of an absent session creates it
  // Bounds of the client state (see Client). A worker serving many
  // sessions keeps the most recent ones (a revisit finds the copy and the
  // lock) and lets the rest go. 0 for max_idle: no idle bound. Idle time is
  // read on the coarse monotonic clock: to within its tick (1-4 ms).
  std::size_t max_sessions = 4096;
  std::size_t max_bytes = std::size_t{64} << 20;  // copies, as counted by ClientStats::bytes
  std::chrono::milliseconds max_idle{std::chrono::minutes(10)};
  // Called (on the thread of the failed flush: a request thread, or the
  // release-request watcher) for every flush that failed. Must not call
  // into this Client. Without it, a Client's destructor reports dropped
  // edits on stderr.
  std::function<void(const UnflushedEdits&)> on_unflushed_edits;
  // Throw InvalidArgument for a handle taken out of order (see Client).
  // Unset: on in builds of the library without NDEBUG.
  std::optional<bool> check_handle_order;
  // Checked at every open(), with the session's process lock held, before
  // the copy is refreshed (see SessionGate): e.g. a HostGate, so that this
  // host serves only the sessions it owns among several hosts. Its
  // refusal is open()'s error, and the process lock is let go.
  std::shared_ptr<SessionGate> gate;
};

struct ClientStats {
  std::size_t sessions = 0;                   // kept
  std::size_t bytes = 0;                      // of the kept copies: values (encoded size twice once decoded),
                                              // benchmark graphs, names, a fixed overhead per attribute and session
  std::size_t locks_held = 0;                 // process locks held by this Client
  std::uint64_t evictions = 0;                // sessions dropped by the bounds, trim and forget
  std::uint64_t vanished = 0;                 // sessions dropped because the store removed or expired them
  std::uint64_t unflushed = 0;                // flushes that failed (on_unflushed_edits calls)
  std::uint64_t dropped_edits = 0;            // of which the edits were gone
  std::uint64_t released_at_request_end = 0;  // locks released at a request's end by the policy
  std::uint64_t released_on_request = 0;      // locks released because another process asked
  std::size_t sessions_per_request = 0;       // kept sessions the adaptive policy releases per request
  bool lean_per_request = false;              // sessions without evidence of their own are released per request
};

// Options of one open() (see Client::open).
struct OpenOptions {
  std::optional<std::chrono::milliseconds> timeout;  // unset: ClientOptions::lock_timeout
  std::optional<LockPolicy> lock_policy;             // unset: ClientOptions::lock_policy
};

namespace detail {
class ClientState;
struct Slot;
}  // namespace detail

class SessionHandle;

// While ClientOptions::check_handle_order is on, a handle's entry in its
// thread's list of held handles, for as long as the handle lives (else
// empty: nothing to do). Move-only.
class HandleMark {
 public:
  HandleMark() = default;
  HandleMark(HandleMark&& other) noexcept : id_(std::exchange(other.id_, 0)) {}
  HandleMark& operator=(HandleMark&& other) noexcept {
    if (this != &other) {
      if (id_ != 0) forget();
      id_ = std::exchange(other.id_, 0);
    }
    return *this;
  }
  ~HandleMark() {
    if (id_ != 0) forget();
  }

 private:
  friend class SessionHandle;
  explicit HandleMark(std::uint64_t id) noexcept : id_(id) {}
  void forget() noexcept;

  std::uint64_t id_ = 0;
};

class SessionHandle;

// Shared access to one attribute for as long as the handle lives. A
// handle points at the slot's object without holding a reference to it:
// the slot's lock, which the handle holds, keeps the object in place (it
// is replaced or dropped only under that lock held exclusively), where a
// reference taken and given back was two atomic read-modify-writes per
// handle. Like its lock, a handle must not outlive its SessionHandle.
template <class T>
class ReadHandle {
 public:
  const T& operator*() const noexcept { return *object_; }
  const T* operator->() const noexcept { return object_; }

 private:
  friend class SessionHandle;
  ReadHandle(std::shared_lock<oneapi::tbb::rw_mutex> lock, const void* object, HandleMark mark)
      : mark_(std::move(mark)), lock_(std::move(lock)), object_(static_cast<const T*>(object)) {}

  HandleMark mark_;  // destroyed after the lock is released
  std::shared_lock<oneapi::tbb::rw_mutex> lock_;
  const T* object_;
};

// Exclusive, tracked access to one attribute for as long as the handle
// lives (held as ReadHandle holds its object).
template <class T>
class EditHandle {
 public:
  T& operator*() const noexcept { return *object_; }
  T* operator->() const noexcept { return object_; }

 private:
  friend class SessionHandle;
  EditHandle(std::unique_lock<oneapi::tbb::rw_mutex> lock, void* object, HandleMark mark)
      : mark_(std::move(mark)), lock_(std::move(lock)), object_(static_cast<T*>(object)) {}

  HandleMark mark_;
  std::unique_lock<oneapi::tbb::rw_mutex> lock_;
  T* object_;
};

class Client;

// One request's access to a session; the request ends when it is destroyed.
class SessionHandle {
 public:
  SessionHandle(SessionHandle&& other) noexcept;
  SessionHandle& operator=(SessionHandle&&) = delete;
  ~SessionHandle();

  const std::string& id() const noexcept;
  LockToken token() const;

  // Read access. Throws: NotFound (no such attribute), InvalidArgument (it
  // holds another type, or a handle out of order), Corrupt.
  template <class T>
  ReadHandle<T> get(std::string_view name) {
    ReadAccess a = read_access(name, type_ops<T>());
    return ReadHandle<T>(std::move(a.lock), a.object, std::move(a.mark));
  }

  // Mutable access, tracked for the next commit. Throws: as get.
  template <class T>
  EditHandle<T> edit(std::string_view name) {
    static_assert(!is_immutable<T>::value, "an immutable type is written once: put a new value instead");
    EditAccess a = edit_access(name, type_ops<T>());
    return EditHandle<T>(std::move(a.lock), a.object, std::move(a.mark));
  }

  // Mutable access to several attributes at once, in any order of names:
  //   auto [cart, profile] = s.edit<Cart, Profile>("cart", "profile");
  // The locks are taken in ascending name order whatever the order given.
  // Throws: as edit; InvalidArgument for a name given twice.
  template <class... T, class... Names>
  requires(sizeof...(T) >= 2 &&
           sizeof...(T) == sizeof...(Names)) std::tuple<EditHandle<T>...> edit(const Names&... names) {
    static_assert((!is_immutable<T>::value && ...), "an immutable type is written once: put a new value instead");
    constexpr std::size_t n = sizeof...(T);
    const std::array<std::string_view, n> name{std::string_view(names)...};
    const std::array<const TypeOps*, n> ops{&type_ops<T>()...};
    std::array<EditAccess, n> access;
    edit_all(name.data(), ops.data(), access.data(), n);
    return make_edits<T...>(access, std::make_index_sequence<n>{});
  }

  // Sets an attribute (created if absent), tracked for the next commit.
  template <class T>
  void put(std::string_view name, T value) {
    put_object(name, type_ops<T>(), std::make_shared<T>(std::move(value)));
  }

  // Removes an attribute at the next commit; false if it was not there.
  bool remove(std::string_view name);
  bool contains(std::string_view name);

  // Writes the modified attributes in one atomic commit (see Client).
  // Throws: StaleToken (the lock was lost: reopen), SegmentFull, ...
  CommitOutcome commit();

 private:
  friend class Client;
  // A held attribute: its lock, its object (of the type asked for) and its
  // order mark, which the handle takes over.
  struct ReadAccess {
    std::shared_lock<oneapi::tbb::rw_mutex> lock;
    const void* object = nullptr;
    HandleMark mark;
  };
  struct EditAccess {
    std::unique_lock<oneapi::tbb::rw_mutex> lock;
    void* object = nullptr;
    HandleMark mark;
  };

  SessionHandle(Client* client, std::shared_ptr<detail::ClientState> state);
  // What get, edit and put do whatever the type (sync/client.cpp).
  ReadAccess read_access(std::string_view name, const TypeOps& ops);
  EditAccess edit_access(std::string_view name, const TypeOps& ops);
  // Requires: n >= 2. Takes the locks in ascending name order.
  void edit_all(const std::string_view* names, const TypeOps* const* ops, EditAccess* out, std::size_t n);
  void put_object(std::string_view name, const TypeOps& ops, std::shared_ptr<void> object);
  detail::Slot& existing(std::string_view name);
  // With check_handle_order: throws InvalidArgument if this thread holds a
  // handle of this session named `name` or above.
  void check_order(std::string_view name, const char* what) const;
  HandleMark mark(std::string_view name) const;
  template <class... T, std::size_t... I, std::size_t N>
  static std::tuple<EditHandle<T>...> make_edits(std::array<EditAccess, N>& access, std::index_sequence<I...>) {
    return std::tuple<EditHandle<T>...>(
        EditHandle<T>(std::move(access[I].lock), access[I].object, std::move(access[I].mark))...);
  }

  Client* client_;
  std::shared_ptr<detail::ClientState> state_;
};

class Client {
 public:
  explicit Client(Store& store, ClientOptions options = {});
  // Commits pending edits and releases every lock it holds; edits whose
  // commit fails are reported (on_unflushed_edits, else stderr), dropped.
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Starts a request on a session. Throws: LockTimeout; NotFound (absent,
  // or vanished while held, and create_missing_sessions off); the error of
  // a failed flush of this session's edits, once (see "No silent loss");
  // InvalidArgument (this thread holds a handle of it, with
  // check_handle_order). StaleToken never (a lost lock is retaken).
  SessionHandle open(std::string_view id);
  SessionHandle open(std::string_view id, std::chrono::milliseconds timeout);
  // With a lock policy for this request: PerRequest releases the lock when
  // the session's last request ends (whichever request asked), Sticky keeps
  // it then (release requests are still honoured), Adaptive lets the
  // evidence decide (see above).
  SessionHandle open(std::string_view id, const OpenOptions& options);
  // Commits pending edits and releases the session's lock now; the copy
  // stays. Throws the commit's error (the lock and the edits kept).
  void release(std::string_view id);
  // Commits pending edits, releases the lock and drops the copy. No-op for
  // a session not kept. Throws: the commit's error (everything kept);
  // InvalidArgument while a request of this process has it open.
  void forget(std::string_view id);
  // Applies the bounds now: drops sessions the store removed or expired,
  // sessions idle for max_idle, and the least recently used beyond
  // max_sessions / max_bytes. open() does the same.
  void trim();
  bool holds(std::string_view id);
  ClientStats stats();
  const ClientOptions& options() const noexcept { return options_; }
  Store& store() noexcept { return store_; }

 private:
  friend class SessionHandle;
  enum class Flush { Release, Evict, Destroy };
  // The kept state of `id`; made (and kept) if absent and `create`. With
  // `opening` it becomes the most recently used.
  std::shared_ptr<detail::ClientState> state_for(std::string_view id, bool create, bool opening = false);
  // How the lock was had: this process held it still, took it free, or
  // had to wait for another holder.
  enum class Took { Reused, Free, Waited };
  Took take_lock(detail::ClientState& state, std::chrono::milliseconds timeout);
  // The adaptive policy's evidence (open_mutex held).
  void note_open(detail::ClientState& state, Took took, bool moved);
  void note_asked(detail::ClientState& state);
  // Whether the request ending now releases the lock by policy.
  bool releases_at_end(const detail::ClientState& state) const;
  // Moves lean_ on evidence that sessions are shared (true) or kept.
  void lean(bool shared) noexcept;
  void release_idle_undecided();
  void list_kept_undecided(const std::shared_ptr<detail::ClientState>& state);
  void open_locked(detail::ClientState& state, std::chrono::milliseconds timeout);
  // options_.gate->admit; on a refusal, lets the process lock go.
  void admit(detail::ClientState& state, std::chrono::milliseconds timeout);
  void end_request(const std::shared_ptr<detail::ClientState>& held);
  void on_release_request(const std::string& id);
  // Commits pending edits and releases the lock (open_mutex held). Returns
  // false if the commit failed and the lock and edits were kept.
  bool flush_and_release(detail::ClientState& state, Flush why) noexcept;
  void report(detail::ClientState& state, std::vector<std::string> names, Errc code, std::string message,
              bool dropped) noexcept;
  // Drops `state` from the client state if it is idle, flushing it first;
  // false if it could not be (in use, or the flush failed).
  bool drop(const std::shared_ptr<detail::ClientState>& state);
  void drop_vanished();
  // Drops idle sessions beyond the bounds, leaving `room` sessions free.
  void enforce_bounds(std::size_t room);
  void account(detail::ClientState& state);

  Store& store_;
  const ClientOptions options_;
  const bool check_order_;
  std::mutex states_mutex_;
  // Kept sessions, and the same in least recently opened order (front:
  // most recent). A state is in lru_ unless drop() is working on it.
  // Transparent: open(id) looks a session up by the caller's string_view,
  // without building a std::string (an allocation per request).
  struct IdHash {
    std::size_t operator()(std::string_view id) const noexcept { return std::hash<std::string_view>{}(id); }
  };
  // Open addressing, keyed by a view of the state's own id (which the
  // value keeps alive): a lookup reads a metadata group, a slot and the id,
  // where a node map also read its bucket, node and key copy.
  boost::unordered_flat_map<std::string_view, std::shared_ptr<detail::ClientState>, IdHash> states_;
  std::list<std::shared_ptr<detail::ClientState>> lru_;
  // client_ms() before which no state kept can be idle for max_idle
  // (enforce_bounds); 0: look. Guarded by states_mutex_.
  std::uint64_t idle_check_due_ms_ = 0;
  std::size_t bytes_ = 0;  // sum of the kept states' footprint
  std::uint64_t evictions_ = 0;
  std::uint64_t vanished_ = 0;
  std::atomic<std::uint64_t> unflushed_{0};
  std::atomic<std::uint64_t> dropped_edits_{0};
  std::atomic<std::uint64_t> released_at_end_{0};
  std::atomic<std::uint64_t> released_on_request_{0};
  // The adaptive policy's lean, 0..kLeanOne: towards kLeanOne as this
  // Client's sessions turn out shared between processes (see Client).
  static constexpr std::uint32_t kLeanOne = 1u << 16;
  std::atomic<std::uint32_t> lean_{0};
  std::atomic<bool> sweep_{false};  // the lean turned to per-request: release_idle_undecided due
  // Guarded by states_mutex_: the sessions whose lock a request's end kept
  // on the lean's word since the last sweep (ClientState::kept_listed).
  std::vector<std::weak_ptr<detail::ClientState>> kept_undecided_;
  // Removed sessions: the change-log position read up to, and the store's
  // retired count seen there.
  std::mutex vanish_mutex_;
  std::uint64_t change_pos_ = 0;
  std::uint64_t retired_seen_ = 0;
};

}  // namespace shmsession::sync
