// Serializable value types shared by the graph tests: a shopping cart with
// nested structs, containers, an optional, shared and raw pointers; people
// who point at each other (cycles); and two versions of one struct.
//
// Thread safety: plain values.
#pragma once

#include <boost/serialization/list.hpp>
#include <boost/serialization/map.hpp>
#include <boost/serialization/set.hpp>
#include <boost/serialization/shared_ptr.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/vector.hpp>
#include <boost/serialization/weak_ptr.hpp>

#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "graph/object_graph.hpp"
#include "graph/std_optional.hpp"

namespace shmsession::graph::test {

struct Item {
  std::string sku;
  int qty = 0;
  double price = 0;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& BOOST_SERIALIZATION_NVP(sku) & BOOST_SERIALIZATION_NVP(qty) & BOOST_SERIALIZATION_NVP(price);
  }
};

// Serialized by a free function, as for types one cannot edit.
struct Address {
  std::string city;
  std::string zip;
};

template <class Archive>
void serialize(Archive& ar, Address& a, unsigned /*version*/) {
  ar& boost::serialization::make_nvp("city", a.city) & boost::serialization::make_nvp("zip", a.zip);
}

struct Customer {
  std::string name;
  Address address;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& BOOST_SERIALIZATION_NVP(name) & BOOST_SERIALIZATION_NVP(address);
  }
};

struct Cart {
  Customer customer;
  std::vector<Item> items;
  std::map<std::string, Item> by_sku;
  std::optional<std::string> coupon;
  std::set<int> tags;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& BOOST_SERIALIZATION_NVP(customer) & BOOST_SERIALIZATION_NVP(items) & BOOST_SERIALIZATION_NVP(by_sku) &
        BOOST_SERIALIZATION_NVP(coupon) & BOOST_SERIALIZATION_NVP(tags);
  }
};

inline Cart sample_cart() {
  Cart cart;
  cart.customer = Customer{"Ada", Address{"London", "N1"}};
  for (int i = 0; i < 5; ++i) cart.items.push_back(Item{"SKU-" + std::to_string(i), i + 1, 2.5 * i});
  cart.by_sku["A-1"] = Item{"A-1", 1, 9.5};
  cart.by_sku["B-2"] = Item{"B-2", 2, 1.25};
  cart.coupon = "SPRING";
  cart.tags = {1, 7};
  return cart;
}

template <class Sequence>
struct Holder {
  Sequence items;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& BOOST_SERIALIZATION_NVP(items);
  }
};

// Objects owned by shared pointers, some of them shared.
struct SharedCart {
  std::vector<std::shared_ptr<Item>> items;
  std::shared_ptr<Item> featured;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& BOOST_SERIALIZATION_NVP(items) & BOOST_SERIALIZATION_NVP(featured);
  }
};

struct Pair {
  std::shared_ptr<Item> first;
  std::shared_ptr<Item> second;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& BOOST_SERIALIZATION_NVP(first) & BOOST_SERIALIZATION_NVP(second);
  }
};

// Raw pointers that form cycles.
struct Person {
  std::string name;
  Person* buddy = nullptr;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& BOOST_SERIALIZATION_NVP(name) & BOOST_SERIALIZATION_NVP(buddy);
  }
};

// A shared_ptr tree with weak back pointers (parent <-> child cycle).
struct Child;
struct Parent {
  std::string name;
  std::vector<std::shared_ptr<Child>> children;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& BOOST_SERIALIZATION_NVP(name) & BOOST_SERIALIZATION_NVP(children);
  }
};
struct Child {
  std::string name;
  std::weak_ptr<Parent> parent;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& BOOST_SERIALIZATION_NVP(name) & BOOST_SERIALIZATION_NVP(parent);
  }
};

// A linked list kept in a vector: each link points at the previous one.
struct Link {
  std::string name;
  Link* prev = nullptr;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& BOOST_SERIALIZATION_NVP(name) & BOOST_SERIALIZATION_NVP(prev);
  }
};
struct Chain {
  std::shared_ptr<Link> head;
  std::vector<std::shared_ptr<Link>> links;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& BOOST_SERIALIZATION_NVP(head) & BOOST_SERIALIZATION_NVP(links);
  }
};

// Saves `note` only when detailed: members must pair by name, not position.
struct Flexible {
  bool detailed = false;
  std::string note;
  int qty = 0;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& BOOST_SERIALIZATION_NVP(detailed);
    if (detailed) ar& BOOST_SERIALIZATION_NVP(note);
    ar& BOOST_SERIALIZATION_NVP(qty);
  }
};

// Members without NVP names: positional paths.
struct Unnamed {
  int a = 0;
  std::string b;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& a& b;
  }
};

// Two versions of one attribute whose `qty` changed type.
struct LineV1 {
  std::string sku;
  int qty = 0;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& BOOST_SERIALIZATION_NVP(sku) & BOOST_SERIALIZATION_NVP(qty);
  }
};
struct LineV2 {
  std::string sku;
  long qty = 0;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& BOOST_SERIALIZATION_NVP(sku) & BOOST_SERIALIZATION_NVP(qty);
  }
};

}  // namespace shmsession::graph::test
