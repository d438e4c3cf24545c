// GraphOArchive: the graph recorded for each kind of value, identity of
// shared and cyclic objects, readable dumps, errors, and build speed.
#include <boost/test/unit_test.hpp>

#include <boost/archive/text_iarchive.hpp>
#include <boost/archive/text_oarchive.hpp>
#include <boost/serialization/array.hpp>
#include <boost/serialization/binary_object.hpp>
#include <boost/serialization/level.hpp>
#include <boost/serialization/unique_ptr.hpp>
#include <boost/serialization/utility.hpp>

#include <array>
#include <chrono>
#include <sstream>
#include <thread>

#include "graph/detail/type_name.hpp"
#include "graph/error.hpp"
#include "graph/graph_oarchive.hpp"
#include "graph/object_graph.hpp"
#include "test/graph/graph_test_types.hpp"

#include "test/support/test_support.hpp"

using shmsession::test::throws;

using namespace shmsession;
using namespace shmsession::graph;
using namespace shmsession::graph::test;

namespace {

enum class Color { Red, Green, Blue };

struct Palette {
  Color main = Color::Green;
  std::array<int, 3> weights{1, 2, 3};
  int legacy[2] = {7, 8};
  std::unique_ptr<Item> special;
  std::optional<Item> maybe;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& BOOST_SERIALIZATION_NVP(main) & BOOST_SERIALIZATION_NVP(weights) & BOOST_SERIALIZATION_NVP(legacy) &
        BOOST_SERIALIZATION_NVP(special) & BOOST_SERIALIZATION_NVP(maybe);
  }
};

// Saves an object through a pointer and then by value: Boost refuses.
struct Conflicting {
  Item* pointer = nullptr;
  Item value;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& BOOST_SERIALIZATION_NVP(pointer) & BOOST_SERIALIZATION_NVP(value);
  }
};

// An object saved by value and then reached through a pointer.
struct Holding {
  Item value;
  Item* pointer = nullptr;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& BOOST_SERIALIZATION_NVP(value) & BOOST_SERIALIZATION_NVP(pointer);
  }
};

// A user type Boost saves as a primitive (through the archive's save()).
struct Money {
  long cents = 0;
  friend std::ostream& operator<<(std::ostream& out, const Money& m) { return out << m.cents << " cents"; }
};

struct Ledger {
  Money balance;
  std::array<unsigned char, 4> digest{};
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& BOOST_SERIALIZATION_NVP(balance);
    ar& boost::serialization::make_nvp("digest",
                                       boost::serialization::make_binary_object(digest.data(), digest.size()));
  }
};

bool contains_line(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

}  // namespace

BOOST_CLASS_IMPLEMENTATION(Money, boost::serialization::primitive_type)

BOOST_AUTO_TEST_SUITE(recording)

BOOST_AUTO_TEST_CASE(to_text_shows_names_types_and_values) {
  const std::string text = build_graph(sample_cart()).to_text();
  BOOST_TEST_MESSAGE(text);
  BOOST_TEST(contains_line(text, "$: shmsession::graph::test::Cart"));
  BOOST_TEST(contains_line(text, "  customer: shmsession::graph::test::Customer"));
  BOOST_TEST(contains_line(text, "      city: std::string = \"London\""));
  BOOST_TEST(contains_line(text, "  items: std::vector<shmsession::graph::test::Item> [5]"));
  BOOST_TEST(contains_line(text, "      qty: int = 4"));
  BOOST_TEST(contains_line(text, "      price: double = 7.5"));
  BOOST_TEST(contains_line(text, "    [\"A-1\"]: std::pair<std::string const, shmsession::graph::test::Item>"));
  BOOST_TEST(contains_line(text, "  coupon: std::optional<std::string>"));
  BOOST_TEST(contains_line(text, "    *: std::string = \"SPRING\""));
  BOOST_TEST(contains_line(text, "    [7]: int = 7"));
}

