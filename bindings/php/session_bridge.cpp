#include "bindings/php/session_bridge.hpp"

#include <utility>

#include "bindings/php/session_frame.hpp"
#include "shm/error.hpp"
#include "shm/session.hpp"

namespace shmsession::php {

namespace {

bool kept_as_is(std::string_view key) {
  if (key.empty() || key.size() > kMaxAttributeNameBytes || key.front() == '%') return false;
  for (const char c : key)
    if (c < 0x21 || c > 0x7e) return false;
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Store attach_store(std::string_view name, const BridgeOptions& options) {
  if (!options.auto_create) {
    try {
      return Store::attach(name);
    } catch (const Error& e) {
      if (e.code() != Errc::NotFound) throw;
      throw Error(Errc::NotFound, "store '" + std::string(name) +
                                      "' does not exist and shmsession.auto_create is off: create it with "
                                      "`shmctl create " +
                                      std::string(name) + "`");
    }
  }
  CreateOptions create;
  create.size_bytes = options.store_bytes;
  return Store::open_or_create(name, create);
}

}  // namespace

std::string attribute_name(std::string_view key) {
  if (kept_as_is(key)) return std::string(key);
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string name = "%";
  for (const char c : key) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x21 || b > 0x7e || b == '%') {
      name += '%';
      name += kHex[b >> 4];
      name += kHex[b & 15];
    } else {
      name += c;
    }
  }
  if (name.size() > kMaxAttributeNameBytes)
    throw Error(Errc::InvalidArgument, "session key of " + std::to_string(key.size()) +
                                           " bytes is too long for the store (at most 255 once escaped)");
  return name;
}

std::string attribute_key(std::string_view name) {
  if (name.empty() || name.front() != '%') return std::string(name);
  std::string key;
  for (std::size_t i = 1; i < name.size(); ++i) {
    if (name[i] != '%') {
      key += name[i];
      continue;
    }
    const int hi = i + 2 < name.size() ? hex_value(name[i + 1]) : -1;
    const int lo = i + 2 < name.size() ? hex_value(name[i + 2]) : -1;
    if (hi < 0 || lo < 0) throw Error(Errc::Corrupt, "attribute '" + std::string(name) + "' is no escaped PHP key");
    key += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return key;
}

SessionBridge::SessionBridge(std::string_view store_name, const BridgeOptions& options)
    : options_(options), store_(attach_store(store_name, options)) {}

SessionBridge::~SessionBridge() { close(); }

void SessionBridge::take_lock(std::string_view id, std::uint32_t idle_timeout_s) {
  if (held_id_ && *held_id_ != id) close();
  if (held_id_) return;
  // A session that does not exist yet is created first: the lock belongs to
  // a session. Another request may create it at the same moment (false).
  for (int attempt = 0;; ++attempt) {
    if (!store_.version(id)) store_.create_session(id, idle_timeout_s);
    try {
      token_ = store_.acquire(id, options_.lock_wait);
      break;
    } catch (const Error& e) {
      // Removed (destroyed, expired) between the two: create it again.
      if (e.code() != Errc::NotFound || attempt == 3) throw;
    }
  }
  held_id_ = std::string(id);
}

std::string SessionBridge::read(std::string_view id, std::uint32_t idle_timeout_s) {
  take_lock(id, idle_timeout_s);
  std::optional<SessionSnapshot> snapshot;
  try {
    snapshot = store_.read(id, *token_);
  } catch (...) {
    close();
    throw;
  }
  seen_.clear();
  std::string frame;
  if (!snapshot) return frame;  // removed since: an empty session, created again at write
  for (Attribute& a : snapshot->attributes) {
    append_entry(frame, attribute_key(a.name), a.value);
    seen_.emplace(std::move(a.name), std::move(a.value));
  }
  return frame;
}

std::size_t SessionBridge::write(std::string_view id, std::string_view frame, std::uint32_t idle_timeout_s) {
  if (!held_id_ || *held_id_ != id || !token_)
    throw Error(Errc::StaleToken, "session '" + std::string(id) + "' is written without its lock (read first)");
  CommitBatch batch;
  std::map<std::string, bool, std::less<>> kept;
  for (const FrameEntry& entry : parse_frame(frame)) {
    std::string name = attribute_name(entry.key);
    const auto seen = seen_.find(name);
    if (options_.write_all || seen == seen_.end() || seen->second != entry.value)
      batch.put(name, std::string(entry.value));
    kept.emplace(std::move(name), true);
  }
  for (const auto& [name, bytes] : seen_)
    if (!kept.contains(name)) batch.remove(name);
  if (batch.empty()) {
    store_.touch(id);
    return 0;
  }
  try {
    store_.commit(id, *token_, batch);
  } catch (const Error& e) {
    if (e.code() != Errc::NotFound) throw;
    // Destroyed or expired while this request held it: the request's keys
    // are what the session holds now.
    held_id_.reset();
    token_.reset();
    take_lock(id, idle_timeout_s);
    CommitBatch whole;
    for (const FrameEntry& entry : parse_frame(frame)) whole.put(attribute_name(entry.key), std::string(entry.value));
    store_.commit(id, *token_, whole);
    batch = std::move(whole);
  }
  for (AttributeWrite& put : batch.puts) seen_[put.name] = std::move(put.value);
  for (const std::string& name : batch.removes) seen_.erase(name);
  return batch.puts.size() + batch.removes.size();
}

void SessionBridge::close() noexcept {
  if (held_id_ && token_) {
    try {
      store_.release(*held_id_, *token_);
    } catch (const Error&) {
      // Removed meanwhile, or the lock was taken from us: nothing to hand over.
    }
  }
  held_id_.reset();
  token_.reset();
  seen_.clear();
}

bool SessionBridge::destroy(std::string_view id) {
  if (held_id_ && *held_id_ == id) {
    held_id_.reset();
    token_.reset();
    seen_.clear();
  }
  return store_.remove_session(id);
}

bool SessionBridge::create(std::string_view id, std::uint32_t idle_timeout_s) {
  return store_.create_session(id, idle_timeout_s);
}

bool SessionBridge::exists(std::string_view id) const { return store_.version(id).has_value(); }

bool SessionBridge::touch(std::string_view id) { return store_.touch(id); }

std::uint64_t SessionBridge::collect_garbage() { return store_.expire(); }

}  // namespace shmsession::php
