#include "tools/shmbench/session_objects.hpp"

#include <array>
#include <cstdio>
#include <string_view>

#include "tools/shmbench/session_shape.hpp"

namespace shmsession::bench {

namespace {

constexpr std::array<std::string_view, 16> kWords = {"alpine", "basket", "cobalt", "denim",   "ember",  "falcon",
                                                     "garnet", "harbor", "indigo", "juniper", "kettle", "linen",
                                                     "meadow", "nickel", "orchid", "pepper"};
constexpr std::array<std::string_view, 4> kStatuses = {"placed", "paid", "shipped", "delivered"};
constexpr std::array<std::string_view, 6> kLocales = {"en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL"};

std::string digits(std::uint64_t value, int width) {
  char text[32];
  std::snprintf(text, sizeof text, "%0*llu", width, static_cast<unsigned long long>(value));
  return text;
}

}  // namespace

Profile make_profile(std::uint64_t seed) {
  SplitMix64 random(seed);
  Profile profile;
  profile.user_id = "u-" + digits(random.below(100'000'000), 8);
  profile.display_name =
      std::string(kWords[random.below(kWords.size())]) + " " + std::string(kWords[random.below(kWords.size())]);
  profile.email = profile.display_name.substr(0, profile.display_name.find(' ')) + "." +
                  digits(random.below(10'000), 4) + "@mail.example.com";
  profile.locale = std::string(kLocales[random.below(kLocales.size())]);
  profile.country = profile.locale.substr(3);
  profile.age = static_cast<std::int32_t>(18 + random.below(70));
  profile.visits = static_cast<std::int32_t>(random.below(500));
  profile.customer_since_unix = static_cast<std::int64_t>(1'500'000'000 + random.below(200'000'000));
  profile.last_login_unix = profile.customer_since_unix + static_cast<std::int64_t>(random.below(10'000'000));
  return profile;
}

std::string make_title(std::uint64_t seed) {
  SplitMix64 random(seed);
  std::string title;
  const std::size_t target = 16 + random.below(25);
  while (title.size() < target) {
    if (!title.empty()) title += ' ';
    title += kWords[random.below(kWords.size())];
  }
  title.resize(target);
  return title;
}

LineItem make_line_item(std::uint64_t seed) {
  SplitMix64 random(seed);
  LineItem item;
  item.sku = "SKU-" + digits(random.below(1'000'000), 6);
  item.title = make_title(random.next());
  item.qty = static_cast<std::int32_t>(1 + random.below(9));
  item.unit_price_cents = static_cast<std::int64_t>(99 + random.below(50'000));
  return item;
}

Cart make_cart(std::uint64_t seed, std::size_t items) {
  SplitMix64 random(seed);
  Cart cart;
  cart.items.reserve(items);
  for (std::size_t i = 0; i < items; ++i) cart.items.push_back(make_line_item(random.next()));
  cart.coupon = random.below(2) == 0 ? "" : "SPRING" + digits(random.below(100), 2);
  cart.updated_unix = static_cast<std::int64_t>(1'700'000'000 + random.below(10'000'000));
  return cart;
}

RecentProducts make_recent(std::uint64_t seed, std::size_t products) {
  SplitMix64 random(seed);
  RecentProducts recent;
  recent.product_ids.reserve(products);
  for (std::size_t i = 0; i < products; ++i) recent.product_ids.push_back(100'000 + random.below(900'000));
  return recent;
}

Order make_order(std::uint64_t seed) {
  SplitMix64 random(seed);
  Order order;
  order.order_id = 10'000'000 + random.below(90'000'000);
  order.placed_unix = static_cast<std::int64_t>(1'600'000'000 + random.below(100'000'000));
  order.status = std::string(kStatuses[random.below(kStatuses.size())]);
  order.ship_to = digits(1 + random.below(300), 1) + " " + make_title(random.next()) + " Street";
  const std::size_t lines = 1 + random.below(4);
  for (std::size_t i = 0; i < lines; ++i) {
    order.lines.push_back(make_line_item(random.next()));
    order.total_cents += order.lines.back().qty * order.lines.back().unit_price_cents;
  }
  return order;
}

OrderHistory make_history(std::uint64_t seed, std::size_t orders) {
  SplitMix64 random(seed);
  OrderHistory history;
  history.orders.reserve(orders + 1);
  for (std::size_t i = 0; i < orders; ++i) history.orders.push_back(make_order(random.next()));
  return history;
}

void change_one_quantity(Cart& cart, std::uint64_t k) {
  LineItem& item = cart.items[k % cart.items.size()];
  item.qty = item.qty % 9 + 1;  // 1..9, always another value
}

}  // namespace shmsession::bench
