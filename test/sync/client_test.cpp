// The client state of one process: tracked access, commit of only the
// modified attributes, immutable types, comparison modes, refresh.
#include <boost/test/unit_test.hpp>

#include <boost/serialization/string.hpp>
#include <boost/serialization/unordered_map.hpp>
#include <boost/serialization/vector.hpp>

#include <mutex>
#include <shared_mutex>
#include <thread>
#include <type_traits>
#include <unordered_map>

#include "shm/detail/test_hooks.hpp"
#include "sync/client.hpp"
#include "test/support/segment_damage.hpp"
#include "test/support/test_support.hpp"

using shmsession::test::code_of;

using namespace shmsession;
using namespace shmsession::sync;
using namespace std::chrono_literals;
using shmsession::test::SegmentGuard;

struct Item {
  std::string sku;
  int qty = 0;
  template <class A>
  void serialize(A& a, unsigned) {
    a& boost::serialization::make_nvp("sku", sku);
    a& boost::serialization::make_nvp("qty", qty);
  }
  friend bool operator==(const Item&, const Item&) = default;
};

struct Cart {
  std::vector<Item> items;
  std::string coupon;
  template <class A>
  void serialize(A& a, unsigned) {
    a& boost::serialization::make_nvp("items", items);
    a& boost::serialization::make_nvp("coupon", coupon);
  }
};

struct Signup {  // never changes once written
  std::string email;
  template <class A>
  void serialize(A& a, unsigned) {
    a& boost::serialization::make_nvp("email", email);
  }
};
SHMSESSION_IMMUTABLE_TYPE(Signup);

struct Counter {
  long n = 0;
  template <class A>
  void serialize(A& a, unsigned) {
    a& boost::serialization::make_nvp("n", n);
  }
};
SHMSESSION_COMPARE_BINARY(Counter);

// Object graphs built of these (GraphOArchive walks of their serialize()).
int graph_walks = 0;

struct Basket {
  std::vector<Item> items;
  template <class A>
  void serialize(A& a, unsigned) {
    if constexpr (std::is_same_v<A, graph::GraphOArchive>) ++graph_walks;
    a& boost::serialization::make_nvp("items", items);
  }
};

// Its bytes follow the hash buckets' order; its graph does not.
struct Tally {
  std::unordered_map<std::string, int> counts;
  template <class A>
  void serialize(A& a, unsigned) {
    if constexpr (std::is_same_v<A, graph::GraphOArchive>) ++graph_walks;
    a& boost::serialization::make_nvp("counts", counts);
  }
};

// Only a SessionHandle makes attribute handles: their constructors, which
// take the lock and the handle-order mark (a sync::detail type), are not
// part of the public face (issue 16).
static_assert(!std::is_constructible_v<ReadHandle<Cart>, std::shared_lock<oneapi::tbb::rw_mutex>, const void*>);
static_assert(!std::is_constructible_v<EditHandle<Cart>, std::unique_lock<oneapi::tbb::rw_mutex>, void*>);
static_assert(std::is_nothrow_move_constructible_v<ReadHandle<Cart>>);

// Its graph cannot be built: saved into a graph it reaches an object
// through a pointer and then saves it by value, which Boost refuses. Its
// bytes are fine, and its map makes the Client compare by graph.
struct Ungraphable {
  std::unordered_map<std::string, int> counts;
  Item item;
  template <class A>
  void serialize(A& a, unsigned) {
    a& boost::serialization::make_nvp("counts", counts);
    if constexpr (std::is_same_v<A, graph::GraphOArchive>) {
      Item* pointer = &item;
      a& boost::serialization::make_nvp("pointer", pointer);
    }
    a& boost::serialization::make_nvp("item", item);
  }
};

namespace {

Tally make_tally(std::size_t buckets) {
  Tally t;
  t.counts.reserve(buckets);
  for (int i = 0; i < 40; ++i) t.counts["k" + std::to_string(i)] = i;
  return t;
}

struct Fixture {
  SegmentGuard guard{"client"};
  Store store = [this] { return make_store(guard, {.size_bytes = 32 << 20, .shards = 16}); }();
};

std::uint64_t attribute_version(Store& store, const std::string& id, const std::string& name) {
  std::optional<SessionInfo> info = store.describe(id);
  for (const AttributeInfo& a : info->attributes)
    if (a.name == name) return a.version;
  return 0;
}

Cart sample_cart() { return Cart{{{"A-1", 1}, {"B-2", 2}}, ""}; }

}  // namespace

