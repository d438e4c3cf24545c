// Sequence alignment behind the graph diff of vectors and lists.
#include <boost/test/unit_test.hpp>

#include <random>

#include "graph/detail/sequence_alignment.hpp"

using namespace shmsession::graph::detail;
using Op = AlignmentStep::Op;
using Hashes = std::vector<std::uint64_t>;

namespace shmsession::graph::detail {
std::ostream& operator<<(std::ostream& out, const AlignmentStep& step) {
  const char* op = step.op == Op::Pair ? "Pair" : step.op == Op::Removed ? "Removed" : "Added";
  return out << op << '(' << step.before << ',' << step.after << ')';
}
}  // namespace shmsession::graph::detail

namespace {

std::size_t lcs_length_by_table(const Hashes& a, const Hashes& b) {
  std::vector<std::vector<std::size_t>> t(a.size() + 1, std::vector<std::size_t>(b.size() + 1, 0));
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      t[i][j] = a[i - 1] == b[j - 1] ? t[i - 1][j - 1] + 1 : std::max(t[i - 1][j], t[i][j - 1]);
    }
  }
  return t[a.size()][b.size()];
}

// Every index of both sides appears once, in increasing order.
void check_covers(const std::vector<AlignmentStep>& steps, std::size_t n, std::size_t m) {
  std::uint32_t next_before = 0;
  std::uint32_t next_after = 0;
  for (const AlignmentStep& step : steps) {
    if (step.op != Op::Added) BOOST_TEST_REQUIRE(step.before == next_before++);
    if (step.op != Op::Removed) BOOST_TEST_REQUIRE(step.after == next_after++);
  }
  BOOST_TEST(next_before == n);
  BOOST_TEST(next_after == m);
}

}  // namespace

BOOST_AUTO_TEST_CASE(insert_at_front_is_one_added_step) {
  const std::vector<AlignmentStep> expected{{Op::Added, 0, 0}, {Op::Pair, 0, 1}, {Op::Pair, 1, 2}, {Op::Pair, 2, 3}};
  BOOST_TEST(align_sequences(Hashes{1, 2, 3}, Hashes{0, 1, 2, 3}) == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(removal_in_the_middle_is_one_removed_step) {
  const std::vector<AlignmentStep> expected{{Op::Pair, 0, 0}, {Op::Removed, 1, 0}, {Op::Pair, 2, 1}};
  BOOST_TEST(align_sequences(Hashes{1, 2, 3}, Hashes{1, 3}) == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(changed_elements_are_paired_by_position) {
  const std::vector<AlignmentStep> expected{{Op::Pair, 0, 0}, {Op::Pair, 1, 1}, {Op::Pair, 2, 2}};
  BOOST_TEST(align_sequences(Hashes{1, 2, 3}, Hashes{1, 9, 3}) == expected, boost::test_tools::per_element());
  const std::vector<AlignmentStep> grown{{Op::Pair, 0, 0}, {Op::Pair, 1, 1}, {Op::Added, 0, 2}, {Op::Pair, 2, 3}};
  BOOST_TEST(align_sequences(Hashes{1, 2, 3}, Hashes{1, 8, 9, 3}) == grown, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(lcs_of_myers_paper_example) {
  const Hashes a{'A', 'B', 'C', 'A', 'B', 'B', 'A'};
  const Hashes b{'C', 'B', 'A', 'B', 'A', 'C'};
  const auto pairs = longest_common_subsequence(a, b, 100);
  BOOST_TEST_REQUIRE(pairs.has_value());
  BOOST_TEST(pairs->size() == 4u);
  for (auto [i, j] : *pairs) BOOST_TEST(a[i] == b[j]);
}

BOOST_AUTO_TEST_CASE(too_many_edits_falls_back_to_position) {
  BOOST_TEST(!longest_common_subsequence(Hashes{1, 2, 3, 4}, Hashes{5, 6, 7, 8}, 2).has_value());
  const auto steps = align_sequences(Hashes{1, 2, 3, 4}, Hashes{5, 6, 7, 8}, 2);
  BOOST_TEST(steps.size() == 4u);
  for (const AlignmentStep& step : steps) BOOST_TEST((step.op == Op::Pair && step.before == step.after));
}

BOOST_AUTO_TEST_CASE(random_sequences_match_the_dynamic_programming_lcs) {
  std::mt19937 random(12345);
  for (int round = 0; round < 300; ++round) {
    Hashes a(random() % 30);
    Hashes b(random() % 30);
    for (auto& x : a) x = random() % 4;
    for (auto& x : b) x = random() % 4;
    const auto pairs = longest_common_subsequence(a, b, 1000);
    BOOST_TEST_REQUIRE(pairs.has_value());
    BOOST_TEST_REQUIRE(pairs->size() == lcs_length_by_table(a, b));
    for (std::size_t k = 0; k < pairs->size(); ++k) {
      BOOST_TEST_REQUIRE(a[(*pairs)[k].first] == b[(*pairs)[k].second]);
      if (k > 0)
        BOOST_TEST_REQUIRE(((*pairs)[k].first > (*pairs)[k - 1].first && (*pairs)[k].second > (*pairs)[k - 1].second));
    }
    check_covers(align_sequences(a, b), a.size(), b.size());
  }
}
