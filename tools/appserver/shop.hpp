// Shop: the demo application behind the HTTP server, with no HTTP types in
// it. One request is one session cycle through sync::Client: open the
// session (the process lock taken, or reused while this worker still holds
// it), read or edit its attributes (tools/appserver/shop_model.hpp), commit
// what changed, end the request (the safe point at which a lock another
// worker asked for is handed over).
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
// Client's locks order them); the id generator is guarded. Not usable
// across fork(): make it in the worker.
#pragma once

#include <cstdint>
#include <mutex>
#include <random>
#include <string>
#include <string_view>

#include "shm/store.hpp"
#include "sync/client.hpp"
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

class Shop {
 public:
  // Requires: `client` is the process's Client of `store`; both outlive the Shop.
  Shop(Store& store, sync::Client& client, int worker_index);

  // Never throws: errors become 4xx/5xx responses.
  ShopResponse handle(const ShopRequest& request);

 private:
  struct Session {
    std::string id;
    bool is_new = false;
  };
  ShopResponse route(const ShopRequest& request, const Target& target, const Params& params);
  Session resolve_session(std::string_view cookie_header);
  std::string new_session_id();
  void initialize(sync::SessionHandle& s);

  ShopResponse show_cart(const Session& session, bool html);
  ShopResponse add_item(const Session& session, const Params& params, bool html);
  ShopResponse set_quantity(const Session& session, const std::string& sku, const Params& params, bool html);
  ShopResponse view_product(const Session& session, const std::string& sku, bool html);
  ShopResponse session_json(const Session& session);
  // The /api/session document of an open session at `version`.
  std::string describe(sync::SessionHandle& s, std::uint64_t version, bool is_new);
  ShopResponse after_post(sync::SessionHandle& s, std::uint64_t version, const Session& session, bool html);

  Store& store_;
  sync::Client& client_;
  const int worker_index_;
  std::mutex rng_mutex_;
  std::mt19937_64 rng_;
};

}  // namespace shmsession::appserver
