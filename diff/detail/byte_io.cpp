#include "diff/detail/byte_io.hpp"

#include "diff/error.hpp"

namespace shmsession::diff::detail {

std::size_t varint_size(std::uint64_t value) noexcept {
  std::size_t size = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++size;
  }
  return size;
}

void throw_corrupt_input(const std::string& message) { throw CorruptInput(message); }

void ByteReader::fail(const std::string& message) const {
  failure_(std::string(context_) + ": " + message + " (at byte " + std::to_string(pos_) + ")");
  throw CorruptInput("a ByteReader failure returned");  // a Failure must throw; never reached
}

void ByteReader::need(std::size_t size, std::string_view field) const {
  if (size > remaining())
    fail("truncated " + std::string(field) + ": needs " + std::to_string(size) + " bytes, " +
         std::to_string(remaining()) + " remain");
}

std::uint8_t ByteReader::u8(std::string_view field) {
  need(1, field);
  return static_cast<std::uint8_t>(bytes_[pos_++]);
}

std::uint16_t ByteReader::u16(std::string_view field) {
  need(2, field);
  std::uint16_t value = 0;
  for (std::size_t i = 0; i < 2; ++i)
    value |= static_cast<std::uint16_t>(static_cast<std::uint8_t>(bytes_[pos_ + i]) << (8 * i));
  pos_ += 2;
  return value;
}

std::uint32_t ByteReader::u32(std::string_view field) {
  need(4, field);
  std::uint32_t value = 0;
  for (std::size_t i = 0; i < 4; ++i) value |= std::uint32_t{static_cast<std::uint8_t>(bytes_[pos_ + i])} << (8 * i);
  pos_ += 4;
  return value;
}

std::uint64_t ByteReader::u64(std::string_view field) {
  need(8, field);
  std::uint64_t value = load_u64(bytes_.data() + pos_);
  pos_ += 8;
  return value;
}

std::uint64_t ByteReader::varint(std::string_view field) { return read_varint(field, {}); }

std::uint64_t ByteReader::read_varint(std::string_view field, std::string_view suffix) {
  const auto name = [&] { return std::string(field) + std::string(suffix); };
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < kMaxVarintBytes; ++i) {
    if (at_end()) fail("truncated " + name() + " (varint)");
    const std::uint8_t byte = static_cast<std::uint8_t>(bytes_[pos_++]);
    if (i == kMaxVarintBytes - 1 && byte > 1) fail(name() + " varint exceeds 64 bits");
    value |= std::uint64_t{byte & 0x7fu} << (7 * i);
    if ((byte & 0x80u) == 0) {
      if (byte == 0 && i > 0) fail(name() + " varint is not minimal");
      return value;
    }
  }
  fail(name() + " varint is longer than 10 bytes");
}

void ByteReader::check_cap(std::uint64_t value, std::uint64_t cap, std::string_view field,
                           std::string_view suffix) const {
  if (value > cap)
    fail(std::string(field) + std::string(suffix) + " " + std::to_string(value) + " exceeds the limit of " +
         std::to_string(cap));
}

std::size_t ByteReader::varint_at_most(std::uint64_t cap, std::string_view field) {
  const std::uint64_t value = read_varint(field, {});
  check_cap(value, cap, field, {});
  return static_cast<std::size_t>(value);
}

std::string_view ByteReader::bytes(std::size_t size, std::string_view field) {
  need(size, field);
  std::string_view out = bytes_.substr(pos_, size);
  pos_ += size;
  return out;
}

std::string_view ByteReader::sized_bytes(std::size_t cap, std::string_view field) {
  const std::uint64_t size = read_varint(field, " length");
  check_cap(size, cap, field, " length");
  return bytes(static_cast<std::size_t>(size), field);
}

std::string_view ByteReader::rest() noexcept {
  std::string_view out = bytes_.substr(pos_);
  pos_ = bytes_.size();
  return out;
}

void ByteWriter::fixed(std::uint64_t value, std::size_t width) {
  for (std::size_t i = 0; i < width; ++i) out_.push_back(static_cast<char>((value >> (8 * i)) & 0xffu));
}

void ByteWriter::u8(std::uint8_t value) { out_.push_back(static_cast<char>(value)); }
void ByteWriter::u16(std::uint16_t value) { fixed(value, 2); }
void ByteWriter::u32(std::uint32_t value) { fixed(value, 4); }
void ByteWriter::u64(std::uint64_t value) { fixed(value, 8); }

void ByteWriter::varint(std::uint64_t value) {
  while (value >= 0x80) {
    out_.push_back(static_cast<char>((value & 0x7fu) | 0x80u));
    value >>= 7;
  }
  out_.push_back(static_cast<char>(value));
}

void ByteWriter::bytes(std::string_view value) { out_.append(value); }

void ByteWriter::sized_bytes(std::string_view value) {
  varint(value.size());
  out_.append(value);
}

void store_u64(char* out, std::uint64_t value) noexcept {
  for (std::size_t i = 0; i < 8; ++i) out[i] = static_cast<char>((value >> (8 * i)) & 0xffu);
}

std::uint64_t load_u64(const char* in) noexcept {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < 8; ++i) value |= std::uint64_t{static_cast<std::uint8_t>(in[i])} << (8 * i);
  return value;
}

}  // namespace shmsession::diff::detail
