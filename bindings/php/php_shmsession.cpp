// The PHP extension `shmsession`: a session save handler (session.save_handler
// = shmsession, session.save_path = the store's name) and the serializer it
// needs (session.serialize_handler = shmsession), for PHP 8.2's session
// module. The handler's work is SessionBridge's (session_bridge.hpp); this
// file turns PHP's calls into it and its errors into PHP warnings.
//
// Why a serializer of its own: PHP's "php" serializer numbers the values it
// refers back to across the whole of $_SESSION, so one key's bytes cannot be
// stored, compared or read back without the others. "shmsession" serializes
// each top-level key alone (PHP's php_var_serialize, a state per key) and
// frames them (session_frame.hpp); every PHP value round-trips, objects and
// references within a key included. Two keys that held the same object or
// a reference to each other hold equal copies once read back.
//
// Thread safety: PHP's NTS build runs one request per process (php-fpm,
// php-cli); the bridges live in the worker process for its whole life.
// Nothing touches a store before a request does (php-fpm's master forks
// its workers from a process that never opened one).

#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "bindings/php/session_bridge.hpp"
#include "bindings/php/session_frame.hpp"
#include "shm/error.hpp"

// PHP's headers must come in this order (php.h first): not sorted.
// clang-format off
extern "C" {
#include "php.h"
#include "php_ini.h"
#include "ext/session/php_session.h"
#include "ext/standard/info.h"
#include "ext/standard/php_var.h"
#include "zend_smart_str.h"
}
// clang-format on

#define PHP_SHMSESSION_VERSION "0.1.0"

namespace {

using shmsession::Errc;
using shmsession::Error;
using shmsession::php::BridgeOptions;
using shmsession::php::SessionBridge;

// One bridge per store name in this process, made on first use.
std::unordered_map<std::string, std::unique_ptr<SessionBridge>>& bridges() {
  static std::unordered_map<std::string, std::unique_ptr<SessionBridge>> all;
  return all;
}

BridgeOptions current_options() {
  BridgeOptions options;
  options.auto_create = INI_BOOL("shmsession.auto_create") != 0;
  const zend_long mib = INI_INT("shmsession.store_size_mb");
  options.store_bytes = static_cast<std::uint64_t>(mib > 0 ? mib : 256) << 20;
  const zend_long wait = INI_INT("shmsession.lock_wait_ms");
  options.lock_wait = std::chrono::milliseconds(wait > 0 ? wait : 0);
  const char* compare = INI_STR("shmsession.compare");
  options.write_all = compare != nullptr && std::string_view(compare) == "all";
  return options;
}

// The idle timeout of sessions: shmsession.idle_timeout, or (0) PHP's
// session.gc_maxlifetime as passed to the handler.
std::uint32_t idle_timeout(zend_long maxlifetime) {
  const zend_long own = INI_INT("shmsession.idle_timeout");
  const zend_long seconds = own > 0 ? own : maxlifetime;
  return seconds > 0 ? static_cast<std::uint32_t>(std::min<zend_long>(seconds, UINT32_MAX)) : 0;
}

std::string_view view(const zend_string* s) { return {ZSTR_VAL(s), ZSTR_LEN(s)}; }

void warn(const std::string& message) { php_error_docref(nullptr, E_WARNING, "%s", message.c_str()); }

// Runs `body`, turning an exception into a warning that starts with `what`;
// returns `failed` then.
template <class Body, class Result>
Result guarded(const std::string& what, Result failed, Body&& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    warn("shmsession: " + what + ": " + e.what());
  }
  return failed;
}

SessionBridge* bridge_of(void** mod_data) { return static_cast<SessionBridge*>(PS_GET_MOD_DATA()); }

}  // namespace

