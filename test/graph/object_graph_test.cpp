// Graph diff: which paths changed between a benchmark value and a new one.
#include <boost/test/unit_test.hpp>

#include <boost/serialization/base_object.hpp>
#include <boost/serialization/export.hpp>
#include <boost/serialization/unordered_map.hpp>

#include <sstream>
#include <unordered_map>

#include "graph/object_graph.hpp"
#include "test/graph/graph_test_types.hpp"

using namespace shmsession::graph;
using namespace shmsession::graph::test;
using boost::test_tools::per_element;
using Changes = std::vector<Change>;

namespace shapes {

struct Shape {
  virtual ~Shape() = default;
  int id = 0;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& BOOST_SERIALIZATION_NVP(id);
  }
};
struct Circle : Shape {
  double radius = 1;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& BOOST_SERIALIZATION_BASE_OBJECT_NVP(Shape) & BOOST_SERIALIZATION_NVP(radius);
  }
};
struct Square : Shape {
  double side = 1;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& BOOST_SERIALIZATION_BASE_OBJECT_NVP(Shape) & BOOST_SERIALIZATION_NVP(side);
  }
};
struct Drawing {
  std::vector<std::shared_ptr<Shape>> shapes;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& BOOST_SERIALIZATION_NVP(shapes);
  }
};

}  // namespace shapes

BOOST_CLASS_EXPORT(shapes::Circle)
BOOST_CLASS_EXPORT(shapes::Square)

