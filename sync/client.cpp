#include "sync/client.hpp"

#include <iostream>

#include "shm/change_feed.hpp"
#include "sync/detail/client_state.hpp"

#include "shm/detail/clock.hpp"
#include "shm/detail/lock_probe.hpp"
#include "shm/detail/test_hooks.hpp"

namespace shmsession::sync {

namespace detail {

// The handles a thread holds (only with check_handle_order): session state
// and attribute name, for the order check.
struct HeldHandle {
  const void* state;
  std::string name;
  std::uint64_t id;
};
thread_local std::vector<HeldHandle> held_handles;
thread_local std::uint64_t next_held_handle = 0;

// Throws InvalidArgument if this thread holds a handle of `state` whose
// name is not below `name` (`name` empty: any handle of `state`).
void check_handle_order(const void* state, const std::string& session, std::string_view name, const char* what) {
  for (const HeldHandle& h : held_handles) {
    if (h.state != state) continue;
    if (name.empty())
      throw Error(Errc::InvalidArgument, std::string(what) + " of session '" + session +
                                             "' while this thread holds a handle of its attribute '" + h.name +
                                             "': release the handles first");
    if (h.name >= name)
      throw Error(Errc::InvalidArgument,
                  std::string(what) + " '" + std::string(name) + "' of session '" + session +
                      "' while this thread holds a handle of '" + h.name +
                      "': take handles in ascending name order, or several at once with edit<A, B>(...)");
  }
}

}  // namespace detail

namespace {

bool default_check_order() {
#ifdef NDEBUG
  return false;
#else
  return true;
#endif
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

// ---- SessionHandle ---------------------------------------------------------

void HandleMark::forget() noexcept {
  for (auto it = detail::held_handles.begin(); it != detail::held_handles.end(); ++it)
    if (it->id == id_) {
      detail::held_handles.erase(it);
      break;
    }
}

SessionHandle::SessionHandle(Client* client, std::shared_ptr<detail::ClientState> state)
    : client_(client), state_(std::move(state)) {}

const std::string& SessionHandle::id() const noexcept { return state_->id(); }

void SessionHandle::check_order(std::string_view name, const char* what) const {
  if (state_->check_order) detail::check_handle_order(state_.get(), state_->id(), name, what);
}

HandleMark SessionHandle::mark(std::string_view name) const {
  if (!state_->check_order) return HandleMark();
  const std::uint64_t id = ++detail::next_held_handle;
  detail::held_handles.push_back({state_.get(), std::string(name), id});
  return HandleMark(id);
}

SessionHandle::ReadAccess SessionHandle::read_access(std::string_view name, const TypeOps& ops) {
  detail::Slot& s = existing(name);
  check_order(name, "get");
  {
    std::shared_lock<oneapi::tbb::rw_mutex> r(s.lock);
    if (s.object && s.ops == &ops) return ReadAccess{std::move(r), s.object.get(), mark(name)};
  }
  {
    std::unique_lock<oneapi::tbb::rw_mutex> w(s.lock);
    state_->materialize(s, name, ops);
  }
  std::shared_lock<oneapi::tbb::rw_mutex> r(s.lock);
  if (!s.object || s.ops != &ops)  // removed or replaced between the two locks
    throw Error(Errc::NotFound, "attribute '" + std::string(name) + "' changed while being read; read it again");
  return ReadAccess{std::move(r), s.object.get(), mark(name)};
}

SessionHandle::EditAccess SessionHandle::edit_access(std::string_view name, const TypeOps& ops) {
  detail::Slot& s = existing(name);
  check_order(name, "edit");
  std::unique_lock<oneapi::tbb::rw_mutex> w(s.lock);
  state_->materialize(s, name, ops);
  s.tracked = true;
  return EditAccess{std::move(w), s.object.get(), mark(name)};
}

void SessionHandle::edit_all(const std::string_view* names, const TypeOps* const* ops, EditAccess* out, std::size_t n) {
  boost::container::small_vector<std::size_t, 4> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return names[a] < names[b]; });
  for (std::size_t i = 1; i < n; ++i)
    if (names[order[i]] == names[order[i - 1]])
      throw Error(Errc::InvalidArgument, "attribute '" + std::string(names[order[i]]) + "' named twice in one edit");
  boost::container::small_vector<detail::Slot*, 4> slot(n);
  for (std::size_t i = 0; i < n; ++i) slot[i] = &existing(names[i]);
  check_order(names[order[0]], "edit");
  for (std::size_t i : order) out[i].lock = std::unique_lock<oneapi::tbb::rw_mutex>(slot[i]->lock);
  for (std::size_t i = 0; i < n; ++i) state_->materialize(*slot[i], names[i], *ops[i]);
  for (std::size_t i = 0; i < n; ++i) {
    slot[i]->tracked = true;
    out[i].object = slot[i]->object.get();
    out[i].mark = mark(names[i]);
  }
}

void SessionHandle::put_object(std::string_view name, const TypeOps& ops, std::shared_ptr<void> object) {
  detail::Slot& s = state_->slot(name);
  check_order(name, "put");
  std::unique_lock<oneapi::tbb::rw_mutex> w(s.lock);
  s.object = std::move(object);
  s.ops = &ops;
  s.removed = false;
  s.tracked = true;
}

SessionHandle::SessionHandle(SessionHandle&& other) noexcept : client_(other.client_), state_(std::move(other.state_)) {
  other.client_ = nullptr;
}

SessionHandle::~SessionHandle() {
  if (client_ != nullptr && state_) client_->end_request(state_);
}

LockToken SessionHandle::token() const {
  std::optional<LockToken> t = state_->token();
  if (!t) throw Error(Errc::StaleToken, "the lock of session '" + state_->id() + "' was released");
  return *t;
}

detail::Slot& SessionHandle::existing(std::string_view name) {
  detail::Slot* s = state_->existing_slot(name);
  if (s == nullptr)
    throw Error(Errc::NotFound, "session '" + state_->id() + "' has no attribute '" + std::string(name) + "'");
  return *s;
}

bool SessionHandle::contains(std::string_view name) {
  detail::Slot* s = state_->existing_slot(name);
  if (s == nullptr) return false;
  check_order(name, "contains");
  std::shared_lock<oneapi::tbb::rw_mutex> r(s->lock);
  return !s->removed && (s->object || s->in_primary);
}

bool SessionHandle::remove(std::string_view name) {
  detail::Slot* s = state_->existing_slot(name);
  if (s == nullptr) return false;
  check_order(name, "remove");
  std::unique_lock<oneapi::tbb::rw_mutex> w(s->lock);
  bool present = !s->removed && (s->object || s->in_primary);
  s->removed = true;
  s->object.reset();
  s->ops = nullptr;
  s->tracked = true;
  return present;
}

CommitOutcome SessionHandle::commit() {
  check_order({}, "commit");
  return state_->commit(client_->store_, token());
}

// ---- Client ----------------------------------------------------------------

Client::Client(Store& store, ClientOptions options)
    : store_(store),
      options_(std::move(options)),
      check_order_(options_.check_handle_order.value_or(default_check_order())) {
  const ChangeFeed feed(store_);
  change_pos_ = feed.next_seq();
  retired_seen_ = feed.retired_count();
  store_.on_release_request([this](const std::string& id, LockToken) { on_release_request(id); });
}

Client::~Client() {
  store_.on_release_request({});
  std::lock_guard<std::mutex> g(states_mutex_);
  for (auto& [id, state] : states_) {
    std::lock_guard<std::mutex> open_guard(state->open_mutex);
    flush_and_release(*state, Flush::Destroy);
  }
}

std::shared_ptr<detail::ClientState> Client::state_for(std::string_view id, bool create, bool opening) {
  std::lock_guard<std::mutex> g(states_mutex_);
  auto it = states_.find(id);
  if (it != states_.end()) {
    detail::ClientState& s = *it->second;
    if (opening) {  // most recently used now
      ++s.opens;
      s.last_used_ms = shm::detail::client_ms();
      if (s.in_lru) {
        if (std::next(s.lru_pos) == lru_.end()) idle_check_due_ms_ = 0;  // the oldest moves: look again
        lru_.splice(lru_.begin(), lru_, s.lru_pos);
      }
    }
    return it->second;
  }
  if (!create) return nullptr;
  auto state = std::make_shared<detail::ClientState>(std::string(id), options_.comparison, check_order_);
  state->opens = 1;
  state->kept = true;
  state->last_used_ms = shm::detail::client_ms();
  lru_.push_front(state);
  state->lru_pos = lru_.begin();
  state->in_lru = true;
  states_.emplace(std::string_view(state->id()), state);
  return state;
}

Client::Took Client::take_lock(detail::ClientState& state, std::chrono::milliseconds timeout) {
  // Sticky: reuse it. The refresh that follows presents the token: if it was
  // revoked or the session vanished meanwhile, open_locked takes it anew.
  if (state.token()) return Took::Reused;
  auto take = [&] {
    if (std::optional<LockToken> free = store_.try_acquire(state.id())) {
      state.set_token(*free);
      return Took::Free;
    }
    state.set_token(store_.acquire(state.id(), timeout));
    return Took::Waited;
  };
  try {
    return take();
  } catch (const Error& e) {
    if (e.code() != Errc::NotFound || !options_.create_missing_sessions) throw;
    store_.create_session(state.id());
    return take();
  }
}

// Takes the lock and refreshes the copy (open_mutex held). A session
// removed or expired between the two (an operator's reset, the sweeper)
// starts afresh: the lock died with it.
void Client::open_locked(detail::ClientState& state, std::chrono::milliseconds timeout) {
  for (int attempt = 1;; ++attempt) {
    try {
      const Took took = take_lock(state, timeout);
      if (options_.gate) admit(state, timeout);
      shm::detail::run_lock_probe(shm::LockProbe::kRefreshBegins, state.id());
      detail::RefreshOutcome refreshed = state.refresh(store_, *state.token());
      if (!refreshed.first) note_open(state, took, refreshed.moved);  // a first copy says nothing of sharing
      if (!refreshed.dropped.empty())
        report(state, std::move(refreshed.dropped), Errc::StaleToken,
               "session '" + state.id() + "' changed in the store under uncommitted edits (the lock was lost)", true);
      return;
    } catch (const Error& e) {
      if ((e.code() != Errc::NotFound && e.code() != Errc::StaleToken) || attempt == 8) throw;
      state.set_token(std::nullopt);
      if (e.code() == Errc::NotFound && !options_.create_missing_sessions) throw;
    }
  }
}

// The gate refused the session: the process lock goes too (another
// process of this host may be admitted where this one was not, and
// nothing of this one's is served meanwhile). Edits pending from a failed
// flush stay pending; a lock already lost needs no release.
void Client::admit(detail::ClientState& state, std::chrono::milliseconds timeout) {
  try {
    options_.gate->admit(store_, state.id(), *state.token(), timeout);
  } catch (...) {
    const LockToken token = *state.token();
    state.set_token(std::nullopt);
    try {
      store_.release(state.id(), token);
    } catch (const Error&) {  // StaleToken, NotFound: not held any more
    }
    throw;
  }
}

// The Client's lean moves a sixteenth of the way towards 1 on evidence of
// sessions shared between processes, towards 0 on evidence of sessions kept
// by this one; written only when it changes (a sticky Client's requests
// leave its cache line alone).
void Client::lean(bool shared) noexcept {
  const std::uint32_t now = lean_.load(std::memory_order_relaxed);
  const std::uint32_t next = shared ? now + ((kLeanOne - now) >> 4) : now - (now >> 4);
  if (next == now) return;
  lean_.store(next, std::memory_order_relaxed);
  if (now <= kLeanOne / 2 && next > kLeanOne / 2) sweep_.store(true);  // see release_idle_undecided
}

// The lean turned to per-request: the locks this Client still holds of
// idle sessions without evidence of their own (kept since their first
// request) would each cost another process a release request and a
// hand-over; let them go now instead. Only the sessions listed as kept
// that way since the last sweep are looked at: the lean can cross one half
// every few requests, and a walk over every kept session each time cost a
// random-routing request more than its own work.
void Client::release_idle_undecided() {
  std::vector<std::weak_ptr<detail::ClientState>> listed;
  {
    std::lock_guard<std::mutex> g(states_mutex_);
    listed.swap(kept_undecided_);
  }
  for (std::size_t i = 0; i < listed.size(); ++i) {
    const std::shared_ptr<detail::ClientState> state = listed[i].lock();
    if (!state) continue;            // dropped
    if (!releases_at_end(*state)) {  // the lean turned back meanwhile: the rest wait for the next turn
      std::lock_guard<std::mutex> g(states_mutex_);
      kept_undecided_.insert(kept_undecided_.end(), listed.begin() + static_cast<std::ptrdiff_t>(i), listed.end());
      return;
    }
    state->kept_listed = false;  // before the look: a request keeping it from now on lists it again
    shm::detail::run_test_hook(shm::detail::HookPoint::kSweepLooks);
    std::unique_lock<std::mutex> open_guard(state->open_mutex, std::try_to_lock);
    if (!open_guard.owns_lock() || state->active_requests != 0 || !state->token() ||
        state->adaptive.load() != detail::ClientState::Adaptive::Undecided)
      continue;  // in a request (whose end decides), let go already, or decided by its own evidence
    if (flush_and_release(*state, Flush::Release)) ++released_at_end_;
  }
}

// The end of a request kept the lock of a session without evidence of its
// own, on the lean's word: listed for the sweep should the lean turn. The
// list holds weak references: a listed state is no less idle for it (drop
// and the bounds count references).
void Client::list_kept_undecided(const std::shared_ptr<detail::ClientState>& state) {
  if (state->adaptive.load() != detail::ClientState::Adaptive::Undecided || state->kept_listed.load() ||
      state->kept_listed.exchange(true))
    return;
  std::lock_guard<std::mutex> g(states_mutex_);
  // States dropped from the client state stay listed until a sweep: prune
  // them once they could outnumber the kept ones, so that a Client that
  // never sweeps does not grow the list with every eviction.
  if (kept_undecided_.size() >= 2 * states_.size() + 64)
    std::erase_if(kept_undecided_, [](const std::weak_ptr<detail::ClientState>& s) { return s.expired(); });
  kept_undecided_.push_back(state);
}

void Client::note_open(detail::ClientState& state, Took took, bool moved) {
  using Adaptive = detail::ClientState::Adaptive;
  if (took == Took::Reused) {  // the sticky lock served
    lean(false);
    return;
  }
  if (took == Took::Waited || moved) {  // another process held it, or wrote it, since this one let it go
    lean(true);
    state.quiet_takes = 0;
    return;
  }
  lean(false);
  if (state.adaptive.load() == Adaptive::Sticky || ++state.quiet_takes < state.quiet_needed) return;
  state.adaptive = Adaptive::Sticky;  // served by this process alone lately: keep it
  state.quiet_takes = 0;
  state.went_sticky = true;
}

void Client::note_asked(detail::ClientState& state) {
  using Adaptive = detail::ClientState::Adaptive;
  lean(true);
  state.quiet_takes = 0;
  if (state.adaptive.load() == Adaptive::PerRequest) return;
  // A relapse: needing more quiet next time. A session kept sticky by
  // mistake costs a hand-over per request of another process; one released
  // by mistake only a free lock taken again, so the need grows fast.
  if (state.went_sticky) state.quiet_needed = std::min(state.quiet_needed * 2, detail::ClientState::kMostQuietTakes);
  state.adaptive = Adaptive::PerRequest;
}

bool Client::releases_at_end(const detail::ClientState& state) const {
  using Adaptive = detail::ClientState::Adaptive;
  const int given = state.request_policy.load();
  switch (given != 0 ? static_cast<LockPolicy>(given - 1) : options_.lock_policy) {
    case LockPolicy::Sticky:
      return false;
    case LockPolicy::PerRequest:
      return true;
    case LockPolicy::Adaptive:
      switch (state.adaptive.load()) {
        case Adaptive::PerRequest:
          return true;
        case Adaptive::Sticky:
          return false;
        case Adaptive::Undecided:
          return lean_.load(std::memory_order_relaxed) > kLeanOne / 2;
      }
  }
  return false;
}

SessionHandle Client::open(std::string_view id) { return open(id, OpenOptions{}); }

SessionHandle Client::open(std::string_view id, std::chrono::milliseconds timeout) {
  return open(id, OpenOptions{.timeout = timeout});
}

SessionHandle Client::open(std::string_view id, const OpenOptions& options) {
  const std::chrono::milliseconds timeout = options.timeout.value_or(options_.lock_timeout);
  drop_vanished();
  std::shared_ptr<detail::ClientState> state = state_for(id, false, true);
  if (!state) {
    // Room first for a session not kept yet, so that the sessions kept (and
    // the locks held) never pass max_sessions, not even inside this call.
    enforce_bounds(1);
    state = state_for(id, true, true);
  }
  if (check_order_) detail::check_handle_order(state.get(), state->id(), {}, "open");
  {
    std::lock_guard<std::mutex> open_guard(state->open_mutex);
    if (state->flush_error) {  // thrown once; the edits stay pending
      Error e = std::move(*state->flush_error);
      state->flush_error.reset();
      throw e;
    }
    open_locked(*state, timeout);
    if (options.lock_policy) state->request_policy = 1 + static_cast<int>(*options.lock_policy);
    ++state->active_requests;  // under open_mutex: the release callback sees it
  }
  SessionHandle handle(this, state);
  state.reset();
  enforce_bounds(0);  // the byte bound, and the idle age
  if (sweep_.load(std::memory_order_relaxed) && sweep_.exchange(false)) release_idle_undecided();
  return handle;
}

void Client::release(std::string_view id) {
  std::shared_ptr<detail::ClientState> state = state_for(id, false);
  if (!state) return;
  std::lock_guard<std::mutex> open_guard(state->open_mutex);
  if (!flush_and_release(*state, Flush::Release)) {
    Error e = std::move(*state->flush_error);
    state->flush_error.reset();
    throw e;
  }
}

void Client::forget(std::string_view id) {
  std::shared_ptr<detail::ClientState> state = state_for(id, false);
  if (!state) return;
  if (state->active_requests > 0)
    throw Error(Errc::InvalidArgument, "session '" + state->id() + "' is open in a request of this process");
  if (drop(state)) return;
  std::lock_guard<std::mutex> open_guard(state->open_mutex);
  if (state->flush_error) {
    Error e = std::move(*state->flush_error);
    state->flush_error.reset();
    throw e;
  }
  throw Error(Errc::InvalidArgument, "session '" + state->id() + "' is open in a request of this process");
}

void Client::trim() {
  drop_vanished();
  enforce_bounds(0);
}

bool Client::holds(std::string_view id) {
  std::shared_ptr<detail::ClientState> state = state_for(id, false);
  return state && state->token().has_value();
}

ClientStats Client::stats() {
  ClientStats st;
  std::lock_guard<std::mutex> g(states_mutex_);
  st.sessions = states_.size();
  st.bytes = bytes_;
  for (const auto& [id, state] : states_) {
    if (state->token()) ++st.locks_held;
    if (state->adaptive.load() == detail::ClientState::Adaptive::PerRequest) ++st.sessions_per_request;
  }
  st.evictions = evictions_;
  st.vanished = vanished_;
  st.unflushed = unflushed_.load();
  st.dropped_edits = dropped_edits_.load();
  st.released_at_request_end = released_at_end_.load();
  st.released_on_request = released_on_request_.load();
  st.lean_per_request = lean_.load(std::memory_order_relaxed) > kLeanOne / 2;
  return st;
}

void Client::end_request(const std::shared_ptr<detail::ClientState>& held) {
  detail::ClientState& state = *held;
  const int left = --state.active_requests;
  if (left == 0) account(state);
  if (left > 0) return;
  // The end of the last request is the safe point. Ask the store as well as
  // the watcher's flag: the watcher thread may not have run yet. A policy
  // that releases at the end of requests does not need to be asked.
  // The look is skipped while this process's release-request counter has
  // not moved since a look found no request for this lock: a request marks
  // the lock before it moves the counter, and one that marks it after the
  // look is the watcher's to deliver anyway.
  if (!releases_at_end(state) && !state.release_requested) {
    std::optional<LockToken> token = state.token();
    const std::optional<std::uint32_t> counter = store_.release_request_epoch();
    const std::uint64_t epoch = counter ? detail::ClientState::kEpochKnown | *counter : 0;  // 0: unknown
    bool asked = false;
    if (token && (epoch == 0 || state.quiet_epoch.load() != epoch)) {
      try {
        asked = store_.release_requested(state.id(), *token);
        if (!asked) state.quiet_epoch = epoch;
      } catch (const Error&) {
        // lost or removed: nothing to hand over
      }
    }
    if (asked) {
      state.release_requested = true;
    } else if (state.request_policy.load() == 0) {
      if (token) list_kept_undecided(held);
      return;
    }
  }
  bool kept = false;
  {
    std::lock_guard<std::mutex> open_guard(state.open_mutex);
    if (state.active_requests != 0) return;  // a new request began: its end decides
    const bool at_end = releases_at_end(state);
    state.request_policy = 0;
    if (state.release_requested || (at_end && state.token())) {
      const bool by_policy = !state.release_requested;
      if (flush_and_release(state, Flush::Release) && by_policy) ++released_at_end_;
    } else {
      kept = state.token().has_value();
    }
  }
  // After open_mutex: listing takes states_mutex_, which is taken before
  // open_mutex elsewhere.
  if (kept) list_kept_undecided(held);
}

void Client::account(detail::ClientState& state) {
  const std::size_t bytes = state.footprint();
  std::lock_guard<std::mutex> g(states_mutex_);
  if (!state.kept) return;  // dropped meanwhile
  bytes_ = bytes_ - state.counted_bytes + bytes;
  state.counted_bytes = bytes;
  state.last_used_ms = shm::detail::client_ms();
}

void Client::on_release_request(const std::string& id) {
  std::shared_ptr<detail::ClientState> state = state_for(id, false);
  if (!state) return;
  state->release_requested = true;
  // An open() in progress holds open_mutex (maybe waiting for this very
  // lock): do not wait for it; its request's end is the safe point.
  std::unique_lock<std::mutex> open_guard(state->open_mutex, std::try_to_lock);
  if (open_guard.owns_lock() && state->active_requests == 0) flush_and_release(*state, Flush::Release);  // idle: now
}

void Client::report(detail::ClientState& state, std::vector<std::string> names, Errc code, std::string message,
                    bool dropped) noexcept {
  try {
    ++unflushed_;
    if (dropped) ++dropped_edits_;
    store_.count_unflushed_edits();
    UnflushedEdits u{state.id(), std::move(names), code, std::move(message), dropped};
    if (options_.on_unflushed_edits) {
      options_.on_unflushed_edits(u);
    } else if (dropped) {
      std::cerr << "shmsession: edits of session '" << u.session << "' dropped (" << joined(u.attributes)
                << "): " << errc_name(u.code) << ": " << u.message << '\n';
    }
  } catch (...) {
    // A callback that throws, or no memory: the counters above are kept.
  }
}

bool Client::flush_and_release(detail::ClientState& state, Flush why) noexcept {
  std::optional<LockToken> token = state.token();
  const bool requested = state.release_requested.exchange(false);
  if (requested) note_asked(state);  // another process wants this session: evidence for the adaptive policy
  if (state.has_pending()) {
    Errc code = Errc::Io;
    std::string message;
    try {
      if (!token) throw Error(Errc::StaleToken, "the lock of session '" + state.id() + "' was lost");
      state.commit(store_, *token);
    } catch (const Error& e) {
      code = e.code();
      message = e.what();
    } catch (const std::exception& e) {
      message = e.what();
    }
    if (!message.empty()) {
      // A removed session or a revoked lock can never take these edits; a
      // destroyed Client cannot keep them. Anything else (SegmentFull...)
      // keeps the lock and the edits for the next commit.
      const bool lost = code == Errc::NotFound || code == Errc::StaleToken || why == Flush::Destroy;
      std::vector<std::string> names = state.pending_names();
      report(state, std::move(names), code, message, lost);
      if (!lost) {
        state.flush_error = Error(code, message);
        state.release_requested = requested;  // a standing request: retried at the end of the next request
        return false;
      }
      try {
        state.discard_pending();
      } catch (...) {
      }
    }
  }
  if (token) {
    try {
      store_.release(state.id(), *token);
      if (requested) ++released_on_request_;
    } catch (...) {
      // Revoked or removed meanwhile: nothing left to release.
    }
  }
  state.set_token(std::nullopt);
  return true;
}

bool Client::drop(const std::shared_ptr<detail::ClientState>& state) {
  std::uint64_t opens;
  {
    std::lock_guard<std::mutex> g(states_mutex_);
    auto it = states_.find(state->id());
    // In use: a request, the watcher, or another drop holds it (the map,
    // lru_ and the caller hold one reference each).
    if (it == states_.end() || it->second != state || !state->in_lru || state.use_count() > 3 ||
        state->active_requests > 0)
      return false;
    lru_.erase(state->lru_pos);
    state->in_lru = false;
    opens = state->opens;
  }
  bool flushed;
  {
    std::lock_guard<std::mutex> open_guard(state->open_mutex);
    flushed = state->active_requests == 0 && flush_and_release(*state, Flush::Evict);
  }
  std::lock_guard<std::mutex> g(states_mutex_);
  // Gone only if nobody opened it meanwhile (an open takes the lock anew).
  if (flushed && state->opens == opens && state.use_count() == 2 && !state->token()) {
    states_.erase(state->id());
    state->kept = false;
    bytes_ -= state->counted_bytes;
    state->counted_bytes = 0;
    return true;
  }
  lru_.push_front(state);
  state->lru_pos = lru_.begin();
  state->in_lru = true;
  return false;
}

void Client::enforce_bounds(std::size_t room) {
  const std::uint64_t now = shm::detail::client_ms();
  const auto max_idle = static_cast<std::uint64_t>(options_.max_idle.count());
  // Bounded work per call: a state that cannot go (in use, a failing
  // flush) moves to the front, so the next call looks at others.
  for (int looked = 0; looked < 16; ++looked) {
    std::shared_ptr<detail::ClientState> victim;
    {
      std::lock_guard<std::mutex> g(states_mutex_);
      const bool over = states_.size() + room > options_.max_sessions || bytes_ > options_.max_bytes;
      // Within the bounds, the oldest state's age says when the next could
      // go idle: until then the list is not walked (its tail is another
      // session's state, most likely out of the cache).
      if (!over && (max_idle == 0 || now < idle_check_due_ms_)) return;
      for (auto it = lru_.rbegin(); it != lru_.rend(); ++it) {
        detail::ClientState& s = **it;
        const bool idle_too_long = max_idle > 0 && now - std::min(now, s.last_used_ms) > max_idle;
        if (!over && !idle_too_long) {  // the rest were used more recently
          idle_check_due_ms_ = s.last_used_ms + max_idle + 1;
          break;
        }
        if (it->use_count() > 2 || s.active_requests > 0) continue;
        victim = *it;
        break;
      }
    }
    if (!victim) return;
    if (drop(victim)) {
      std::lock_guard<std::mutex> g(states_mutex_);
      ++evictions_;
    }
  }
}

void Client::drop_vanished() {
  std::unique_lock<std::mutex> guard(vanish_mutex_, std::try_to_lock);
  if (!guard.owns_lock()) return;  // another thread is at it
  // The log's sequence first, then the retired count (StoreRoot::retired):
  // two atomic loads on every open while nothing was removed.
  const ChangeFeed feed(store_);  // a pointer copy: this runs on every open
  const std::uint64_t logged = feed.logged_seq();
  const std::uint64_t retired = feed.retired_count();
  if (retired == retired_seen_) {
    change_pos_ = logged;
    return;
  }
  // Something was removed: sequence the lanes, where its entry may wait.
  const std::uint64_t next = feed.next_seq();
  std::vector<std::string> gone;
  bool behind = false;
  std::uint64_t pos = change_pos_;
  for (int batches = 0; pos < next && batches < 4; ++batches) {
    ChangeBatch batch = feed.read(pos, 1024);
    if (batch.fell_behind) {
      behind = true;
      break;
    }
    for (const ChangeEntry& e : batch.entries)
      if (e.kind == ChangeKind::Removed || e.kind == ChangeKind::Expired) gone.push_back(e.session_id);
    if (batch.entries.empty()) break;  // a writer is inside its critical section: next time
    pos = batch.next_seq;
  }
  if (behind) {  // the log overflowed: ask the store about each idle session
    std::lock_guard<std::mutex> g(states_mutex_);
    for (const auto& [id, state] : states_)
      if (state->active_requests == 0) gone.emplace_back(id);
    pos = next;
  }
  if (pos >= next) {
    retired_seen_ = retired;
    change_pos_ = next;
  } else {
    change_pos_ = pos;  // the rest at the next call
  }
  for (const std::string& id : gone) {
    if (behind && store_.version(id)) continue;
    std::shared_ptr<detail::ClientState> state = state_for(id, false);
    if (!state) continue;
    // Still current (a session of that id created again, and this process
    // holds its lock): keep it.
    if (std::optional<LockToken> t = state->token()) {
      try {
        store_.release_requested(id, *t);
        continue;
      } catch (const Error&) {
      }
    }
    if (drop(state)) {
      std::lock_guard<std::mutex> g(states_mutex_);
      ++vanished_;
    }
  }
}

}  // namespace shmsession::sync
