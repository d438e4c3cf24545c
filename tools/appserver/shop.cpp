#include "tools/appserver/shop.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "tools/appserver/catalog.hpp"
#include "tools/appserver/shop_model.hpp"

namespace shmsession::appserver {
namespace {

constexpr std::size_t kSessionIdChars = 32;
constexpr char kItemsPath[] = "/cart/items";
constexpr char kItemPrefix[] = "/cart/items/";
constexpr char kViewPrefix[] = "/view/";

ShopResponse reply(unsigned status, std::string line) {
  ShopResponse r;
  r.status = status;
  r.body = std::move(line) + "\n";
  return r;
}

bool valid_session_id(std::string_view id) {
  return id.size() == kSessionIdChars &&
         std::all_of(id.begin(), id.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// qty in 0..kMaxQty (min_qty..kMaxQty), or nullopt.
std::optional<std::int32_t> parse_qty(std::string_view text, std::int32_t min_qty) {
  std::int32_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min_qty || value > kMaxQty) return std::nullopt;
  return value;
}

std::string money(std::int64_t cents) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld.%02lld", static_cast<long long>(cents / 100),
                static_cast<long long>(cents % 100));
  return buf;
}

std::string html_escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::int64_t now_unix() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Puts the attributes a session lacks (a new session: all three). Returns
// true if it put any, so that a read-only request still commits them.
template <class Handle>
bool ensure_attributes(Handle& s) {
  bool put = false;
  if (!s.contains(kCartAttribute)) {
    s.put(kCartAttribute, Cart{});
    put = true;
  }
  if (!s.contains(kProfileAttribute)) {
    UserProfile p;
    const std::string tag = s.id().substr(0, 6);
    p.name = "Guest " + tag;
    p.email = "guest-" + tag + "@example.com";
    p.created_unix = now_unix();
    s.put(kProfileAttribute, std::move(p));
    put = true;
  }
  if (!s.contains(kRecentAttribute)) {
    s.put(kRecentAttribute, RecentlyViewed{});
    put = true;
  }
  return put;
}

std::string cart_text(const Cart& cart) {
  std::string out;
  char line[160];
  for (const LineItem& i : cart.items) {
    std::snprintf(line, sizeof line, "%-9s %-28s %4d x %9s = %10s\n", i.sku.c_str(), i.title.c_str(), i.qty,
                  money(i.unit_price_cents).c_str(), money(i.qty * i.unit_price_cents).c_str());
    out += line;
  }
  std::snprintf(line, sizeof line, "%zu lines, total %s\n", cart.items.size(), money(cart.total_cents()).c_str());
  return out + line;
}

std::string cart_html(const Cart& cart, const UserProfile& profile) {
  std::string out = "<!doctype html><html><head><title>Cart</title></head><body><h1>Cart of " +
                    html_escape(profile.name) +
                    "</h1><table border=1 cellpadding=4><tr><th>SKU</th><th>Product</th>"
                    "<th>Qty</th><th>Price</th><th></th></tr>";
  for (const LineItem& i : cart.items) {
    out += "<tr><td>" + html_escape(i.sku) + "</td><td>" + html_escape(i.title) + "</td><td>" + std::to_string(i.qty) +
           "</td><td>" + money(i.unit_price_cents) + "</td><td><form method=post action=\"/cart/items/" +
           html_escape(i.sku) + "\"><input name=qty size=3 value=" + std::to_string(i.qty) +
           "><button>set</button></form></td></tr>";
  }
  out += "</table><p>Total: " + money(cart.total_cents()) +
         "</p><form method=post action=\"/cart/items\">SKU <input name=sku value=SKU-0001> qty <input name=qty "
         "size=3 value=1><button>add</button></form><p><a href=\"/api/session\">/api/session</a></p></body></html>";
  return out;
}

}  // namespace

