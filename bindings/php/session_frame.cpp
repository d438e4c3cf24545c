#include "bindings/php/session_frame.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>

#include "shm/error.hpp"

namespace shmsession::php {

namespace {

void append_length(std::string& out, std::size_t n) {
  if (n > std::numeric_limits<std::uint32_t>::max())
    throw Error(Errc::InvalidArgument, "a session key or value of " + std::to_string(n) + " bytes is too large");
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
}

// The length at `pos`, moving past it; throws if the frame ends first.
std::size_t take_length(std::string_view frame, std::size_t& pos) {
  if (frame.size() - pos < 4) throw Error(Errc::InvalidArgument, "session frame cut inside a length");
  std::uint32_t n = 0;
  for (int i = 0; i < 4; ++i) n |= std::uint32_t{static_cast<unsigned char>(frame[pos + i])} << (8 * i);
  pos += 4;
  return n;
}

std::string_view take_bytes(std::string_view frame, std::size_t& pos, std::size_t n) {
  if (frame.size() - pos < n) throw Error(Errc::InvalidArgument, "session frame cut inside a key or value");
  const std::string_view bytes = frame.substr(pos, n);
  pos += n;
  return bytes;
}

}  // namespace

void append_entry(std::string& frame, std::string_view key, std::string_view value) {
  append_length(frame, key.size());
  frame.append(key);
  append_length(frame, value.size());
  frame.append(value);
}

std::vector<FrameEntry> parse_frame(std::string_view frame) {
  std::vector<FrameEntry> entries;
  std::size_t pos = 0;
  while (pos < frame.size()) {
    FrameEntry entry;
    entry.key = take_bytes(frame, pos, take_length(frame, pos));
    entry.value = take_bytes(frame, pos, take_length(frame, pos));
    entries.push_back(entry);
  }
  std::vector<std::string_view> keys;
  keys.reserve(entries.size());
  for (const FrameEntry& e : entries) keys.push_back(e.key);
  std::sort(keys.begin(), keys.end());
  if (std::adjacent_find(keys.begin(), keys.end()) != keys.end())
    throw Error(Errc::InvalidArgument, "session frame names a key twice");
  return entries;
}

}  // namespace shmsession::php
