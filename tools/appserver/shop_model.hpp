// The objects the demo shop keeps in a session, each one attribute of the
// session through sync::Client (Boost.Serialization with named members, so
// that both the attribute bytes and the object graph see them):
//   profile  UserProfile     who the visitor is and how they like the shop
//   cart     Cart            line items (sku, title, qty, unit price)
//   recent   RecentlyViewed  the last products viewed, newest first, bounded
// The integration test decodes the standby's copy with these same types
// (the attribute's type tag comes from the C++ type name, so every process
// must use this header).
//
// Thread safety: plain values. Cross-process safety: nothing shared.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <boost/serialization/nvp.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/vector.hpp>

namespace shmsession::appserver {

inline constexpr char kProfileAttribute[] = "profile";
inline constexpr char kCartAttribute[] = "cart";
inline constexpr char kRecentAttribute[] = "recent";
inline constexpr std::size_t kMaxRecent = 10;     // RecentlyViewed keeps this many
inline constexpr std::size_t kMaxCartLines = 50;  // an add beyond it is refused (400)
inline constexpr std::int32_t kMaxQty = 999;

struct Preferences {
  std::string currency = "EUR";
  std::string language = "en";
  bool newsletter = false;

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& boost::serialization::make_nvp("currency", currency) & boost::serialization::make_nvp("language", language) &
        boost::serialization::make_nvp("newsletter", newsletter);
  }
};

struct UserProfile {
  std::string name;
  std::string email;
  Preferences preferences;
  std::int64_t created_unix = 0;

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& boost::serialization::make_nvp("name", name) & boost::serialization::make_nvp("email", email) &
        boost::serialization::make_nvp("preferences", preferences) &
        boost::serialization::make_nvp("created_unix", created_unix);
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

  std::int64_t total_cents() const {
    std::int64_t total = 0;
    for (const LineItem& i : items) total += i.qty * i.unit_price_cents;
    return total;
  }
  LineItem* find(const std::string& sku) {
    for (LineItem& i : items)
      if (i.sku == sku) return &i;
    return nullptr;
  }

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& boost::serialization::make_nvp("items", items);
  }
};

struct RecentlyViewed {
  std::vector<std::string> skus;  // newest first, at most kMaxRecent, no duplicates

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& boost::serialization::make_nvp("skus", skus);
  }
};

}  // namespace shmsession::appserver