template <class Sessions>
BasicShop<Sessions>::BasicShop(Sessions& sessions, int worker_index)
    : sessions_(sessions), worker_index_(worker_index) {
  std::random_device device;
  std::seed_seq seed{device(), device(), device(), static_cast<unsigned>(::getpid())};
  rng_.seed(seed);
}

template <class Sessions>
ShopResponse BasicShop<Sessions>::handle(const ShopRequest& request) {
  try {
    std::optional<Target> target = parse_target(request.target);
    if (!target) return reply(400, "bad request target");
    std::string form_text = target->query;
    if (request.method == "POST" && request.content_type.starts_with("application/x-www-form-urlencoded")) {
      if (!form_text.empty() && !request.body.empty()) form_text += '&';
      form_text += request.body;
    }
    std::optional<Params> params = parse_form(form_text);
    if (!params) return reply(400, "malformed query or form (a bad %-escape)");
    // A session removed or expired in the middle of the request (an
    // operator's reset, the sweeper) makes its commit fail with NotFound,
    // or StaleToken if its lock was revoked: the request is served again,
    // on a fresh session, as if it had come a moment later.
    for (int attempt = 1;; ++attempt) {
      try {
        return route(request, *target, *params);
      } catch (const Error& e) {
        if ((e.code() != Errc::NotFound && e.code() != Errc::StaleToken) || attempt == 3) throw;
      }
    }
  } catch (const Error& e) {
    if (e.code() == Errc::LockTimeout) return reply(503, std::string("session busy, retry: ") + e.what());
    return reply(500, std::string("store error: ") + e.what());
  } catch (const std::exception& e) {
    return reply(500, std::string("internal error: ") + e.what());
  }
}

template <class Sessions>
ShopResponse BasicShop<Sessions>::route(const ShopRequest& request, const Target& target, const Params& params) {
  const std::string& path = target.path;
  const bool get = request.method == "GET";
  const bool post = request.method == "POST";
  auto method_not_allowed = [] { return reply(405, "method not allowed on this path"); };
  if (path == "/") {
    if (!get) return method_not_allowed();
    return reply(200,
                 "shmsession demo shop: GET /cart, POST /cart/items?sku=SKU-0001&qty=1, "
                 "POST /cart/items/SKU-0001?qty=0, GET /view/SKU-0001, GET /api/session");
  }
  if (path == "/cart") {
    if (!get) return method_not_allowed();
    return show_cart(resolve_session(request.cookie), request.wants_html);
  }
  if (path == kItemsPath) {
    if (!post) return method_not_allowed();
    return add_item(resolve_session(request.cookie), params, request.wants_html);
  }
  if (path.starts_with(kItemPrefix)) {
    if (!post) return method_not_allowed();
    const std::string sku = path.substr(sizeof kItemPrefix - 1);
    if (find_product(sku) == nullptr) return reply(404, "no product '" + sku + "'");
    return set_quantity(resolve_session(request.cookie), sku, params, request.wants_html);
  }
  if (path.starts_with(kViewPrefix)) {
    if (!get) return method_not_allowed();
    const std::string sku = path.substr(sizeof kViewPrefix - 1);
    if (find_product(sku) == nullptr) return reply(404, "no product '" + sku + "'");
    return view_product(resolve_session(request.cookie), sku, request.wants_html);
  }
  if (path == "/api/session") {
    if (!get) return method_not_allowed();
    return session_json(resolve_session(request.cookie));
  }
  return reply(404, "no such path: " + path);
}

template <class Sessions>
typename BasicShop<Sessions>::Session BasicShop<Sessions>::resolve_session(std::string_view cookie_header) {
  if (std::optional<std::string> sid = cookie_value(cookie_header, kSessionCookie))
    if (valid_session_id(*sid) && sessions_.live(*sid)) return Session{std::move(*sid), false};
  // Never adopt an id the client made up (session fixation): a fresh one.
  return Session{new_session_id(), true};
}

