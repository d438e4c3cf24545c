#include "tools/appserver/catalog.hpp"

#include <cstdio>

namespace shmsession::appserver {
namespace {

std::vector<Product> make_catalog() {
  static const char* const kAdjectives[] = {"Classic",  "Compact", "Deluxe",   "Rugged",  "Organic",
                                            "Wireless", "Vintage", "Foldable", "Ceramic", "Bamboo"};
  static const char* const kNouns[] = {"Teapot",   "Backpack", "Desk Lamp",     "Notebook", "Headphones",
                                       "Umbrella", "Kettle",   "Water Bottle",  "Chair",    "Blanket",
                                       "Mug",      "Speaker",  "Cutting Board", "Jacket",   "Candle",
                                       "Clock",    "Planter",  "Sunglasses",    "Scarf",    "Wallet"};
  std::vector<Product> products;
  products.reserve(kCatalogSize);
  for (std::size_t n = 0; n < kCatalogSize; ++n) {
    char sku[16];
    std::snprintf(sku, sizeof sku, "SKU-%04zu", n + 1);
    std::string title = std::string(kAdjectives[n % 10]) + " " + kNouns[(n / 10) % 20];
    // Prices from 4.99 to ~199: spread, deterministic.
    const std::int64_t price = 499 + static_cast<std::int64_t>((n * 7919) % 19500);
    products.push_back(Product{sku, std::move(title), price});
  }
  return products;
}

}  // namespace

const std::vector<Product>& catalog() {
  static const std::vector<Product> products = make_catalog();
  return products;
}

const Product* find_product(std::string_view sku) {
  // SKU-nnnn with nnnn in 1..kCatalogSize: computed, no search.
  if (sku.size() != 8 || sku.substr(0, 4) != "SKU-") return nullptr;
  std::size_t n = 0;
  for (char c : sku.substr(4)) {
    if (c < '0' || c > '9') return nullptr;
    n = n * 10 + static_cast<std::size_t>(c - '0');
  }
  if (n < 1 || n > kCatalogSize) return nullptr;
  return &catalog()[n - 1];
}

const std::string& product_sku(std::size_t n) { return catalog()[n % kCatalogSize].sku; }

}  // namespace shmsession::appserver
