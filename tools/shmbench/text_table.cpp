#include "tools/shmbench/text_table.hpp"

#include <algorithm>
#include <cstdio>

namespace shmsession::bench {

TextTable::TextTable(std::vector<std::string> header, std::size_t left_columns) : left_columns_(left_columns) {
  rows_.push_back(std::move(header));
}

void TextTable::add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }

void TextTable::print(std::ostream& out) const {
  std::vector<std::size_t> widths(rows_.front().size(), 0);
  for (const auto& row : rows_)
    for (std::size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  for (const auto& row : rows_) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      const std::string pad(widths[c] - row[c].size(), ' ');
      line += c == 0 ? "" : "  ";
      line += c < left_columns_ ? row[c] + pad : pad + row[c];
    }
    line.erase(line.find_last_not_of(' ') + 1);
    out << line << '\n';
  }
}

std::string fixed(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return text;
}

std::string figure_text(std::optional<double> value) {
  if (!value) return kNotAvailable;
  return fixed(*value, *value < 1 ? 3 : *value < 10 ? 2 : *value < 100 ? 1 : 0);
}

std::string times_text(std::optional<double> ratio) {
  if (!ratio) return "";
  return fixed(*ratio, *ratio < 10 ? 2 : *ratio < 1000 ? 1 : 0) + "x";
}

}  // namespace shmsession::bench