BOOST_FIXTURE_TEST_SUITE(client, Fixture)

BOOST_AUTO_TEST_CASE(only_modified_attributes_are_written) {
  Client client(store);
  {
    SessionHandle s = client.open("u1");
    s.put("cart", sample_cart());
    s.put("signup", Signup{"a@b.c"});
    s.put("visits", Counter{0});
    CommitOutcome first = s.commit();
    BOOST_TEST(first.written.size() == 3u);
    BOOST_TEST(first.version == 1u);
  }
  SessionHandle s = client.open("u1");
  // Reads are not tracked: nothing to examine, nothing written.
  BOOST_TEST(s.get<Cart>("cart")->items.size() == 2u);
  CommitOutcome none = s.commit();
  BOOST_TEST(none.examined == 0u);
  BOOST_TEST(none.written.empty());
  // An edit that changes nothing writes nothing.
  { auto cart = s.edit<Cart>("cart"); }
  CommitOutcome same = s.commit();
  BOOST_TEST(same.examined == 1u);
  BOOST_TEST(same.written.empty());
  BOOST_TEST(store.version("u1")->version == 1u);
  // A real change writes that attribute only.
  s.edit<Cart>("cart")->items[1].qty = 3;
  s.edit<Counter>("visits");  // untouched value
  CommitOutcome one = s.commit();
  BOOST_TEST(one.examined == 2u);
  BOOST_REQUIRE(one.written.size() == 1u);
  BOOST_TEST(one.written[0] == "cart");
  BOOST_TEST(one.version == 2u);
  BOOST_TEST(attribute_version(store, "u1", "cart") == 2u);
  BOOST_TEST(attribute_version(store, "u1", "visits") == 1u);
  BOOST_TEST(attribute_version(store, "u1", "signup") == 1u);
}

BOOST_AUTO_TEST_CASE(putting_an_equal_value_writes_nothing) {
  Client client(store);
  SessionHandle s = client.open("u2");
  s.put("cart", sample_cart());
  s.commit();
  s.put("cart", sample_cart());
  BOOST_TEST(s.commit().written.empty());
  Cart other = sample_cart();
  other.coupon = "SAVE10";
  s.put("cart", other);
  BOOST_TEST(s.commit().written.size() == 1u);
}

BOOST_AUTO_TEST_CASE(immutable_attributes_are_written_once) {
  Client client(store);
  SessionHandle s = client.open("u3");
  s.put("signup", Signup{"x@y.z"});
  s.put("visits", Counter{1});
  s.commit();
  BOOST_TEST(store.describe("u3")->attributes.at(0).flags == kAttributeImmutable);
  for (int i = 0; i < 5; ++i) {
    BOOST_TEST(s.get<Signup>("signup")->email == "x@y.z");
    s.edit<Counter>("visits")->n += 1;
    CommitOutcome c = s.commit();
    BOOST_TEST(c.examined == 1u);  // the immutable one is never examined again
  }
  BOOST_TEST(attribute_version(store, "u3", "signup") == 1u);
  BOOST_TEST(attribute_version(store, "u3", "visits") == 6u);
}

BOOST_AUTO_TEST_CASE(removal_and_errors) {
  Client client(store);
  SessionHandle s = client.open("u4");
  s.put("cart", sample_cart());
  s.commit();
  BOOST_TEST((code_of([&] { s.get<Counter>("cart"); }) == Errc::InvalidArgument));
  BOOST_TEST((code_of([&] { s.get<Cart>("nothing"); }) == Errc::NotFound));
  BOOST_TEST((code_of([&] { s.edit<Cart>("nothing"); }) == Errc::NotFound));
  BOOST_TEST(s.contains("cart"));
  BOOST_TEST(s.remove("cart"));
  BOOST_TEST(!s.contains("cart"));
  BOOST_TEST(!s.remove("cart"));
  BOOST_TEST(s.commit().written.at(0) == "cart");
  BOOST_TEST(store.describe("u4")->attributes.empty());
  // Bytes that a client did not write are refused, not misread.
  store.commit("u4", CommitBatch{}.put("raw", "not an archive"));
  SessionHandle again = client.open("u4");
  BOOST_TEST((code_of([&] { again.get<Cart>("raw"); }) == Errc::Corrupt));
}

