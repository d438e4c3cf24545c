// Aligned text for shmbench's tables: columns as wide as their widest cell,
// the first `left_columns` left-aligned (names), the rest right-aligned
// (figures), two spaces apart; and the one way every report writes a
// figure in a cell. Plain values; no sharing.
#pragma once

#include <optional>
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

inline const std::string kNotAvailable = "n/a";

// fixed(value, decimals) if the figure was measured, else "n/a".
inline std::string fixed_if(bool measured, double value, int decimals) {
  return measured ? fixed(value, decimals) : kNotAvailable;
}

// Three significant digits or more: 0.412, 41.2, 412, 41200; "n/a" if none.
std::string figure_text(std::optional<double> value);
// How many times one figure is another: "3.14x", "41.2x", "4120x"; "" if none.
std::string times_text(std::optional<double> ratio);

}  // namespace shmsession::bench