extern "C" {

// ---- the save handler -------------------------------------------------------

PS_FUNCS_UPDATE_TIMESTAMP(shmsession);

PS_OPEN_FUNC(shmsession) {
  const std::string_view path = save_path != nullptr ? std::string_view(save_path) : std::string_view();
  if (path.empty()) {
    warn("shmsession: session.save_path must name the store (e.g. session.save_path = \"php_sessions\")");
    return FAILURE;
  }
  if (PS(serializer) == nullptr || std::string_view(PS(serializer)->name) != "shmsession") {
    warn("shmsession: set session.serialize_handler = shmsession (it keeps each key of $_SESSION apart; \"" +
         std::string(PS(serializer) != nullptr ? PS(serializer)->name : "") + "\" cannot)");
    return FAILURE;
  }
  return guarded("cannot open store '" + std::string(path) + "'", FAILURE, [&]() -> zend_result {
    auto& all = bridges();
    auto it = all.find(std::string(path));
    if (it == all.end())
      it = all.emplace(std::string(path), std::make_unique<SessionBridge>(path, current_options())).first;
    it->second->set_options(current_options());
    PS_SET_MOD_DATA(it->second.get());
    return SUCCESS;
  });
}

PS_CLOSE_FUNC(shmsession) {
  if (SessionBridge* bridge = bridge_of(mod_data)) bridge->close();
  PS_SET_MOD_DATA(nullptr);
  return SUCCESS;
}

PS_READ_FUNC(shmsession) {
  SessionBridge* bridge = bridge_of(mod_data);
  if (bridge == nullptr) return FAILURE;
  try {
    const std::string frame = bridge->read(view(key), idle_timeout(maxlifetime));
    *val = zend_string_init(frame.data(), frame.size(), 0);
    return SUCCESS;
  } catch (const Error& e) {
    if (e.code() == Errc::LockTimeout) {
      warn("shmsession: session '" + std::string(view(key)) + "' stays locked by another request: not granted within " +
           std::to_string(INI_INT("shmsession.lock_wait_ms")) + " ms (shmsession.lock_wait_ms): " + e.what());
    } else {
      warn("shmsession: cannot read session '" + std::string(view(key)) + "': " + e.what());
    }
  } catch (const std::exception& e) {
    warn("shmsession: cannot read session '" + std::string(view(key)) + "': " + e.what());
  }
  return FAILURE;
}

PS_WRITE_FUNC(shmsession) {
  SessionBridge* bridge = bridge_of(mod_data);
  if (bridge == nullptr) return FAILURE;
  return guarded("cannot write session '" + std::string(view(key)) + "'", FAILURE, [&]() -> zend_result {
    bridge->write(view(key), view(val), idle_timeout(maxlifetime));
    return SUCCESS;
  });
}

PS_DESTROY_FUNC(shmsession) {
  SessionBridge* bridge = bridge_of(mod_data);
  if (bridge == nullptr) return FAILURE;
  return guarded("cannot destroy session '" + std::string(view(key)) + "'", FAILURE, [&]() -> zend_result {
    bridge->destroy(view(key));
    return SUCCESS;
  });
}

PS_GC_FUNC(shmsession) {
  SessionBridge* bridge = bridge_of(mod_data);
  if (bridge == nullptr) return -1;
  return guarded("cannot collect expired sessions", zend_long{-1}, [&]() -> zend_long {
    const auto freed = static_cast<zend_long>(bridge->collect_garbage());
    if (nrdels != nullptr) *nrdels = freed;
    return freed;
  });
}

PS_CREATE_SID_FUNC(shmsession) {
  SessionBridge* bridge = bridge_of(mod_data);
  // Reserved by creating it: an id this handler gave out is never another
  // request's too.
  for (int attempt = 0; attempt < 3; ++attempt) {
    zend_string* sid = php_session_create_id(mod_data);
    if (sid == nullptr) return nullptr;
    if (bridge == nullptr) return sid;
    const bool created = guarded("cannot create session '" + std::string(view(sid)) + "'", false,
                                 [&] { return bridge->create(view(sid), idle_timeout(PS(gc_maxlifetime))); });
    if (created) return sid;
    zend_string_release_ex(sid, 0);
    if (EG(exception) != nullptr) return nullptr;
  }
  warn("shmsession: could not create a new session id after 3 attempts");
  return nullptr;
}

// Strict mode: only ids of sessions that exist are taken.
PS_VALIDATE_SID_FUNC(shmsession) {
  SessionBridge* bridge = bridge_of(mod_data);
  if (bridge == nullptr) return FAILURE;
  try {
    return bridge->exists(view(key)) ? SUCCESS : FAILURE;
  } catch (const std::exception&) {
    return FAILURE;  // an id the store refuses is no session's
  }
}

// session.lazy_write: nothing changed, the session's last access moves.
PS_UPDATE_TIMESTAMP_FUNC(shmsession) {
  SessionBridge* bridge = bridge_of(mod_data);
  if (bridge == nullptr) return FAILURE;
  return guarded("cannot touch session '" + std::string(view(key)) + "'", FAILURE,
                 [&]() -> zend_result { return bridge->touch(view(key)) ? SUCCESS : FAILURE; });
}

static const ps_module ps_mod_shmsession = {PS_MOD_UPDATE_TIMESTAMP(shmsession)};

// ---- the serializer ----------------------------------------------------------

static zend_string* ps_srlzr_encode_shmsession() {
  std::string frame;
  zval* vars = &PS(http_session_vars);
  if (Z_ISUNDEF_P(vars) || Z_TYPE_P(Z_REFVAL_P(vars)) != IS_ARRAY) return nullptr;
  zend_string* key = nullptr;
  zend_ulong index = 0;
  zval* value = nullptr;
  try {
    ZEND_HASH_FOREACH_KEY_VAL_IND(Z_ARRVAL_P(Z_REFVAL_P(vars)), index, key, value) {
      if (key == nullptr) {
        php_error_docref(nullptr, E_WARNING, "shmsession: skipping numeric key " ZEND_LONG_FMT,
                         static_cast<zend_long>(index));
        continue;
      }
      smart_str bytes = {nullptr, 0};
      php_serialize_data_t state;
      PHP_VAR_SERIALIZE_INIT(state);
      php_var_serialize(&bytes, value, &state);
      PHP_VAR_SERIALIZE_DESTROY(state);
      if (EG(exception) != nullptr) {
        smart_str_free(&bytes);
        return nullptr;
      }
      const std::string_view serialized = bytes.s != nullptr ? view(bytes.s) : std::string_view();
      shmsession::php::append_entry(frame, view(key), serialized);
      smart_str_free(&bytes);
    }
    ZEND_HASH_FOREACH_END();
  } catch (const std::exception& e) {
    warn(std::string("shmsession: cannot encode the session: ") + e.what());
    return nullptr;
  }
  return zend_string_init(frame.data(), frame.size(), 0);
}

static zend_result ps_srlzr_decode_shmsession(const char* val, size_t vallen) {
  std::vector<shmsession::php::FrameEntry> entries;
  try {
    entries = shmsession::php::parse_frame(std::string_view(val, vallen));
  } catch (const std::exception& e) {
    warn(std::string("shmsession: cannot decode the session: ") + e.what());
    return FAILURE;
  }
  for (const shmsession::php::FrameEntry& entry : entries) {
    php_unserialize_data_t state;
    PHP_VAR_UNSERIALIZE_INIT(state);
    zval* slot = var_tmp_var(&state);
    auto p = reinterpret_cast<const unsigned char*>(entry.value.data());
    const auto end = p + entry.value.size();
    const bool whole = php_var_unserialize(slot, &p, end, &state) && p == end;
    zval value;
    ZVAL_UNDEF(&value);
    if (whole) {
      ZVAL_COPY_VALUE(&value, slot);
      ZVAL_UNDEF(slot);
    }
    PHP_VAR_UNSERIALIZE_DESTROY(state);  // runs the __wakeup/__unserialize calls it delayed
    if (!whole) {
      warn("shmsession: the value of session key '" + std::string(entry.key) + "' cannot be unserialized");
      return FAILURE;
    }
    zend_string* name = zend_string_init(entry.key.data(), entry.key.size(), 0);
    php_set_session_var(name, &value, nullptr);
    zend_string_release_ex(name, 0);
  }
  return SUCCESS;
}

// ---- the module ----------------------------------------------------------------

PHP_INI_BEGIN()
PHP_INI_ENTRY("shmsession.auto_create", "1", PHP_INI_ALL, nullptr)
PHP_INI_ENTRY("shmsession.store_size_mb", "256", PHP_INI_ALL, nullptr)
PHP_INI_ENTRY("shmsession.lock_wait_ms", "30000", PHP_INI_ALL, nullptr)
PHP_INI_ENTRY("shmsession.idle_timeout", "0", PHP_INI_ALL, nullptr)
PHP_INI_ENTRY("shmsession.compare", "bytes", PHP_INI_ALL, nullptr)
PHP_INI_END()

static PHP_MINIT_FUNCTION(shmsession) {
  REGISTER_INI_ENTRIES();
  if (php_session_register_module(&ps_mod_shmsession) == FAILURE) return FAILURE;
  return php_session_register_serializer("shmsession", ps_srlzr_encode_shmsession, ps_srlzr_decode_shmsession);
}

static PHP_MSHUTDOWN_FUNCTION(shmsession) {
  UNREGISTER_INI_ENTRIES();
  bridges().clear();
  return SUCCESS;
}

static PHP_MINFO_FUNCTION(shmsession) {
  php_info_print_table_start();
  php_info_print_table_row(2, "shmsession save handler", "enabled");
  php_info_print_table_row(2, "version", PHP_SHMSESSION_VERSION);
  php_info_print_table_end();
  DISPLAY_INI_ENTRIES();
}

static const zend_module_dep shmsession_deps[] = {ZEND_MOD_REQUIRED("session") ZEND_MOD_END};

zend_module_entry shmsession_module_entry = {STANDARD_MODULE_HEADER_EX,
                                             nullptr,
                                             shmsession_deps,
                                             "shmsession",
                                             nullptr,
                                             PHP_MINIT(shmsession),
                                             PHP_MSHUTDOWN(shmsession),
                                             nullptr,
                                             nullptr,
                                             PHP_MINFO(shmsession),
                                             PHP_SHMSESSION_VERSION,
                                             STANDARD_MODULE_PROPERTIES};

ZEND_GET_MODULE(shmsession)

}  // extern "C"