// A value damaged in the segment never reaches a Boost archive: loading the
// session into a client state refuses it with Corrupt, naming the session
// and the attribute.
BOOST_AUTO_TEST_CASE(a_damaged_value_is_refused_not_deserialized) {
  const std::string coupon = "COUPON-" + std::string(120, 'k') + "-END";
  {
    Client writer(store);
    SessionHandle s = writer.open("u9");
    s.put("cart", Cart{{{"A-1", 1}}, coupon});
    s.put("visits", Counter{7});
    s.commit();
  }
  BOOST_TEST_REQUIRE(shmsession::test::flip_in_segment(guard.name(), coupon, 60, 0x02) == 1u);
  Client client(store);
  try {
    SessionHandle s = client.open("u9");
    s.get<Cart>("cart");
    BOOST_FAIL("the damaged cart was deserialized");
  } catch (const Error& e) {
    BOOST_TEST((e.code() == Errc::Corrupt));
    BOOST_TEST(std::string(e.what()).find("'cart' of session 'u9'") != std::string::npos, e.what());
  }
  client.release("u9");
}

BOOST_AUTO_TEST_CASE(binary_comparison_mode_gives_the_same_answers) {
  ClientOptions options;
  options.comparison = Comparison::Binary;
  Client client(store, options);
  SessionHandle s = client.open("u5");
  s.put("cart", sample_cart());
  s.commit();
  { auto c = s.edit<Cart>("cart"); }
  BOOST_TEST(s.commit().written.empty());
  s.edit<Cart>("cart")->coupon = "X";
  BOOST_TEST(s.commit().written.size() == 1u);
}

BOOST_AUTO_TEST_CASE(graph_comparison_builds_no_graph_when_the_bytes_decide) {
  Client client(store);  // object-graph comparison, the default
  SessionHandle s = client.open("g1");
  s.put("basket", Basket{{{"A-1", 1}, {"B-2", 2}}});
  s.commit();
  graph_walks = 0;
  { auto b = s.edit<Basket>("basket"); }
  BOOST_TEST(s.commit().written.empty());
  s.edit<Basket>("basket")->items[0].qty = 5;
  BOOST_TEST(s.commit().written.size() == 1u);
  auto front = [&] {
    auto b = s.edit<Basket>("basket");
    b->items.insert(b->items.begin(), Item{"Z-0", 1});
  };
  front();
  BOOST_TEST(s.commit().written.size() == 1u);
  s.put("basket", Basket{{{"Z-0", 1}, {"A-1", 5}, {"B-2", 2}}});  // equal to what was committed
  BOOST_TEST(s.commit().written.empty());
  // A Basket holds no type whose graph is coarser than its bytes: the
  // bytes decided every time.
  BOOST_TEST(graph_walks == 0);
  const std::optional<SessionSnapshot> snap = store.peek("g1");
  BOOST_REQUIRE(snap && snap->find("basket"));
  const Basket stored = decode_attribute<Basket>(snap->find("basket")->value);
  BOOST_REQUIRE(stored.items.size() == 3u);
  BOOST_TEST(stored.items[0].sku == "Z-0");
  BOOST_TEST(stored.items[1].qty == 5);
}

BOOST_AUTO_TEST_CASE(graph_comparison_still_sees_an_unordered_map_in_another_order_as_unchanged) {
  BOOST_REQUIRE(encode_attribute(make_tally(0)) != encode_attribute(make_tally(1000)));  // same contents
  {
    Client client(store);
    SessionHandle s = client.open("g2");
    s.put("tally", make_tally(0));
    s.commit();
    s.put("tally", make_tally(1000));
    BOOST_TEST(s.commit().written.empty());
    s.edit<Tally>("tally")->counts["k3"] = 99;
    BOOST_TEST(s.commit().written.size() == 1u);
    {  // the graph of what was just written decides the next commit
      auto t = s.edit<Tally>("tally");
      *t = make_tally(1000);
      t->counts["k3"] = 99;
    }
    BOOST_TEST(s.commit().written.empty());
    s.edit<Tally>("tally")->counts.erase("k7");
    BOOST_TEST(s.commit().written.size() == 1u);
  }
  ClientOptions options;
  options.comparison = Comparison::Binary;
  Client client(store, options);
  SessionHandle s = client.open("g3");
  s.put("tally", make_tally(0));
  s.commit();
  s.put("tally", make_tally(1000));
  BOOST_TEST(s.commit().written.size() == 1u);  // bytes are all binary comparison sees
}