namespace {

template <class T>
Changes changes(const T& before, const T& after, std::string_view root) {
  return diff(build_graph(before), build_graph(after), root);
}

Change modified(std::string path) { return Change{std::move(path), ChangeKind::Modified}; }
Change added(std::string path) { return Change{std::move(path), ChangeKind::Added}; }
Change removed(std::string path) { return Change{std::move(path), ChangeKind::Removed}; }

Holder<std::vector<std::shared_ptr<Item>>> shared_items(int n) {
  Holder<std::vector<std::shared_ptr<Item>>> h;
  for (int i = 0; i < n; ++i) h.items.push_back(std::make_shared<Item>(Item{"S" + std::to_string(i), i, 1.0}));
  return h;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(structs)

BOOST_AUTO_TEST_CASE(one_nested_field_change_reports_exactly_that_path) {
  const Cart before = sample_cart();
  Cart after = before;
  after.customer.address.city = "Paris";
  BOOST_TEST(changes(before, after, "cart") == Changes{modified("cart.customer.address.city")}, per_element());
}

BOOST_AUTO_TEST_CASE(several_changes_are_each_reported) {
  const Cart before = sample_cart();
  Cart after = before;
  after.customer.name = "Grace";
  after.items[1].price = 99;
  after.coupon.reset();
  const Changes expected{modified("cart.customer.name"), modified("cart.items[1].price"), modified("cart.coupon")};
  BOOST_TEST(changes(before, after, "cart") == expected, per_element());
}

BOOST_AUTO_TEST_CASE(members_without_names_are_positional) {
  const Unnamed before{1, "x"};
  Unnamed after = before;
  after.b = "y";
  BOOST_TEST(changes(before, after, "u") == Changes{modified("u[1]")}, per_element());
}

BOOST_AUTO_TEST_CASE(members_pair_by_name_when_one_is_missing) {
  const Flexible before{true, "fragile", 3};
  const Flexible after{false, "", 4};
  const Changes expected{modified("x.detailed"), removed("x.note"), modified("x.qty")};
  BOOST_TEST(changes(before, after, "x") == expected, per_element());
  const Changes reverse{modified("x.detailed"), modified("x.qty"), added("x.note")};
  BOOST_TEST(changes(after, before, "x") == reverse, per_element());
}

BOOST_AUTO_TEST_CASE(optional_value_and_presence) {
  const Cart before = sample_cart();
  Cart after = before;
  after.coupon = "SUMMER";
  BOOST_TEST(changes(before, after, "cart") == Changes{modified("cart.coupon")}, per_element());
  after.coupon.reset();
  BOOST_TEST(changes(before, after, "cart") == Changes{modified("cart.coupon")}, per_element());
  BOOST_TEST(changes(after, after, "cart").empty());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(sequences)

BOOST_AUTO_TEST_CASE(element_change_reports_the_index_and_member) {
  const Cart before = sample_cart();
  Cart after = before;
  after.items[3].qty = 42;
  BOOST_TEST(changes(before, after, "x") == Changes{modified("x.items[3].qty")}, per_element());
}

BOOST_AUTO_TEST_CASE(list_insert_at_front_is_one_added_element) {
  Holder<std::list<Item>> before;
  for (int i = 0; i < 6; ++i) before.items.push_back(Item{"L" + std::to_string(i), i, 0.5});
  auto after = before;
  after.items.push_front(Item{"new", 1, 1});
  BOOST_TEST(changes(before, after, "h") == Changes{added("h.items[0]")}, per_element());
}

BOOST_AUTO_TEST_CASE(insert_remove_and_modify_are_told_apart) {
  const Cart before = sample_cart();
  Cart after = before;
  after.items.erase(after.items.begin() + 1);                // SKU-1 goes
  after.items.insert(after.items.begin(), Item{"N", 1, 1});  // N arrives first
  after.items[3].qty = 77;                                   // was SKU-3 at index 3 in before
  const Changes expected{added("cart.items[0]"), removed("cart.items[1]"), modified("cart.items[3].qty")};
  BOOST_TEST(changes(before, after, "cart") == expected, per_element());
}

BOOST_AUTO_TEST_CASE(every_element_changed_in_place_is_reported_per_element) {
  Holder<std::vector<int>> before{{1, 2, 3}};
  Holder<std::vector<int>> after{{4, 5, 6}};
  const Changes expected{modified("v.items[0]"), modified("v.items[1]"), modified("v.items[2]")};
  BOOST_TEST(changes(before, after, "v") == expected, per_element());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(keyed)

BOOST_AUTO_TEST_CASE(map_key_added_removed_and_value_changed) {
  const Cart before = sample_cart();
  Cart added_key = before;
  added_key.by_sku["C-3"] = Item{"C-3", 3, 3};
  BOOST_TEST(changes(before, added_key, "cart") == Changes{added("cart.by_sku[\"C-3\"]")}, per_element());

  Cart removed_key = before;
  removed_key.by_sku.erase("A-1");
  BOOST_TEST(changes(before, removed_key, "cart") == Changes{removed("cart.by_sku[\"A-1\"]")}, per_element());

  Cart changed_value = before;
  changed_value.by_sku["B-2"].qty = 5;
  BOOST_TEST(changes(before, changed_value, "cart") == Changes{modified("cart.by_sku[\"B-2\"].qty")}, per_element());
}

BOOST_AUTO_TEST_CASE(integer_keys_and_sets) {
  Holder<std::map<int, std::string>> before{{{1, "one"}, {42, "answer"}}};
  auto after = before;
  after.items[42] = "forty-two";
  BOOST_TEST(changes(before, after, "m") == Changes{modified("m.items[42]")}, per_element());

  const Cart cart = sample_cart();
  Cart tagged = cart;
  tagged.tags.insert(9);
  tagged.tags.erase(1);
  BOOST_TEST(changes(cart, tagged, "cart") == (Changes{removed("cart.tags[1]"), added("cart.tags[9]")}), per_element());
}

BOOST_AUTO_TEST_CASE(unordered_map_order_does_not_matter) {
  Holder<std::unordered_map<std::string, int>> small;
  Holder<std::unordered_map<std::string, int>> large;
  large.items.reserve(1024);
  for (int i = 0; i < 50; ++i) {
    small.items["k" + std::to_string(i)] = i;
    large.items["k" + std::to_string(49 - i)] = 49 - i;
  }
  BOOST_TEST(equivalent(build_graph(small), build_graph(large)));
  large.items["k7"] = -1;
  BOOST_TEST(changes(small, large, "u") == Changes{modified("u.items[\"k7\"]")}, per_element());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(identity)

BOOST_AUTO_TEST_CASE(aliasing_appears_once_and_breaking_it_is_detected) {
  auto shared = std::make_shared<Item>(Item{"A", 1, 1});
  const Pair aliased{shared, shared};
  const Pair copies{shared, std::make_shared<Item>(*shared)};
  BOOST_TEST(build_graph(aliased).node_count() + 4 == build_graph(copies).node_count());  // Item + 3 fields once
  BOOST_TEST(changes(aliased, copies, "pair") == Changes{modified("pair.second")}, per_element());
  BOOST_TEST(changes(copies, aliased, "pair") == Changes{modified("pair.second")}, per_element());
}

BOOST_AUTO_TEST_CASE(a_shared_object_changes_once_at_its_first_path) {
  const Pair before{std::make_shared<Item>(Item{"A", 1, 1}), nullptr};
  Pair before_aliased = before;
  before_aliased.second = before_aliased.first;
  const auto graph = build_graph(before_aliased);
  before_aliased.first->qty = 9;  // seen through both pointers
  BOOST_TEST(diff(graph, build_graph(before_aliased), "pair") == Changes{modified("pair.first.qty")}, per_element());
}

BOOST_AUTO_TEST_CASE(inserting_a_shared_object_in_front_changes_nothing_else) {
  SharedCart before;
  before.items = shared_items(5).items;
  before.featured = before.items[2];
  SharedCart after = before;
  after.items.insert(after.items.begin(), std::make_shared<Item>(Item{"first", 0, 0}));
  BOOST_TEST(changes(before, after, "c") == Changes{added("c.items[0]")}, per_element());

  SharedCart refeatured = before;
  refeatured.featured = refeatured.items[1];  // same values, another object
  BOOST_TEST(changes(before, refeatured, "c") == Changes{modified("c.featured")}, per_element());
}

BOOST_AUTO_TEST_CASE(same_relative_pointer_to_another_object_is_modified) {
  // `featured` points at items[0] before and after, but items[0] is now a
  // new object: equal hashes must not hide that.
  SharedCart before;
  before.items = shared_items(3).items;
  before.featured = before.items[0];
  SharedCart after = before;
  after.items.insert(after.items.begin(), std::make_shared<Item>(Item{"first", 0, 0}));
  after.featured = after.items[0];
  BOOST_TEST(changes(before, after, "c") == (Changes{added("c.items[0]"), modified("c.featured")}), per_element());
}

BOOST_AUTO_TEST_CASE(linked_elements_stay_aligned_when_one_is_inserted) {
  // Links named `names`, each pointing at the one before it (the first at head).
  auto make_chain = [](const std::vector<std::string>& names) {
    Chain chain;
    chain.head = std::make_shared<Link>(Link{"head", nullptr});
    Link* prev = chain.head.get();
    for (const std::string& name : names) {
      chain.links.push_back(std::make_shared<Link>(Link{name, prev}));
      prev = chain.links.back().get();
    }
    return chain;
  };
  const Chain before = make_chain({"n0", "n1", "n2", "n3", "n4", "n5"});
  const Chain after = make_chain({"n0", "n1", "m", "n2", "n3", "n4", "n5"});  // n2 now after m
  BOOST_TEST(changes(before, after, "chain") == (Changes{added("chain.links[2]"), modified("chain.links[3].prev")}),
             per_element());
}

BOOST_AUTO_TEST_CASE(pointer_to_null_and_back) {
  const Pair before{std::make_shared<Item>(Item{"A", 1, 1}), nullptr};
  Pair after = before;
  after.second = std::make_shared<Item>(Item{"B", 2, 2});
  BOOST_TEST(changes(before, after, "p") == Changes{modified("p.second")}, per_element());
  BOOST_TEST(changes(after, before, "p") == Changes{modified("p.second")}, per_element());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(cycles)

BOOST_AUTO_TEST_CASE(raw_pointer_cycle_builds_and_diffs) {
  Person a{"a"};
  Person b{"b"};
  a.buddy = &b;
  b.buddy = &a;
  const ObjectGraph before = build_graph(a);
  BOOST_TEST(before.node_count() == 6u);  // a, name, buddy, b, name, buddy -> a
  b.name = "bee";
  BOOST_TEST(diff(before, build_graph(a), "p") == Changes{modified("p.buddy.name")}, per_element());
  b.name = "b";
  BOOST_TEST(diff(before, build_graph(a), "p").empty());
  Person c{"a"};  // equal to a in value, but another object
  b.buddy = &c;
  BOOST_TEST(diff(before, build_graph(a), "p") == Changes{modified("p.buddy.buddy")}, per_element());
}

BOOST_AUTO_TEST_CASE(shared_tree_with_weak_back_pointers) {
  auto make_family = [](int children) {
    auto parent = std::make_shared<Parent>();
    parent->name = "root";
    for (int i = 0; i < children; ++i) {
      auto child = std::make_shared<Child>();
      child->name = "c" + std::to_string(i);
      child->parent = parent;
      parent->children.push_back(child);
    }
    return parent;
  };
  auto before = make_family(2);
  auto after = make_family(3);
  BOOST_TEST(changes(before, after, "family") == Changes{added("family.children[2]")}, per_element());
  after->children[1]->name = "renamed";
  after->children.pop_back();
  BOOST_TEST(changes(before, after, "family") == Changes{modified("family.children[1].name")}, per_element());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(equality_and_types)

BOOST_AUTO_TEST_CASE(equal_values_have_empty_diff_and_equal_hash) {
  const ObjectGraph a = build_graph(sample_cart());
  const ObjectGraph b = build_graph(sample_cart());  // other objects, same values
  BOOST_TEST(a.root_hash() == b.root_hash());
  BOOST_TEST(equivalent(a, b));
  BOOST_TEST(diff(a, b, "cart").empty());
  Cart other = sample_cart();
  other.tags.insert(3);
  BOOST_TEST(build_graph(other).root_hash() != a.root_hash());
  BOOST_TEST(!equivalent(a, build_graph(other)));
}

BOOST_AUTO_TEST_CASE(different_type_at_a_path_is_modified) {
  shapes::Drawing before;
  before.shapes = {std::make_shared<shapes::Circle>(), std::make_shared<shapes::Circle>(),
                   std::make_shared<shapes::Square>()};
  shapes::Drawing after = before;
  after.shapes[1] = std::make_shared<shapes::Square>();
  BOOST_TEST(changes(before, after, "d") == Changes{modified("d.shapes[1]")}, per_element());
  before.shapes[1]->id = 5;  // base members sit under the base's NVP name
  BOOST_TEST(changes(after, before, "d").size() == 1u);
  after.shapes[1] = std::make_shared<shapes::Circle>();
  after.shapes[1]->id = 6;
  BOOST_TEST(changes(before, after, "d") == Changes{modified("d.shapes[1].Shape.id")}, per_element());

  // The root itself: one Modified at the root, nothing below it.
  BOOST_TEST(diff(build_graph(LineV1{"A", 1}), build_graph(LineV2{"A", 1}), "line") == Changes{modified("line")},
             per_element());
}

BOOST_AUTO_TEST_CASE(empty_graphs) {
  const ObjectGraph value = build_graph(sample_cart());
  BOOST_TEST(diff(ObjectGraph{}, value, "cart") == Changes{added("cart")}, per_element());
  BOOST_TEST(diff(value, ObjectGraph{}, "cart") == Changes{removed("cart")}, per_element());
  BOOST_TEST(diff(ObjectGraph{}, ObjectGraph{}, "cart").empty());
  BOOST_TEST(ObjectGraph{}.node_count() == 0u);
}

BOOST_AUTO_TEST_CASE(change_prints_kind_and_path) {
  std::ostringstream out;
  out << modified("cart.items[3].qty");
  BOOST_TEST(out.str() == "Modified cart.items[3].qty");
}

BOOST_AUTO_TEST_SUITE_END()
