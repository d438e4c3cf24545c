// How shmctl prints: aligned text tables and field lists for people, one
// JSON document per command for programs, and the small value formats
// (times, byte counts, timeouts) both share.
//
// Thread safety: free functions are pure (they read the clock at most); a
// Table or FieldList belongs to the thread that fills it. No shared memory.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/value.hpp>

namespace shmsession::shmctl {

enum class Align { Left, Right };

struct Column {
  std::string title;
  Align align = Align::Left;
};

// Rows under a header row; every column is as wide as its widest cell and
// columns are two spaces apart. Trailing blanks are not printed.
class Table {
 public:
  explicit Table(std::vector<Column> columns);
  // Requires: cells.size() equals the number of columns.
  void add_row(std::vector<std::string> cells);
  void print(std::ostream& out) const;

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

// "key  value" lines with every value starting in the same column: the
// human form of a single record (a store's info, one command's result).
class FieldList {
 public:
  FieldList& add(std::string key, std::string value);
  void print(std::ostream& out) const;

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

// Writes `doc` serialized on one line, then a newline.
void print_json(std::ostream& out, const boost::json::value& doc);

// 'name' with bytes outside printable ASCII escaped as \xNN, so that an
// error message or a table cell stays on one line.
std::string quote(std::string_view text);

// `bytes` as valid UTF-8: every byte that does not start a well-formed
// sequence becomes U+FFFD. Sets `*lossy` when anything was replaced.
std::string to_valid_utf8(std::string_view bytes, bool* lossy);
// Standard base64 (RFC 4648, padded).
std::string base64_encode(std::string_view bytes);

// Milliseconds since the Unix epoch, from the system clock.
std::uint64_t now_unix_ms();
// Whole seconds from `unix_ms` to `now_ms` (0 if `unix_ms` is later).
std::uint64_t seconds_between(std::uint64_t unix_ms, std::uint64_t now_ms);
// "2024-11-22T15:37:00.123Z" (UTC); "-" for 0.
std::string format_unix_ms(std::uint64_t unix_ms);
// "67108864 (64.0 MiB)"; below 1 KiB just the number.
std::string format_bytes(std::uint64_t bytes);
// "1800s", or "never" for 0.
std::string format_timeout(std::uint32_t seconds);

}  // namespace shmsession::shmctl