BOOST_AUTO_TEST_CASE(a_value_the_graph_refuses_is_an_invalid_argument) {
  // graph/ throws its own graph::UnsupportedValue; the Client speaks
  // shmsession::Error, and the refused commit leaves the stored value be.
  Client client(store);
  SessionHandle s = client.open("ug");
  s.put("u", Ungraphable{{{"a", 1}}, {}});
  s.commit();
  s.edit<Ungraphable>("u")->counts["b"] = 2;
  BOOST_TEST((code_of([&] { s.commit(); }) == Errc::InvalidArgument));
  const std::optional<SessionSnapshot> stored = store.peek("ug");
  BOOST_REQUIRE(stored.has_value());
  BOOST_TEST(stored->version == 1u);
}

BOOST_AUTO_TEST_CASE(the_copy_is_refreshed_only_when_the_primary_moved) {
  Client client(store);
  const Cart* before;
  {
    SessionHandle s = client.open("u6");
    s.put("cart", sample_cart());
    s.put("visits", Counter{0});
    s.commit();
    before = &*s.get<Cart>("cart");
  }
  {
    SessionHandle s = client.open("u6");
    BOOST_TEST(&*s.get<Cart>("cart") == before);  // same object: nothing reloaded
  }
  // Another writer moves one attribute of the primary state.
  client.release("u6");
  Store other = Store::attach(guard.name());
  {
    Client writer(other);  // a second client state of the session
    SessionHandle w = writer.open("u6");
    w.edit<Counter>("visits")->n = 41;
    w.commit();
  }
  SessionHandle s = client.open("u6");
  BOOST_TEST(s.get<Counter>("visits")->n == 41);
  BOOST_TEST(&*s.get<Cart>("cart") == before);  // unchanged attribute kept as it was
}

// An edit is compared with what the last commit wrote (its hash kept) or,
// after a refresh from another process's write, with the bytes alone:
// either way a value of the same size that differs is written and one
// that went back to what is stored is not.
BOOST_AUTO_TEST_CASE(an_edit_is_compared_with_what_was_last_written_by_either_side) {
  Client client(store);
  const auto qty_of = [&](int q) {
    SessionHandle s = client.open("cmp");
    s.edit<Cart>("cart")->items[0].qty = q;
    return s.commit().written.size();
  };
  {
    SessionHandle s = client.open("cmp");
    s.put("cart", sample_cart());
    s.commit();
  }
  BOOST_TEST(qty_of(5) == 1u);  // other bytes, another hash
  BOOST_TEST(qty_of(5) == 0u);  // the same bytes as written
  BOOST_TEST(qty_of(1) == 1u);
  client.release("cmp");
  Store other = Store::attach(guard.name());
  {
    Client writer(other);
    SessionHandle w = writer.open("cmp");
    w.edit<Cart>("cart")->items[0].qty = 7;
    BOOST_TEST(w.commit().written.size() == 1u);
  }
  BOOST_TEST(qty_of(7) == 0u);  // refreshed: no hash yet, the bytes decide
  BOOST_TEST(qty_of(8) == 1u);
  BOOST_TEST(qty_of(8) == 0u);
  SessionHandle s = client.open("cmp");
  BOOST_TEST(s.get<Cart>("cart")->items[0].qty == 8);
  BOOST_TEST(attribute_version(store, "cmp", "cart") == 5u);
}

