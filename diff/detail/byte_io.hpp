// Bounded little-endian readers and writers for diff/'s wire formats.
//
// ByteReader never reads past the view it was given: every read first checks
// the bytes that remain and throws CorruptInput (or what its owner chose)
// naming the field, the
// offset and what was expected. Lengths read from the input are checked
// against both the remaining bytes and a caller cap before the caller can
// allocate anything. Varints are LEB128 (7 bits per byte, low group first),
// at most 10 bytes, and must be minimal so every value has one encoding.
//
// Thread safety: a reader or writer belongs to one thread; distinct objects
// may be used concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace shmsession::diff::detail {

// Longest LEB128 encoding of a 64-bit value.
inline constexpr std::size_t kMaxVarintBytes = 10;

// Bytes the LEB128 encoding of `value` takes.
std::size_t varint_size(std::uint64_t value) noexcept;

// Throws diff::CorruptInput(message): how a ByteReader fails by default.
[[noreturn]] void throw_corrupt_input(const std::string& message);

class ByteReader {
 public:
  // Reports a failure by throwing; it must not return.
  using Failure = void (*)(const std::string& message);

  // `context` prefixes every error message ("delta", "patch"). `failure`
  // throws the exception the caller's module speaks (sync/'s wire formats
  // throw shmsession::Error(Corrupt)).
  ByteReader(std::string_view bytes, std::string_view context, Failure failure = throw_corrupt_input) noexcept
      : bytes_(bytes), context_(context), failure_(failure) {}

  std::size_t position() const noexcept { return pos_; }
  std::size_t remaining() const noexcept { return bytes_.size() - pos_; }
  bool at_end() const noexcept { return pos_ == bytes_.size(); }

  // Fails (CorruptInput by default) when the field is truncated (all reads below).
  std::uint8_t u8(std::string_view field);
  std::uint16_t u16(std::string_view field);
  std::uint32_t u32(std::string_view field);
  std::uint64_t u64(std::string_view field);
  // Fails also for an overlong (non-minimal) or >64-bit varint.
  std::uint64_t varint(std::string_view field);
  // A varint that must be <= cap, returned as a size.
  // Fails naming the field and the cap when it is larger.
  std::size_t varint_at_most(std::uint64_t cap, std::string_view field);
  // The next `size` bytes, as a view into the input (no copy).
  std::string_view bytes(std::size_t size, std::string_view field);
  // A varint length, checked against `cap` and the remaining bytes, then
  // that many bytes.
  std::string_view sized_bytes(std::size_t cap, std::string_view field);
  // The rest of the input.
  std::string_view rest() noexcept;

  // Fails with "<context>: <message> (at byte <position>)": CorruptInput
  // unless the constructor was given another failure.
  [[noreturn]] void fail(const std::string& message) const;

 private:
  void need(std::size_t size, std::string_view field) const;
  // `suffix` completes the field's name in messages (" length").
  std::uint64_t read_varint(std::string_view field, std::string_view suffix);
  void check_cap(std::uint64_t value, std::uint64_t cap, std::string_view field, std::string_view suffix) const;

  std::string_view bytes_;
  std::string_view context_;
  Failure failure_;
  std::size_t pos_ = 0;
};

// Appends to a std::string; the fixed-width forms are little-endian.
class ByteWriter {
 public:
  explicit ByteWriter(std::string& out) noexcept : out_(out) {}

  void u8(std::uint8_t value);
  void u16(std::uint16_t value);
  void u32(std::uint32_t value);
  void u64(std::uint64_t value);
  void varint(std::uint64_t value);
  void bytes(std::string_view value);
  void sized_bytes(std::string_view value);  // varint length, then the bytes

 private:
  void fixed(std::uint64_t value, std::size_t width);

  std::string& out_;
};

// Stores `value` little-endian in out[0..8): used to patch a field in place.
void store_u64(char* out, std::uint64_t value) noexcept;
std::uint64_t load_u64(const char* in) noexcept;

}  // namespace shmsession::diff::detail