template <class Sessions>
std::string BasicShop<Sessions>::new_session_id() {
  std::uint64_t words[2];
  {
    std::lock_guard<std::mutex> g(rng_mutex_);
    words[0] = rng_();
    words[1] = rng_();
  }
  char buf[kSessionIdChars + 1];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(words[0]),
                static_cast<unsigned long long>(words[1]));
  return buf;
}

template <class Sessions>
ShopResponse BasicShop<Sessions>::show_cart(const Session& session, bool html) {
  Handle s = sessions_.open(session.id);
  if (ensure_attributes(s)) s.commit();
  ShopResponse r;
  {
    auto cart = s.template get<Cart>(kCartAttribute);
    if (html) {
      auto profile = s.template get<UserProfile>(kProfileAttribute);  // after cart: name order
      r.content_type = "text/html; charset=utf-8";
      r.body = cart_html(*cart, *profile);
    } else {
      r.body = cart_text(*cart);
    }
  }
  if (session.is_new) r.set_cookie = session.id;
  return r;
}

template <class Sessions>
ShopResponse BasicShop<Sessions>::add_item(const Session& session, const Params& params, bool html) {
  auto sku_it = params.find("sku");
  if (sku_it == params.end()) return reply(400, "missing sku");
  const Product* product = find_product(sku_it->second);
  if (product == nullptr) return reply(400, "unknown sku '" + sku_it->second + "'");
  std::int32_t qty = 1;
  if (auto q = params.find("qty"); q != params.end()) {
    std::optional<std::int32_t> parsed = parse_qty(q->second, 1);
    if (!parsed) return reply(400, "qty must be an integer from 1 to " + std::to_string(kMaxQty));
    qty = *parsed;
  }
  Handle s = sessions_.open(session.id);
  const bool initialized = ensure_attributes(s);
  std::string refusal;
  {
    // Checked before the edit, so that a refused add leaves nothing tracked.
    auto cart = s.template get<Cart>(kCartAttribute);
    const LineItem* line = nullptr;
    for (const LineItem& i : cart->items)
      if (i.sku == product->sku) line = &i;
    if (line != nullptr && line->qty + qty > kMaxQty)
      refusal = "qty of " + product->sku + " would exceed " + std::to_string(kMaxQty);
    else if (line == nullptr && cart->items.size() >= kMaxCartLines)
      refusal = "the cart is full (" + std::to_string(kMaxCartLines) + " lines)";
  }
  if (!refusal.empty()) {
    if (initialized) s.commit();
    ShopResponse r = reply(400, refusal);
    if (session.is_new) r.set_cookie = session.id;
    return r;
  }
  {
    auto cart = s.template edit<Cart>(kCartAttribute);
    if (LineItem* line = cart->find(product->sku))
      line->qty += qty;
    else
      cart->items.push_back(LineItem{product->sku, product->title, qty, product->price_cents});
  }
  const auto outcome = s.commit();
  return after_post(s, outcome.version, session, html);
}

template <class Sessions>
ShopResponse BasicShop<Sessions>::set_quantity(const Session& session, const std::string& sku, const Params& params,
                                               bool html) {
  auto q = params.find("qty");
  if (q == params.end()) return reply(400, "missing qty");
  std::optional<std::int32_t> qty = parse_qty(q->second, 0);
  if (!qty) return reply(400, "qty must be an integer from 0 to " + std::to_string(kMaxQty));
  Handle s = sessions_.open(session.id);
  const bool initialized = ensure_attributes(s);
  bool present = false;
  {
    auto cart = s.template get<Cart>(kCartAttribute);
    for (const LineItem& i : cart->items) present = present || i.sku == sku;
  }
  if (!present) {
    if (initialized) s.commit();
    ShopResponse r = reply(404, sku + " is not in the cart");
    if (session.is_new) r.set_cookie = session.id;
    return r;
  }
  {
    auto cart = s.template edit<Cart>(kCartAttribute);
    auto line = std::find_if(cart->items.begin(), cart->items.end(), [&](const LineItem& i) { return i.sku == sku; });
    if (*qty == 0)
      cart->items.erase(line);
    else
      line->qty = *qty;
  }
  const auto outcome = s.commit();
  return after_post(s, outcome.version, session, html);
}