BOOST_AUTO_TEST_CASE(enums_arrays_unique_ptr_and_optional) {
  Palette palette;
  const std::string empty = build_graph(palette).to_text();
  BOOST_TEST_MESSAGE(empty);
  BOOST_TEST(contains_line(empty, "  main: (anonymous namespace)::Color = 1"));
  BOOST_TEST(contains_line(empty, "  weights: std::array<int, 3ul> [3]"));
  BOOST_TEST(contains_line(empty, "    [2]: int = 3"));
  BOOST_TEST(contains_line(empty, "  legacy: int [2] [2]"));
  BOOST_TEST(contains_line(empty, "  special: std::unique_ptr<shmsession::graph::test::Item> = null"));
  BOOST_TEST(contains_line(empty, "  maybe: std::optional<shmsession::graph::test::Item> = none"));

  const ObjectGraph before = build_graph(palette);
  palette.weights[1] = 20;
  palette.legacy[0] = 70;
  palette.main = Color::Blue;
  BOOST_TEST(
      diff(before, build_graph(palette), "p") == (std::vector<Change>{{"p.main", graph::ChangeKind::Modified},
                                                                      {"p.weights[1]", graph::ChangeKind::Modified},
                                                                      {"p.legacy[0]", graph::ChangeKind::Modified}}),
      boost::test_tools::per_element());
  palette.special = std::make_unique<Item>(Item{"U", 1, 1});
  palette.maybe = Item{"M", 2, 2};
  const ObjectGraph filled = build_graph(palette);
  palette.special->qty = 5;
  palette.maybe->qty = 6;
  BOOST_TEST(
      diff(filled, build_graph(palette), "p") == (std::vector<Change>{{"p.special.qty", graph::ChangeKind::Modified},
                                                                      {"p.maybe.qty", graph::ChangeKind::Modified}}),
      boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(shared_object_appears_once_as_a_reference) {
  auto item = std::make_shared<Item>(Item{"A", 1, 1});
  const Pair aliased{item, item};
  const std::string text = build_graph(aliased).to_text();
  BOOST_TEST_MESSAGE(text);
  BOOST_TEST(build_graph(aliased).node_count() == 7u);  // pair, first, Item, 3 fields, second
  BOOST_TEST(contains_line(text, "  second: std::shared_ptr<shmsession::graph::test::Item> -> $.first"));

  Holder<std::vector<std::shared_ptr<Item>>> many;
  many.items.assign(100, item);
  BOOST_TEST(build_graph(many).node_count() == 1u + 1u + 100u + 4u);
}

BOOST_AUTO_TEST_CASE(cycles_are_references_to_the_first_occurrence) {
  Person a{"a"};
  Person b{"b"};
  a.buddy = &b;
  b.buddy = &a;
  const std::string text = build_graph(a).to_text();
  BOOST_TEST_MESSAGE(text);
  BOOST_TEST(contains_line(text, "      buddy: shmsession::graph::test::Person* -> $"));
  a.buddy = &a;
  BOOST_TEST(contains_line(build_graph(a).to_text(), "  buddy: shmsession::graph::test::Person* -> $"));
}

BOOST_AUTO_TEST_CASE(pointer_to_an_object_saved_by_value_is_a_reference) {
  Holding holding{Item{"V", 1, 1}};
  holding.pointer = &holding.value;
  const ObjectGraph before = build_graph(holding);
  BOOST_TEST(contains_line(before.to_text(), "  pointer: shmsession::graph::test::Item* -> $.value"));
  Item other{"V", 1, 1};
  holding.pointer = &other;  // an equal value, but not the member any more
  BOOST_TEST(
      diff(before, build_graph(holding), "h") == (std::vector<Change>{{"h.pointer", graph::ChangeKind::Modified}}),
      boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(map_keys_are_rendered_readably) {
  Holder<std::map<std::string, int>> strings{{{"quote\"d\n", 1}}};
  BOOST_TEST(
      contains_line(build_graph(strings).to_text(), "    [\"quote\\\"d\\n\"]: std::pair<std::string const, int>"));
  Holder<std::map<std::pair<int, bool>, int>> pairs{{{{3, true}, 1}}};
  auto changed = pairs;
  changed.items.begin()->second = 2;
  BOOST_TEST(diff(build_graph(pairs), build_graph(changed), "m") ==
                 (std::vector<Change>{{"m.items[{first=3, second=true}]", graph::ChangeKind::Modified}}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(primitive_level_types_and_binary_objects) {
  Ledger ledger{Money{1250}, {0xde, 0xad, 0xbe, 0xef}};
  const ObjectGraph before = build_graph(ledger);
  const std::string text = before.to_text();
  BOOST_TEST_MESSAGE(text);
  BOOST_TEST(contains_line(text, "  balance: (anonymous namespace)::Money = 1250 cents"));
  BOOST_TEST(contains_line(text, "  digest: boost::serialization::binary_object = 0xdeadbeef"));
  ledger.balance.cents = 1;
  ledger.digest[3] = 0;
  BOOST_TEST(diff(before, build_graph(ledger), "l") == (std::vector<Change>{{"l.balance", graph::ChangeKind::Modified},
                                                                            {"l.digest", graph::ChangeKind::Modified}}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(type_names_are_shortened) {
  using detail::pretty_type_name;
  BOOST_TEST(pretty_type_name("std::vector<int, std::allocator<int> >") == "std::vector<int>");
  BOOST_TEST(pretty_type_name(
                 "std::map<std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >, "
                 "int, std::less<std::__cxx11::basic_string<char, std::char_traits<char>, "
                 "std::allocator<char> > >, std::allocator<std::pair<std::__cxx11::basic_string<char, "
                 "std::char_traits<char>, std::allocator<char> > const, int> > >") == "std::map<std::string, int>");
  BOOST_TEST(pretty_type_name("std::vector<std::vector<int, std::allocator<int> >, std::allocator<std::vector<int, "
                              "std::allocator<int> > > >") == "std::vector<std::vector<int>>");
  BOOST_TEST(type_entry<std::string>().name == "std::string");
  BOOST_TEST(&type_entry<int>() == &register_type_name(typeid(int)));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(errors)

BOOST_AUTO_TEST_CASE(boost_refusals_become_unsupported_value) {
  Conflicting conflicting;
  conflicting.pointer = &conflicting.value;
  BOOST_TEST(throws<graph::UnsupportedValue>([&] { build_graph(conflicting); }));
}

BOOST_AUTO_TEST_CASE(an_archive_holds_exactly_one_value) {
  BOOST_TEST(throws<graph::UnsupportedValue>([] {
    GraphOArchive archive;
    (void)archive.release();
  }));
  BOOST_TEST(throws<graph::UnsupportedValue>([] {
    GraphOArchive archive;
    const int a = 1;
    const int b = 2;
    archive << a << b;
  }));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(std_optional)

BOOST_AUTO_TEST_CASE(round_trips_through_a_text_archive) {
  for (bool set : {true, false}) {
    Cart saved = sample_cart();
    if (!set) saved.coupon.reset();
    std::stringstream bytes;
    {
      boost::archive::text_oarchive out(bytes);
      out << saved;
    }
    Cart loaded;
    loaded.coupon = "stale";
    boost::archive::text_iarchive in(bytes);
    in >> loaded;
    BOOST_TEST((loaded.coupon == saved.coupon));
    BOOST_TEST(equivalent(build_graph(saved), build_graph(loaded)));
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(scale)

BOOST_AUTO_TEST_CASE(ten_thousand_element_vector_builds_and_diffs) {
  Holder<std::vector<Item>> value;
  for (int i = 0; i < 10000; ++i) value.items.push_back(Item{"SKU-" + std::to_string(i), i, i * 0.5});
  double best_build_ms = 1e9;
  ObjectGraph before;
  for (int round = 0; round < 5; ++round) {
    const auto start = std::chrono::steady_clock::now();
    before = build_graph(value);
    best_build_ms = std::min(
        best_build_ms, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  BOOST_TEST(before.node_count() == 1u + 1u + 10000u * 4u);

  value.items.insert(value.items.begin(), Item{"new", 0, 0});
  value.items[5001].qty = -1;
  const ObjectGraph after = build_graph(value);
  std::vector<Change> changes;
  double diff_ms = 1e9;
  for (int round = 0; round < 3; ++round) {
    const auto start = std::chrono::steady_clock::now();
    changes = diff(before, after, "v");
    diff_ms =
        std::min(diff_ms, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  BOOST_TEST(changes == (std::vector<Change>{{"v.items[0]", graph::ChangeKind::Added},
                                             {"v.items[5001].qty", graph::ChangeKind::Modified}}),
             boost::test_tools::per_element());
  BOOST_TEST_MESSAGE("10,000 Items (" << before.node_count() << " nodes): build best of 5 " << best_build_ms
                                      << " ms, diff best of 3 " << diff_ms << " ms");
  // Figures only: a wall-clock bound fails on a loaded machine, not on a
  // slow algorithm. What keeps the diff from going quadratic is the edit
  // bound of the alignment (kMaxAlignmentEdits), tested by
  // sequence_alignment_test; the exact changes above show it aligned.
}

BOOST_AUTO_TEST_CASE(graphs_build_and_compare_in_parallel) {
  const ObjectGraph reference = build_graph(sample_cart());
  std::vector<std::uint64_t> hashes(2);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < hashes.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const ObjectGraph g = build_graph(sample_cart());
        if (!equivalent(g, reference) || !diff(reference, g, "cart").empty()) return;
        hashes[t] = g.root_hash();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (std::uint64_t hash : hashes) BOOST_TEST(hash == reference.root_hash());
}

BOOST_AUTO_TEST_SUITE_END()
