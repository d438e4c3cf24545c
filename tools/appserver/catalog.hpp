// The demo shop's product catalog: a fixed, deterministic list of products
// (SKU-0001 .. SKU-0200), the same in every process, so any worker can price
// a line item and the load client can pick valid SKUs without asking.
//
// Thread safety: immutable after first use (a function-local static).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace shmsession::appserver {

struct Product {
  std::string sku;
  std::string title;
  std::int64_t price_cents = 0;
};

inline constexpr std::size_t kCatalogSize = 200;

const std::vector<Product>& catalog();
// The product of `sku`, or nullptr when the shop does not sell it.
const Product* find_product(std::string_view sku);
// The sku of the n-th product (n taken modulo the catalog's size).
const std::string& product_sku(std::size_t n);

}  // namespace shmsession::appserver