// Attributes are found by name whatever order they came in, across
// requests that add more of them while the copy's list of what it holds
// (names viewed, not copied) is kept between refreshes; another client's
// writes reach exactly the attributes it moved.
BOOST_AUTO_TEST_CASE(many_attributes_in_any_order_are_found_by_name) {
  Client client(store);
  std::vector<std::string> names;
  for (int i = 0; i < 60; ++i) names.push_back("attr-" + std::to_string((i * 37) % 60));  // a shuffle
  for (std::size_t from = 0; from < names.size(); from += 12) {
    SessionHandle s = client.open("many");
    for (std::size_t i = from; i < from + 12; ++i) s.put(names[i], Counter{static_cast<long>(i)});
    BOOST_TEST(s.commit().written.size() == 12u);
  }
  client.release("many");
  Store other = Store::attach(guard.name());
  {
    Client writer(other);
    SessionHandle w = writer.open("many");
    for (std::size_t i = 0; i < names.size(); i += 7) w.edit<Counter>(names[i])->n += 1000;
    BOOST_TEST(w.commit().written.size() == 9u);
  }
  SessionHandle s = client.open("many");
  for (std::size_t i = 0; i < names.size(); ++i)
    BOOST_TEST(s.get<Counter>(names[i])->n == static_cast<long>(i) + (i % 7 == 0 ? 1000 : 0), names[i]);
  BOOST_TEST(!s.contains("attr-60"));
  BOOST_TEST(!s.contains("attr-"));
  BOOST_CHECK_THROW(s.get<Counter>("attr-600"), Error);
}

// This process's own commit leaves its copy current: once another process
// moves a different attribute, the next open reloads only that one, not
// the attribute this process committed (what the copy holds follows the
// commit).
BOOST_AUTO_TEST_CASE(a_refresh_after_this_process_committed_reloads_only_what_others_moved) {
  Client client(store);
  {
    SessionHandle s = client.open("u6c");
    s.put("cart", sample_cart());
    s.put("visits", Counter{0});
    s.commit();
  }
  const Cart* mine;
  for (int i = 0; i < 2; ++i) {  // commits of an attribute the copy held already
    SessionHandle s = client.open("u6c");
    s.edit<Cart>("cart")->coupon = "SAVE" + std::to_string(i);
    BOOST_TEST(s.commit().written.size() == 1u);
    mine = &*s.get<Cart>("cart");
  }
  client.release("u6c");
  Store other = Store::attach(guard.name());
  {
    Client writer(other);
    SessionHandle w = writer.open("u6c");
    BOOST_TEST(w.get<Cart>("cart")->coupon == "SAVE1");
    w.edit<Counter>("visits")->n = 41;
    w.commit();
  }
  SessionHandle s = client.open("u6c");
  BOOST_TEST(s.get<Counter>("visits")->n == 41);
  BOOST_TEST(&*s.get<Cart>("cart") == mine);  // not reloaded
  BOOST_TEST(s.get<Cart>("cart")->coupon == "SAVE1");
}

// Any worker serves any request: the lock is free as soon as a request
// ends, so another process takes it without asking anyone (timeout 0),
// and the next request here copies only what that process changed.
BOOST_AUTO_TEST_CASE(the_per_request_policy_frees_the_lock_at_the_end_of_each_request) {
  ClientOptions options;
  options.lock_policy = LockPolicy::PerRequest;
  // Another app-server process, forked before this one starts any thread
  // (ThreadSanitizer builds cannot fork after); it waits for `go`.
  shmsession::test::Signal go;
  shmsession::test::ChildProcess other([&] {
    if (!go.wait(std::chrono::seconds(60))) return 3;
    Store mine = Store::attach(guard.name());
    Client writer(mine, options);
    SessionHandle w = writer.open("u7", std::chrono::milliseconds(0));  // LockTimeout if still held
    if (w.get<Counter>("visits")->n != 1) return 2;
    w.edit<Counter>("visits")->n = 41;
    w.commit();
    return 0;
  });
  Client client(store, options);
  const Cart* before;
  {
    SessionHandle s = client.open("u7");
    s.put("cart", sample_cart());
    s.put("visits", Counter{0});
    s.commit();
    BOOST_TEST(client.holds("u7"));  // held while the request runs
    before = &*s.get<Cart>("cart");
    s.edit<Counter>("visits")->n = 1;  // not committed: the request's end commits it
  }
  BOOST_TEST(!client.holds("u7"));
  go.notify();
  BOOST_TEST(other.wait() == 0);
  SessionHandle s = client.open("u7", std::chrono::milliseconds(0));
  BOOST_TEST(s.get<Counter>("visits")->n == 41);
  BOOST_TEST(&*s.get<Cart>("cart") == before);  // unchanged attribute kept as it was
}

