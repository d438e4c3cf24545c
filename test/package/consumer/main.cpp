// A minimal application of the installed package: creates a store, edits a
// session through one sync::Client, reads it back through a second Store and
// Client (and Store::peek), follows its change log and checks it through
// the role headers (shm/change_feed.hpp, shm/recovery.hpp, installed beside
// shm/store.hpp), diffs the object graphs of two carts, prints one line and
// removes the store. Exits non-zero with a line on stderr if anything is not
// as written.
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <boost/serialization/string.hpp>
#include <boost/serialization/vector.hpp>

#include "graph/object_graph.hpp"
#include "shm/change_feed.hpp"
#include "shm/recovery.hpp"
#include "shm/store.hpp"
#include "sync/client.hpp"

namespace {

struct Cart {
  std::vector<std::string> items;
  template <class A>
  void serialize(A& a, unsigned) {
    a& boost::serialization::make_nvp("items", items);
  }
};

// Removes the store's name however main leaves, so no run leaves a segment.
class StoreRemover {
 public:
  explicit StoreRemover(std::string name) : name_(std::move(name)) {}
  ~StoreRemover() {
    try {
      shmsession::Store::remove(name_);
    } catch (const std::exception&) {
    }
  }
  StoreRemover(const StoreRemover&) = delete;
  StoreRemover& operator=(const StoreRemover&) = delete;

 private:
  std::string name_;
};

int fail(const std::string& what) {
  std::fprintf(stderr, "shmsession-consumer: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main() {
  using shmsession::Store;
  const std::string name = "shmsession-consumer-" + std::to_string(::getpid());
  const std::string id = "c0ffee";
  try {
    shmsession::CreateOptions options;
    options.size_bytes = 4 << 20;
    options.shards = 4;
    Store store = Store::create(name, options);
    StoreRemover remover(name);

    {
      shmsession::sync::Client client(store);
      shmsession::sync::SessionHandle s = client.open(id);
      s.put("cart", Cart{{"apple"}});
      s.commit();
      s.edit<Cart>("cart")->items.push_back("pear");
      const shmsession::sync::CommitOutcome outcome = s.commit();
      if (outcome.written != std::vector<std::string>{"cart"})
        return fail("second commit wrote " + std::to_string(outcome.written.size()) + " attributes, expected cart");
    }  // the Client releases the session's process lock here

    Store reader = Store::attach(name);
    // Created, then two commits: three entries in the change log.
    const shmsession::ChangeBatch log = shmsession::ChangeFeed(reader).read(1, 16);
    if (log.entries.size() != 3 || log.entries.front().session_id != id)
      return fail("the change log holds " + std::to_string(log.entries.size()) + " entries, expected 3 of " + id);
    if (!shmsession::check_store(reader).clean()) return fail("check_store found problems in a fresh store");
    const auto snapshot = reader.peek(id);
    if (!snapshot) return fail("session " + id + " not found by Store::peek");
    if (!snapshot->find("cart")) return fail("attribute cart not found by Store::peek");

    shmsession::sync::Client client(reader);
    shmsession::sync::SessionHandle s = client.open(id);
    const std::vector<std::string> items = s.get<Cart>("cart")->items;
    if (items != std::vector<std::string>{"apple", "pear"})
      return fail("cart read back with " + std::to_string(items.size()) + " items, expected apple,pear");

    // The object graph of a value, through the installed graph/ alone.
    const std::vector<shmsession::graph::Change> changes = shmsession::graph::diff(
        shmsession::graph::build_graph(Cart{{"apple"}}), shmsession::graph::build_graph(Cart{items}), "cart");
    if (changes.size() != 1 || changes[0].kind != shmsession::graph::ChangeKind::Added)
      return fail("the graph diff of one added item gave " + std::to_string(changes.size()) + " changes");

    std::printf("shmsession-consumer: store %s session %s version %llu cart %s,%s\n", name.c_str(), id.c_str(),
                static_cast<unsigned long long>(snapshot->version), items[0].c_str(), items[1].c_str());
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  if (Store::exists(name)) return fail("store " + name + " still exists after removal");
  return 0;
}
