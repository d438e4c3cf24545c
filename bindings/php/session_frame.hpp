// The bytes the PHP serializer "shmsession" (php_shmsession.cpp) makes of
// $_SESSION and the save handler takes apart: one entry per top-level key,
//   u32 key length (little endian) | key bytes | u32 value length | value
// where the value is the key's value in PHP's serialization, made with a
// serializer state of its own (so it refers to nothing outside itself and
// can be stored, compared and read back alone). An empty frame: no keys.
//
// Thread safety: free functions on caller-owned data.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace shmsession::php {

struct FrameEntry {
  std::string_view key;
  std::string_view value;
};

void append_entry(std::string& frame, std::string_view key, std::string_view value);

// The entries of `frame`, viewing into it, in its order.
// Throws: Error(InvalidArgument) if it is not a whole number of entries or
// names a key twice.
std::vector<FrameEntry> parse_frame(std::string_view frame);

}  // namespace shmsession::php