// Waits (yielding) until `done` holds; false after `timeout`: a watcher
// thread's bookkeeping may trail the hand-over another process saw.
template <class F>
bool eventually(F done, std::chrono::milliseconds timeout = 30s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done())
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    else
      std::this_thread::yield();
  return true;
}

// The default policy: sticky while this process alone serves the session;
// released at the end of each request once another process asked for it;
// sticky again after quiet takes of the free lock (8, then 16 after a
// relapse); a take that finds the session written by another process is
// not quiet.
BOOST_AUTO_TEST_CASE(the_adaptive_policy_follows_who_serves_the_session) {
  BOOST_TEST((ClientOptions{}.lock_policy == LockPolicy::Adaptive));
  shmsession::test::Signal go, done;
  shmsession::test::ChildProcess other([&] {
    Store mine = Store::attach(guard.name());
    for (long round = 1; round <= 2; ++round) {
      if (!go.wait(std::chrono::seconds(60))) return 3;
      Client writer(mine);
      {
        SessionHandle w = writer.open("ad", std::chrono::seconds(30));  // asks the parent
        w.edit<Counter>("visits")->n += 100;
        w.commit();
      }
      // Destroyed: releases. (Sticky in between would hold the lock until
      // asked, which is tested from the parent's side.)
      done.notify();
    }
    return 0;
  });
  Client client(store);
  auto request = [&] {
    SessionHandle s = client.open("ad", std::chrono::seconds(30));
    s.edit<Counter>("visits")->n += 1;
    s.commit();
  };
  {
    SessionHandle s = client.open("ad");
    s.put("visits", Counter{0});
    s.commit();
  }
  BOOST_TEST(client.holds("ad"));  // nobody else asked: sticky
  BOOST_TEST(client.stats().sessions_per_request == 0u);

  go.notify();  // the other process asks; idle here, the watcher hands over
  BOOST_REQUIRE(done.wait(std::chrono::seconds(60)));
  BOOST_REQUIRE(eventually([&] { return client.stats().released_on_request == 1; }));
  BOOST_TEST(client.stats().sessions_per_request == 1u);
  request();                        // the other process wrote it: not quiet
  BOOST_TEST(!client.holds("ad"));  // released at the request's end
  BOOST_TEST(client.stats().released_at_request_end == 1u);
  {
    SessionHandle s = client.open("ad");
    BOOST_TEST(s.get<Counter>("visits")->n == 101);
  }
  BOOST_TEST(!client.holds("ad"));  // 1 quiet take of the 8 needed
  for (int quiet = 2; quiet < 8; ++quiet) {
    request();  // written by this process only: quiet
    BOOST_TEST(!client.holds("ad"), "quiet take " << quiet << " of 8");
  }
  request();
  BOOST_TEST(client.holds("ad"));  // 8 quiet takes: sticky again
  BOOST_TEST(client.stats().sessions_per_request == 0u);
  BOOST_TEST(client.stats().released_at_request_end == 8u);

  go.notify();  // asked again: a relapse
  BOOST_REQUIRE(done.wait(std::chrono::seconds(60)));
  BOOST_REQUIRE(eventually([&] { return client.stats().released_on_request == 2; }));
  BOOST_TEST(client.stats().sessions_per_request == 1u);
  request();  // moved: not quiet
  for (int quiet = 1; quiet < 16; ++quiet) {
    request();
    BOOST_TEST(!client.holds("ad"), "quiet take " << quiet << " of 16");
  }
  request();
  BOOST_TEST(client.holds("ad"));
  BOOST_TEST(other.wait() == 0);
  SessionHandle s = client.open("ad");
  BOOST_TEST(s.get<Counter>("visits")->n == 0 + 100 + 8 + 100 + 17);
}

