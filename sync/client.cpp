#include "sync/client.hpp"

namespace shmsession::sync {

// ---- SessionHandle ---------------------------------------------------------

SessionHandle::SessionHandle(SessionHandle&& other) noexcept : client_(other.client_), state_(std::move(other.state_)) {
  other.client_ = nullptr;
}

SessionHandle::~SessionHandle() {
  if (client_ != nullptr && state_) client_->end_request(*state_);
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
  std::shared_lock<oneapi::tbb::rw_mutex> r(s->lock);
  return !s->removed && (s->object || s->in_primary);
}

bool SessionHandle::remove(std::string_view name) {
  detail::Slot* s = state_->existing_slot(name);
  if (s == nullptr) return false;
  std::unique_lock<oneapi::tbb::rw_mutex> w(s->lock);
  bool present = !s->removed && (s->object || s->in_primary);
  s->removed = true;
  s->object.reset();
  s->ops = nullptr;
  s->tracked = true;
  return present;
}

CommitOutcome SessionHandle::commit() { return state_->commit(client_->store_, token()); }

// ---- Client ----------------------------------------------------------------

Client::Client(Store& store, ClientOptions options) : store_(store), options_(options) {
  store_.on_release_request([this](const std::string& id, LockToken) { on_release_request(id); });
}

Client::~Client() {
  store_.on_release_request({});
  std::lock_guard<std::mutex> g(states_mutex_);
  for (auto& [id, state] : states_) {
    std::lock_guard<std::mutex> open_guard(state->open_mutex);
    flush_and_release(*state);
  }
}

std::shared_ptr<detail::ClientState> Client::state_for(std::string_view id, bool create) {
  std::lock_guard<std::mutex> g(states_mutex_);
  auto it = states_.find(std::string(id));
  if (it != states_.end()) return it->second;
  if (!create) return nullptr;
  auto state = std::make_shared<detail::ClientState>(std::string(id), options_.comparison);
  states_.emplace(std::string(id), state);
  return state;
}

void Client::take_lock(detail::ClientState& state, std::chrono::milliseconds timeout) {
  if (std::optional<LockToken> held = state.token()) {
    try {
      store_.release_requested(state.id(), *held);  // throws unless still current
      return;                                      // sticky: reuse it
    } catch (const Error& e) {
      if (e.code() != Errc::StaleToken) throw;
      state.set_token(std::nullopt);  // revoked meanwhile: take it anew
    }
  }
  try {
    state.set_token(store_.acquire(state.id(), timeout));
  } catch (const Error& e) {
    if (e.code() != Errc::NotFound || !options_.create_missing_sessions) throw;
    store_.create_session(state.id());
    state.set_token(store_.acquire(state.id(), timeout));
  }
}

SessionHandle Client::open(std::string_view id) { return open(id, options_.lock_timeout); }

SessionHandle Client::open(std::string_view id, std::chrono::milliseconds timeout) {
  std::shared_ptr<detail::ClientState> state = state_for(id, true);
  {
    std::lock_guard<std::mutex> open_guard(state->open_mutex);
    take_lock(*state, timeout);
    state->refresh(store_, *state->token());
    ++state->active_requests;  // under open_mutex: the release callback sees it
  }
  return SessionHandle(this, state);
}

void Client::release(std::string_view id) {
  std::shared_ptr<detail::ClientState> state = state_for(id, false);
  if (!state) return;
  std::lock_guard<std::mutex> open_guard(state->open_mutex);
  flush_and_release(*state);
}

bool Client::holds(std::string_view id) {
  std::shared_ptr<detail::ClientState> state = state_for(id, false);
  return state && state->token().has_value();
}

void Client::end_request(detail::ClientState& state) {
  if (--state.active_requests > 0) return;
  // The end of the last request is the safe point. Ask the store as well as
  // the watcher's flag: the watcher thread may not have run yet.
  if (!state.release_requested) {
    std::optional<LockToken> token = state.token();
    try {
      if (!token || !store_.release_requested(state.id(), *token)) return;
    } catch (const Error&) {
      return;  // lost or removed: nothing to hand over
    }
    state.release_requested = true;
  }
  std::lock_guard<std::mutex> open_guard(state.open_mutex);
  if (state.active_requests == 0 && state.release_requested) flush_and_release(state);
}

void Client::on_release_request(const std::string& id) {
  std::shared_ptr<detail::ClientState> state = state_for(id, false);
  if (!state) return;
  state->release_requested = true;
  // An open() in progress holds open_mutex (maybe waiting for this very
  // lock): do not wait for it; its request's end is the safe point.
  std::unique_lock<std::mutex> open_guard(state->open_mutex, std::try_to_lock);
  if (open_guard.owns_lock() && state->active_requests == 0) flush_and_release(*state);  // idle: now
}

void Client::flush_and_release(detail::ClientState& state) noexcept {
  std::optional<LockToken> token = state.token();
  state.release_requested = false;
  if (!token) return;
  try {
    if (state.has_pending()) state.commit(store_, *token);
  } catch (...) {
    // The waiter must not wait forever for a commit that cannot happen
    // (SegmentFull, a revoked token): the edits stay pending locally and the
    // next open refreshes over them.
  }
  try {
    store_.release(state.id(), *token);
  } catch (...) {
    // Revoked or removed meanwhile: nothing left to release.
  }
  state.set_token(std::nullopt);
}

}  // namespace shmsession::sync
