// SessionObjects: the C++ objects a web shop keeps in a session, as the
// `cycle` and `delta` workloads store them: Boost.Serialization types with
// named members (make_nvp), so that both the binary archive (the attribute
// bytes, sync/attribute_codec.hpp) and the object graph (graph/) see them.
//   profile  Profile         a few strings and integers (~200 B encoded)
//   cart     Cart            line items (sku, title, qty, price), coupon
//   recent   RecentProducts  ids of recently viewed products
//   history  OrderHistory    past orders, newest first (the large attribute
//                            of the `delta` workload: ~1 MiB)
// Builders fill them deterministically from a seed, so shmsession and the
// peer start from the same values, byte for byte.
//
// Thread safety: plain values; the builders are pure functions.
// Cross-process safety: nothing shared; safe to use after fork().
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <boost/serialization/nvp.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/vector.hpp>

namespace shmsession::bench {

struct Profile {
  std::string user_id;
  std::string display_name;
  std::string email;
  std::string locale;
  std::string country;
  std::int32_t age = 0;
  std::int32_t visits = 0;
  std::int64_t customer_since_unix = 0;
  std::int64_t last_login_unix = 0;

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& boost::serialization::make_nvp("user_id", user_id) &
        boost::serialization::make_nvp("display_name", display_name) & boost::serialization::make_nvp("email", email) &
        boost::serialization::make_nvp("locale", locale) & boost::serialization::make_nvp("country", country) &
        boost::serialization::make_nvp("age", age) & boost::serialization::make_nvp("visits", visits) &
        boost::serialization::make_nvp("customer_since_unix", customer_since_unix) &
        boost::serialization::make_nvp("last_login_unix", last_login_unix);
  }
};

struct LineItem {
  std::string sku;
  std::string title;
  std::int32_t qty = 0;
  std::int64_t unit_price_cents = 0;

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& boost::serialization::make_nvp("sku", sku) & boost::serialization::make_nvp("title", title) &
        boost::serialization::make_nvp("qty", qty) &
        boost::serialization::make_nvp("unit_price_cents", unit_price_cents);
  }
};

struct Cart {
  std::vector<LineItem> items;
  std::string coupon;
  std::int64_t updated_unix = 0;

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& boost::serialization::make_nvp("items", items) & boost::serialization::make_nvp("coupon", coupon) &
        boost::serialization::make_nvp("updated_unix", updated_unix);
  }
};

struct RecentProducts {
  std::vector<std::uint64_t> product_ids;

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& boost::serialization::make_nvp("product_ids", product_ids);
  }
};

struct Order {
  std::uint64_t order_id = 0;
  std::int64_t placed_unix = 0;
  std::string status;
  std::string ship_to;
  std::vector<LineItem> lines;
  std::int64_t total_cents = 0;

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& boost::serialization::make_nvp("order_id", order_id) &
        boost::serialization::make_nvp("placed_unix", placed_unix) & boost::serialization::make_nvp("status", status) &
        boost::serialization::make_nvp("ship_to", ship_to) & boost::serialization::make_nvp("lines", lines) &
        boost::serialization::make_nvp("total_cents", total_cents);
  }
};

struct OrderHistory {
  std::vector<Order> orders;  // newest first

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& boost::serialization::make_nvp("orders", orders);
  }
};

Profile make_profile(std::uint64_t seed);
// A title of 16..40 characters, from a small vocabulary.
std::string make_title(std::uint64_t seed);
LineItem make_line_item(std::uint64_t seed);
Cart make_cart(std::uint64_t seed, std::size_t items);
RecentProducts make_recent(std::uint64_t seed, std::size_t products);
// An order of 1..4 line items (~280 B encoded on average).
Order make_order(std::uint64_t seed);
OrderHistory make_history(std::uint64_t seed, std::size_t orders);

// The edit of a request: one line item's quantity changes (never to the
// same value), chosen by the request number `k`. Requires: items not empty.
void change_one_quantity(Cart& cart, std::uint64_t k);

}  // namespace shmsession::bench
