#include "tools/shmbench/session_shape.hpp"

#include <cstdio>
#include <cstring>

namespace shmsession::bench {

std::string session_id(std::uint64_t index) {
  char text[32];
  const int length = std::snprintf(text, sizeof text, "session:%08llu", static_cast<unsigned long long>(index));
  return std::string(text, static_cast<std::size_t>(length));
}

std::uint64_t shape_payload_bytes() noexcept {
  std::uint64_t total = 0;
  for (const auto& attribute : kShapeAttributes) total += attribute.bytes + attribute.name.size();
  return total;
}

std::string filler_value(std::size_t bytes, char seed) {
  std::string value(bytes, '\0');
  for (std::size_t i = 0; i < bytes; ++i) value[i] = static_cast<char>('a' + (seed + i) % 26);
  return value;
}

CommitBatch fill_batch() {
  CommitBatch batch;
  char seed = 0;
  for (const auto& attribute : kShapeAttributes)
    batch.put(std::string(attribute.name), filler_value(attribute.bytes, seed++));
  return batch;
}

void stamp_value(std::string& value, std::uint64_t stamp) noexcept { std::memcpy(value.data(), &stamp, sizeof stamp); }

}  // namespace shmsession::bench