template <class Sessions>
ShopResponse BasicShop<Sessions>::view_product(const Session& session, const std::string& sku, bool html) {
  const Product* product = find_product(sku);
  Handle s = sessions_.open(session.id);
  ensure_attributes(s);
  {
    auto recent = s.template edit<RecentlyViewed>(kRecentAttribute);
    std::vector<std::string>& skus = recent->skus;
    skus.erase(std::remove(skus.begin(), skus.end(), sku), skus.end());
    skus.insert(skus.begin(), sku);
    if (skus.size() > kMaxRecent) skus.resize(kMaxRecent);
  }
  s.commit();
  ShopResponse r;
  if (html) {
    r.content_type = "text/html; charset=utf-8";
    r.body = "<!doctype html><html><body><h1>" + html_escape(product->title) + "</h1><p>" + product->sku + ", " +
             money(product->price_cents) +
             "</p><form method=post action=\"/cart/items\"><input type=hidden "
             "name=sku value=" +
             product->sku +
             "><input name=qty size=3 value=1><button>add to cart</button>"
             "</form><p><a href=\"/cart\">cart</a></p></body></html>";
  } else {
    r.body = product->sku + "  " + product->title + "  " + money(product->price_cents) + "\n";
  }
  if (session.is_new) r.set_cookie = session.id;
  return r;
}

template <class Sessions>
ShopResponse BasicShop<Sessions>::session_json(const Session& session) {
  Handle s = sessions_.open(session.id);
  std::uint64_t version = 0;
  if (ensure_attributes(s))
    version = s.commit().version;
  else
    version = sessions_.version(s);
  ShopResponse r;
  r.content_type = "application/json";
  r.body = describe(s, version, session.is_new);
  if (session.is_new) r.set_cookie = session.id;
  return r;
}

template <class Sessions>
std::string BasicShop<Sessions>::describe(Handle& s, std::uint64_t version, bool is_new) {
  boost::json::array lines;
  std::int64_t items = 0, total = 0;
  {
    auto cart = s.template get<Cart>(kCartAttribute);
    for (const LineItem& i : cart->items) {
      lines.push_back(boost::json::object{
          {"sku", i.sku}, {"title", i.title}, {"qty", i.qty}, {"unit_price_cents", i.unit_price_cents}});
      items += i.qty;
    }
    total = cart->total_cents();
  }
  std::string user;
  {
    auto profile = s.template get<UserProfile>(kProfileAttribute);
    user = profile->name;
  }
  boost::json::array recent;
  {
    auto viewed = s.template get<RecentlyViewed>(kRecentAttribute);
    for (const std::string& sku : viewed->skus) recent.push_back(boost::json::string(sku));
  }
  boost::json::object doc{{"worker", worker_index_},   {"pid", static_cast<std::int64_t>(::getpid())},
                          {"session", s.id()},         {"new_session", is_new},
                          {"version", version},        {"user", user},
                          {"lines", std::move(lines)}, {"items", items},
                          {"total_cents", total},      {"recently_viewed", std::move(recent)}};
  return boost::json::serialize(doc) + "\n";
}

template <class Sessions>
ShopResponse BasicShop<Sessions>::after_post(Handle& s, std::uint64_t version, const Session& session, bool html) {
  ShopResponse r;
  if (html) {
    r.status = 303;
    r.location = "/cart";
  } else {
    r.content_type = "application/json";
    r.body = describe(s, version, session.is_new);
  }
  if (session.is_new) r.set_cookie = session.id;
  return r;
}

template class BasicShop<ShmSessions>;
template class BasicShop<RedisSessions>;

}  // namespace shmsession::appserver