// A session without evidence of its own follows the Client's lean: after
// release requests for a dozen sessions, a new session is released at the
// end of its first request, and the idle lock of one kept since its first
// request is let go; a Client whose locks serve again and again keeps them.
BOOST_AUTO_TEST_CASE(a_new_session_follows_the_clients_lean) {
  constexpr int kShared = 12;  // asks: the lean passes one half after 11
  auto id = [](int i) { return "ln" + std::to_string(i); };
  shmsession::test::Signal go, done;
  shmsession::test::ChildProcess other([&] {
    if (!go.wait(std::chrono::seconds(60))) return 3;
    Store mine = Store::attach(guard.name());
    {
      Client asker(mine);  // its destruction releases them all
      for (int i = 0; i < kShared; ++i) SessionHandle s = asker.open(id(i), std::chrono::seconds(30));
    }
    done.notify();
    return 0;
  });
  Client client(store);
  for (int i = 0; i < kShared; ++i) {
    SessionHandle s = client.open(id(i));
    s.put("visits", Counter{i});
    s.commit();
  }
  for (int i = 0; i < 3; ++i) SessionHandle s = client.open(id(0));  // reused: leans towards keeping
  BOOST_TEST(!client.stats().lean_per_request);
  { SessionHandle s = client.open("before"); }
  BOOST_TEST(client.holds("before"));  // lean towards keeping: sticky

  go.notify();
  BOOST_REQUIRE(done.wait(std::chrono::seconds(60)));
  BOOST_REQUIRE(eventually([&] { return client.stats().released_on_request == kShared; }));
  BOOST_TEST(client.stats().lean_per_request);
  { SessionHandle s = client.open("after"); }
  BOOST_TEST(!client.holds("after"));   // no evidence of its own: released per request
  BOOST_TEST(!client.holds("before"));  // idle, no evidence: released when the lean turned
  BOOST_TEST(other.wait() == 0);
}

#ifdef SHMSESSION_TEST_HOOKS
std::atomic<bool> g_park_watcher{false};

// Keeps the release-request watcher at the top of its turns while the test
// wants it out of the way (60 s bounds it if the test never says go).
void park_watcher(shm::detail::HookPoint point) {
  if (point != shm::detail::HookPoint::kWatcherLooks) return;
  for (int i = 0; i < 60000 && g_park_watcher; ++i) std::this_thread::sleep_for(1ms);
}

// The end of a request looks for release requests itself, so a lock is
// handed over at that safe point even when the watcher thread never runs;
// it skips the look while the process's release-request counter stays
// where it was at a look that found none, and looks again once it moves.
BOOST_AUTO_TEST_CASE(the_end_of_a_request_hands_over_without_the_watcher) {
  shmsession::test::Signal go, granted;
  shmsession::test::ChildProcess other([&] {
    if (!go.wait(std::chrono::seconds(60))) return 3;
    Store mine = Store::attach(guard.name());
    LockToken t = mine.acquire("ep", std::chrono::seconds(30));  // queues behind the parent's request
    granted.notify();
    mine.release("ep", t);
    return 0;
  });
  g_park_watcher = true;
  shm::detail::set_test_hook(park_watcher);
  ClientOptions sticky;
  sticky.lock_policy = LockPolicy::Sticky;
  {
    Client client(store, sticky);
    {
      SessionHandle s = client.open("ep");
      s.put("visits", Counter{1});
      s.commit();
    }                                         // looks: no request; the counter noted
    { SessionHandle s = client.open("ep"); }  // the counter did not move: no look
    BOOST_TEST(client.holds("ep"));
    {
      SessionHandle s = client.open("ep");
      go.notify();
      BOOST_REQUIRE(shmsession::test::wait_until_in_futex(other.pid(), std::chrono::seconds(30)));
    }  // the counter moved: looks, finds the request, hands over
    BOOST_TEST(granted.wait(std::chrono::seconds(30)), "the waiter was not granted at the request's end");
    BOOST_TEST(!client.holds("ep"));
    g_park_watcher = false;
  }
  shm::detail::set_test_hook(nullptr);
  BOOST_TEST(other.wait() == 0);
}

std::atomic<int> g_sweep_looks{0};

void count_sweep_looks(shm::detail::HookPoint point) {
  if (point == shm::detail::HookPoint::kSweepLooks) ++g_sweep_looks;
}

