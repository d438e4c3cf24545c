// Aligned text for shmbench's tables: columns as wide as their widest cell,
// the first `left_columns` left-aligned (names), the rest right-aligned
// (figures), two spaces apart. Plain values; no sharing.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace shmsession::bench {

class TextTable {
 public:
  TextTable(std::vector<std::string> header, std::size_t left_columns);
  // Requires: as many cells as the header.
  void add(std::vector<std::string> row);
  void print(std::ostream& out) const;

 private:
  std::size_t left_columns_;
  std::vector<std::vector<std::string>> rows_;
};

// `value` with `decimals` digits after the point.
std::string fixed(double value, int decimals);

}  // namespace shmsession::bench
