#include "tools/shmctl/output.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <ostream>

#include <boost/json/serialize.hpp>

namespace shmsession::shmctl {
namespace {

void print_padded(std::ostream& out, const std::string& cell, std::size_t width, Align align) {
  std::string padding(width - std::min(width, cell.size()), ' ');
  if (align == Align::Right) {
    out << padding << cell;
  } else {
    out << cell << padding;
  }
}

// Prints one row; the last column is not padded when left-aligned, so no
// line ends in blanks.
void print_row(std::ostream& out, const std::vector<std::string>& cells, const std::vector<Column>& columns,
               const std::vector<std::size_t>& widths) {
  for (std::size_t i = 0; i < cells.size(); ++i) {
    if (i > 0) out << "  ";
    bool last = i + 1 == cells.size();
    if (last && columns[i].align == Align::Left) {
      out << cells[i];
    } else {
      print_padded(out, cells[i], widths[i], columns[i].align);
    }
  }
  out << '\n';
}

}  // namespace

Table::Table(std::vector<Column> columns) : columns_(std::move(columns)) {}

void Table::add_row(std::vector<std::string> cells) {
  cells.resize(columns_.size());
  rows_.push_back(std::move(cells));
}

void Table::print(std::ostream& out) const {
  std::vector<std::string> header;
  std::vector<std::size_t> widths;
  for (const Column& column : columns_) {
    header.push_back(column.title);
    widths.push_back(column.title.size());
  }
  for (const auto& row : rows_)
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  print_row(out, header, columns_, widths);
  for (const auto& row : rows_) print_row(out, row, columns_, widths);
}

FieldList& FieldList::add(std::string key, std::string value) {
  fields_.emplace_back(std::move(key), std::move(value));
  return *this;
}

void FieldList::print(std::ostream& out) const {
  std::size_t width = 0;
  for (const auto& field : fields_) width = std::max(width, field.first.size());
  for (const auto& [key, value] : fields_) {
    out << key << std::string(width - key.size() + 2, ' ') << value << '\n';
  }
}

void print_json(std::ostream& out, const boost::json::value& doc) { out << boost::json::serialize(doc) << '\n'; }

std::string quote(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "'";
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7f) {
      out += ch;
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out + "'";
}

namespace {

// Length of the well-formed UTF-8 sequence at the start of `s`, or 0 (RFC
// 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
std::size_t utf8_sequence_length(std::string_view s) {
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  std::size_t length = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc2 ? 2 : 0;
  if (length == 0 || lead > 0xf4 || s.size() < length) return 0;
  unsigned char low = 0x80, high = 0xbf;  // allowed range of the second byte
  if (lead == 0xe0) low = 0xa0;
  if (lead == 0xed) high = 0x9f;
  if (lead == 0xf0) low = 0x90;
  if (lead == 0xf4) high = 0x8f;
  if (byte(1) < low || byte(1) > high) return 0;
  for (std::size_t i = 2; i < length; ++i)
    if ((byte(i) & 0xc0) != 0x80) return 0;
  return length;
}

}  // namespace

std::string to_valid_utf8(std::string_view bytes, bool* lossy) {
  std::string out;
  out.reserve(bytes.size());
  *lossy = false;
  while (!bytes.empty()) {
    std::size_t length = utf8_sequence_length(bytes);
    if (length == 0) {
      out += "\xEF\xBF\xBD";
      *lossy = true;
      length = 1;
    } else {
      out.append(bytes.substr(0, length));
    }
    bytes.remove_prefix(length);
  }
  return out;
}

std::string base64_encode(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    std::uint32_t group = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) group |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    if (i + 2 < bytes.size()) group |= static_cast<unsigned char>(bytes[i + 2]);
    for (std::size_t k = 0; k < 4; ++k) {
      bool present = k <= bytes.size() - i;  // r bytes left give r + 1 characters
      out += present ? kAlphabet[(group >> (18 - 6 * k)) & 63] : '=';
    }
  }
  return out;
}

std::uint64_t now_unix_ms() {
  auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count());
}

std::uint64_t seconds_between(std::uint64_t unix_ms, std::uint64_t now_ms) {
  return now_ms > unix_ms ? (now_ms - unix_ms) / 1000 : 0;
}

std::string format_unix_ms(std::uint64_t unix_ms) {
  if (unix_ms == 0) return "-";
  auto seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm utc{};
  if (::gmtime_r(&seconds, &utc) == nullptr) return std::to_string(unix_ms);
  char buf[40];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(buf + n, sizeof buf - n, ".%03uZ", static_cast<unsigned>(unix_ms % 1000));
  return buf;
}

std::string format_bytes(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  std::string exact = std::to_string(bytes);
  if (bytes < 1024) return exact;
  double scaled = static_cast<double>(bytes) / 1024.0;
  std::size_t unit = 0;
  while (scaled >= 1024.0 && unit + 1 < std::size(kUnits)) {
    scaled /= 1024.0;
    ++unit;
  }
  char buf[48];
  std::snprintf(buf, sizeof buf, " (%.1f %s)", scaled, kUnits[unit]);
  return exact + buf;
}

std::string format_timeout(std::uint32_t seconds) {
  return seconds == 0 ? std::string("never") : std::to_string(seconds) + "s";
}

}  // namespace shmsession::shmctl