// The sweep that lets idle locks go when the lean turns looks only at the
// sessions kept on the lean's word since the last sweep, not at every
// session the Client keeps: the lean of a Client serving random routing
// crosses one half every few requests.
BOOST_AUTO_TEST_CASE(the_sweep_looks_only_at_sessions_kept_since_the_last) {
  constexpr int kIdle = 200;
  constexpr int kAsked = 12;  // each round: the lean passes one half after at most 11
  auto idle = [](int i) { return "sw-idle" + std::to_string(i); };
  auto asked = [](int round, int i) { return "sw" + std::to_string(round) + "-" + std::to_string(i); };
  shmsession::test::Signal go[2], done[2];
  shmsession::test::ChildProcess other([&] {
    Store mine = Store::attach(guard.name());
    for (int round = 0; round < 2; ++round) {
      if (!go[round].wait(std::chrono::seconds(60))) return 3;
      Client asker(mine);  // its destruction releases them all
      for (int i = 0; i < kAsked; ++i) SessionHandle s = asker.open(asked(round, i), std::chrono::seconds(30));
      done[round].notify();
    }
    return 0;
  });
  shm::detail::set_test_hook(count_sweep_looks);
  Client client(store);
  auto keep = [&](const std::string& id) {
    SessionHandle s = client.open(id);
    s.put("visits", Counter{1});
    s.commit();
  };
  for (int i = 0; i < kIdle; ++i) keep(idle(i));
  for (int i = 0; i < kAsked; ++i) keep(asked(0, i));
  BOOST_TEST(!client.stats().lean_per_request);
  go[0].notify();
  BOOST_REQUIRE(done[0].wait(std::chrono::seconds(60)));
  BOOST_REQUIRE(eventually([&] { return client.stats().released_on_request == kAsked; }));
  BOOST_REQUIRE(client.stats().lean_per_request);
  keep("sw-turn");  // sweeps: every session kept so far is looked at, the idle ones let go
  BOOST_TEST(g_sweep_looks.load() >= kIdle);
  BOOST_TEST(!client.holds(idle(0)));
  BOOST_TEST(!client.holds(idle(kIdle - 1)));

  // Back towards keeping (free takes of a session nobody else wants), then
  // a second round of asks turns the lean again.
  for (int i = 0; i < 32 && client.stats().lean_per_request; ++i) keep("sw-back");
  BOOST_REQUIRE(!client.stats().lean_per_request);
  for (int i = 0; i < kAsked; ++i) keep(asked(1, i));
  BOOST_TEST(client.holds(asked(1, 0)));
  g_sweep_looks = 0;
  go[1].notify();
  BOOST_REQUIRE(done[1].wait(std::chrono::seconds(60)));
  BOOST_REQUIRE(eventually([&] { return client.stats().released_on_request == 2 * kAsked; }));
  BOOST_REQUIRE(client.stats().lean_per_request);
  keep("sw-turn");
  // The second round's sessions and the two kept meanwhile, not the idle ones.
  BOOST_TEST(g_sweep_looks.load() <= kAsked + 2);
  BOOST_TEST(!client.holds("sw-back"));
  shm::detail::set_test_hook(nullptr);
  BOOST_TEST(other.wait() == 0);
}
#endif

// One open() can give the policy of its request: per-request on a sticky
// Client releases at the end, sticky on a per-request Client keeps it.
BOOST_AUTO_TEST_CASE(an_open_can_choose_the_lock_policy_of_its_request) {
  ClientOptions sticky;
  sticky.lock_policy = LockPolicy::Sticky;
  Client client(store, sticky);
  {
    SessionHandle s = client.open("po", OpenOptions{.lock_policy = LockPolicy::PerRequest});
    s.put("visits", Counter{1});
    SessionHandle t = client.open("po");  // a second request, no policy given: the first's still holds
    s.commit();
  }
  BOOST_TEST(!client.holds("po"));
  BOOST_TEST(client.stats().released_at_request_end == 1u);
  { SessionHandle s = client.open("po"); }
  BOOST_TEST(client.holds("po"));  // the choice lasted one request
  BOOST_TEST(store.version("po")->version == 1u);
}

BOOST_AUTO_TEST_CASE(a_sticky_request_keeps_the_lock_of_a_per_request_client) {
  ClientOptions per_request;
  per_request.lock_policy = LockPolicy::PerRequest;
  Client client(store, per_request);
  { SessionHandle s = client.open("pk", OpenOptions{.lock_policy = LockPolicy::Sticky}); }
  BOOST_TEST(client.holds("pk"));
  { SessionHandle s = client.open("pk"); }
  BOOST_TEST(!client.holds("pk"));
}

BOOST_AUTO_TEST_SUITE_END()
