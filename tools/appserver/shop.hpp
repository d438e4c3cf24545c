// Shop: the demo application behind the HTTP server, with no HTTP types in
// it. One request is one session cycle: open the session (its lock taken),
// read or edit its attributes (tools/appserver/shop_model.hpp), commit what
// changed, end the request. Where sessions are kept is the Sessions
// parameter:
//   ShmSessions    a shmsession store through sync::Client: the process lock
//                  taken, or reused while this worker still holds it; the
//                  end of the request is the safe point at which a lock
//                  another worker asked for is handed over (Shop)
//   RedisSessions  a Redis hash per session behind phpredis's session lock
//                  (tools/appserver/redis_sessions.hpp), the peer the demo's
//                  summary sets beside it (RedisShop)
//
//   GET  /                 a short index of the endpoints (text or HTML)
//   GET  /cart             the cart (text, or HTML when the client accepts it)
//   POST /cart/items       add sku (qty, default 1) from the query or a form body
//   POST /cart/items/SKU   set the line's qty (qty=0 removes it)
//   GET  /view/SKU         a product page; records it as recently viewed
//   GET  /api/session      JSON: worker, pid, session, version, lines, total
// POSTs answer with the /api/session JSON, or 303 to /cart for a browser.
// A request without a valid `sid` cookie (absent, malformed, or naming no
// live session) starts a new session under a fresh random id and sets the
// cookie. Bad parameters: 400, unknown paths: 404, both with a one-line
// reason; a session held too long by another worker: 503.
//
// Thread safety: a Shop may be used by several threads of one process (the
// Client's locks order them); the id generator is guarded. A RedisShop has
// one connection: one thread. Not usable across fork(): make it in the
// worker.
#pragma once

#include <cstdint>
#include <mutex>
#include <random>
#include <string>
#include <string_view>

#include "shm/store.hpp"
#include "sync/client.hpp"
#include "tools/appserver/redis_sessions.hpp"
#include "tools/appserver/request_params.hpp"

namespace shmsession::appserver {

struct ShopRequest {
  std::string_view method;  // "GET", "POST", ...
  std::string_view target;  // "/cart/items?sku=SKU-0001&qty=2"
  std::string_view cookie;  // the Cookie header, empty if none
  std::string_view content_type;
  std::string_view body;
  bool wants_html = false;  // the Accept header names text/html
};

struct ShopResponse {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::string set_cookie;  // a Set-Cookie value, empty for none
  std::string location;    // for 303
};

inline constexpr char kSessionCookie[] = "sid";

// What the HTTP worker serves requests with, whatever keeps the sessions.
class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  // Never throws: errors become 4xx/5xx responses.
  virtual ShopResponse handle(const ShopRequest& request) = 0;
};

// Sessions in a shmsession store, through the process's sync::Client.
class ShmSessions {
 public:
  using Handle = sync::SessionHandle;

  // Requires: `client` is the process's Client of `store`; both outlive this.
  ShmSessions(Store& store, sync::Client& client) : store_(store), client_(client) {}

  bool live(const std::string& id) { return store_.version(id).has_value(); }
  Handle open(const std::string& id) { return client_.open(id); }
  std::uint64_t version(Handle& s) { return store_.version(s.id()).value_or(SessionVersion{}).version; }

 private:
  Store& store_;
  sync::Client& client_;
};

template <class Sessions>
class BasicShop final : public RequestHandler {
 public:
  using Handle = typename Sessions::Handle;

  // Requires: `sessions` outlives the shop.
  BasicShop(Sessions& sessions, int worker_index);

  ShopResponse handle(const ShopRequest& request) override;

 private:
  struct Session {
    std::string id;
    bool is_new = false;
  };
  ShopResponse route(const ShopRequest& request, const Target& target, const Params& params);
  Session resolve_session(std::string_view cookie_header);
  std::string new_session_id();

  ShopResponse show_cart(const Session& session, bool html);
  ShopResponse add_item(const Session& session, const Params& params, bool html);
  ShopResponse set_quantity(const Session& session, const std::string& sku, const Params& params, bool html);
  ShopResponse view_product(const Session& session, const std::string& sku, bool html);
  ShopResponse session_json(const Session& session);
  // The /api/session document of an open session at `version`.
  std::string describe(Handle& s, std::uint64_t version, bool is_new);
  ShopResponse after_post(Handle& s, std::uint64_t version, const Session& session, bool html);

  Sessions& sessions_;
  const int worker_index_;
  std::mutex rng_mutex_;
  std::mt19937_64 rng_;
};

using Shop = BasicShop<ShmSessions>;
using RedisShop = BasicShop<RedisSessions>;
extern template class BasicShop<ShmSessions>;
extern template class BasicShop<RedisSessions>;

}  // namespace shmsession::appserver
