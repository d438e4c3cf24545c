// Attribute bytes (sync/attribute_codec.hpp): AttributeOArchive writes what
// Boost's binary_oarchive writes, byte for byte, for every kind of member
// Boost can save, and tells whether a value's bytes decide its object-graph
// equivalence.
#include <boost/test/unit_test.hpp>

#include <boost/archive/binary_oarchive.hpp>
#include <boost/serialization/map.hpp>
#include <boost/serialization/set.hpp>
#include <boost/serialization/shared_ptr.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/unordered_map.hpp>
#include <boost/serialization/vector.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "sync/attribute_codec.hpp"

using namespace shmsession;
using namespace shmsession::sync;

namespace {

enum class Colour : std::uint8_t { Red = 1, Blue = 7 };

struct Node {
  std::string label;
  std::shared_ptr<Node> next;
  template <class A>
  void serialize(A& a, unsigned) {
    a& boost::serialization::make_nvp("label", label) & boost::serialization::make_nvp("next", next);
  }
};

// Every kind of member whose bytes decide (no keyed container, no float).
struct Plain {
  bool flag = true;
  char c = 'x';
  std::int16_t s = -3;
  std::int32_t i = 123456;
  std::int64_t l = -9876543210;
  std::uint64_t u = 42;
  double d = 2.5;
  Colour colour = Colour::Blue;
  std::string text = "caf\xc3\xa9";
  std::wstring wide = L"wide";
  std::vector<std::uint64_t> ids{1, 2, 3, 4, 5};  // Boost's array optimization
  std::vector<std::string> words{"a", "", "ccc"};
  std::optional<std::int32_t> maybe = 7;
  std::optional<std::string> none;
  std::shared_ptr<Node> head;   // a cycle: head -> second -> head
  std::shared_ptr<Node> alias;  // shares head's second node
  template <class A>
  void serialize(A& a, unsigned) {
    a& boost::serialization::make_nvp("flag", flag) & boost::serialization::make_nvp("c", c) &
        boost::serialization::make_nvp("s", s) & boost::serialization::make_nvp("i", i) &
        boost::serialization::make_nvp("l", l) & boost::serialization::make_nvp("u", u) &
        boost::serialization::make_nvp("d", d) & boost::serialization::make_nvp("colour", colour) &
        boost::serialization::make_nvp("text", text) & boost::serialization::make_nvp("wide", wide) &
        boost::serialization::make_nvp("ids", ids) & boost::serialization::make_nvp("words", words) &
        boost::serialization::make_nvp("maybe", maybe) & boost::serialization::make_nvp("none", none) &
        boost::serialization::make_nvp("head", head) & boost::serialization::make_nvp("alias", alias);
  }
};

struct Keyed {
  std::map<std::string, int> by_name{{"b", 2}, {"a", 1}};
  std::set<int> tags{3, 1, 2};
  template <class A>
  void serialize(A& a, unsigned) {
    a& boost::serialization::make_nvp("by_name", by_name) & boost::serialization::make_nvp("tags", tags);
  }
};

struct Hashed {
  std::unordered_map<std::string, int> counts{{"x", 1}, {"y", 2}};
  template <class A>
  void serialize(A& a, unsigned) {
    a& boost::serialization::make_nvp("counts", counts);
  }
};

struct Price {
  float amount = 9.99f;
  template <class A>
  void serialize(A& a, unsigned) {
    a& boost::serialization::make_nvp("amount", amount);
  }
};

// Floats a binary archive writes as one block (array optimization).
struct Samples {
  std::vector<float> values{1.5f, 2.5f};
  template <class A>
  void serialize(A& a, unsigned) {
    a& boost::serialization::make_nvp("values", values);
  }
};

// A keyed container reached only through a pointer still counts.
struct Indirect {
  std::vector<std::int32_t> plain{1, 2};
  std::shared_ptr<Keyed> keyed = std::make_shared<Keyed>();
  template <class A>
  void serialize(A& a, unsigned) {
    a& boost::serialization::make_nvp("plain", plain) & boost::serialization::make_nvp("keyed", keyed);
  }
};

// Many objects of a few class types by value, nested, and Node both by
// value and through pointers (tracked: each object gets an id): the repeated
// objects skip Boost's per-object bookkeeping only where it writes nothing.
struct Line {
  std::string sku;
  std::int32_t qty = 0;
  Price price;
  template <class A>
  void serialize(A& a, unsigned) {
    a& boost::serialization::make_nvp("sku", sku) & boost::serialization::make_nvp("qty", qty) &
        boost::serialization::make_nvp("price", price);
  }
};

struct Order {
  std::vector<Line> lines;
  std::vector<Node> nodes;
  std::shared_ptr<Node> first;
  std::vector<Line> more;
  template <class A>
  void serialize(A& a, unsigned) {
    a& boost::serialization::make_nvp("lines", lines) & boost::serialization::make_nvp("nodes", nodes) &
        boost::serialization::make_nvp("first", first) & boost::serialization::make_nvp("more", more);
  }
};

Order sample_order() {
  Order o;
  for (int i = 0; i < 20; ++i) o.lines.push_back({"sku-" + std::to_string(i), i, Price{0.5f * static_cast<float>(i)}});
  for (int i = 0; i < 3; ++i) o.nodes.push_back({"node-" + std::to_string(i), nullptr});
  o.first = std::make_shared<Node>(Node{"pointee", nullptr});
  o.more = {o.lines[2], o.lines[7]};
  return o;
}

Plain sample_plain() {
  Plain p;
  p.head = std::make_shared<Node>();
  p.head->label = "first";
  p.head->next = std::make_shared<Node>();
  p.head->next->label = "second";
  p.head->next->next = p.head;
  p.alias = p.head->next;
  return p;
}

// A Plain whose pointer cycle is broken when it goes, so that the leak
// checker of the sanitized build sees nothing left behind.
struct Cyclic {
  Plain value;
  ~Cyclic() {
    if (value.head && value.head->next) value.head->next->next.reset();
  }
};

// What binary_oarchive writes for `value` (the flags attribute values use).
template <class T>
std::string boost_bytes(const T& value) {
  std::ostringstream out;
  {
    boost::archive::binary_oarchive archive(out, kArchiveFlags);
    archive << value;
  }
  return std::move(out).str();
}

template <class T>
void check_same_bytes(const T& value) {
  const std::string ours = encode_attribute(value);
  BOOST_REQUIRE(ours.size() >= kValuePrefixBytes);
  BOOST_TEST(ours.substr(kValuePrefixBytes) == boost_bytes(value));
}

template <class T>
bool bytes_decide(const T& value) {
  return encode_value<T>(&value).bytes_decide;
}

// A string and numbers of each size (see the run-length test).
struct Run {
  std::string text;
  bool b = true;
  std::int16_t s = -2;
  std::uint32_t i = 0xa1b2c3d4;
  std::uint64_t l = 0x0102030405060708;
  char c = 'z';
  template <class A>
  void serialize(A& a, unsigned) {
    a& boost::serialization::make_nvp("text", text) & boost::serialization::make_nvp("b", b) &
        boost::serialization::make_nvp("s", s) & boost::serialization::make_nvp("i", i) &
        boost::serialization::make_nvp("l", l) & boost::serialization::make_nvp("c", c);
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(attribute_bytes_are_binary_oarchive_bytes) {
  check_same_bytes(Cyclic{sample_plain()}.value);
  check_same_bytes(Keyed{});
  check_same_bytes(Hashed{});
  check_same_bytes(Price{});
  check_same_bytes(Samples{});
  check_same_bytes(Indirect{});
  check_same_bytes(Plain{});                                     // null pointers, defaults
  check_same_bytes(std::vector<std::string>(5000, "abcdefgh"));  // grows its buffer many times
  check_same_bytes(sample_order());
  check_same_bytes(std::vector<Order>(3, sample_order()));
}

// The archive copies short runs as overlapping words that may write past
// the run into its slack, and numbers as whole words: every string length
// on each side of the word sizes and of the long-run cut, each followed by
// 1-, 2-, 4- and 8-byte numbers (which must overwrite that slack), and
// runs that straddle a buffer growth.
BOOST_AUTO_TEST_CASE(attribute_bytes_are_boosts_for_every_run_length_and_number_size) {
  std::vector<Run> runs;
  for (std::size_t n = 0; n <= 200; ++n) {
    Run run;
    for (std::size_t k = 0; k < n; ++k) run.text.push_back(static_cast<char>('A' + (k * 7 + n) % 53));
    run.b = n % 2 == 0;
    run.s = static_cast<std::int16_t>(-static_cast<int>(n));
    run.c = static_cast<char>(n);
    check_same_bytes(run);
    runs.push_back(run);
  }
  check_same_bytes(runs);  // every length at every offset of a growing buffer
  for (std::size_t n = 0; n <= 40; ++n) check_same_bytes(std::string(n, 'q'));
}

BOOST_AUTO_TEST_CASE(attribute_bytes_decode_to_the_value) {
  const Cyclic sample{sample_plain()};
  const Cyclic decoded{decode_attribute<Plain>(encode_attribute(sample.value))};
  const Plain& back = decoded.value;
  BOOST_TEST(back.text == "caf\xc3\xa9");
  BOOST_TEST((back.ids == std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
  BOOST_TEST(back.maybe.value_or(0) == 7);
  BOOST_TEST(!back.none.has_value());
  BOOST_REQUIRE(back.head && back.head->next);
  BOOST_TEST(back.head->next->next == back.head);
  BOOST_TEST(back.alias == back.head->next);
}

BOOST_AUTO_TEST_CASE(bytes_decide_unless_the_value_holds_a_type_its_graph_sees_coarser) {
  BOOST_TEST(bytes_decide(Cyclic{sample_plain()}.value));
  BOOST_TEST(bytes_decide(std::vector<std::string>{"a", "b"}));
  BOOST_TEST(!bytes_decide(Keyed{}));
  BOOST_TEST(!bytes_decide(Hashed{}));
  BOOST_TEST(!bytes_decide(Price{}));
  BOOST_TEST(!bytes_decide(Samples{}));
  BOOST_TEST(!bytes_decide(Indirect{}));
  // The flag is about the value, not the type: a null pointer hides nothing.
  Indirect empty;
  empty.keyed.reset();
  BOOST_TEST(bytes_decide(empty));
}
