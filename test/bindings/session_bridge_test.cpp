// SessionBridge (bindings/php/session_bridge.hpp): what the PHP save handler
// does with the store, driven without PHP. Each bridge stands for a PHP
// worker process; two bridges in one process are two workers' requests.
#include "bindings/php/session_bridge.hpp"

#include <boost/test/unit_test.hpp>

#include "bindings/php/session_frame.hpp"
#include "test/support/test_support.hpp"

using namespace shmsession;
using namespace shmsession::php;
using shmsession::test::code_of;
using shmsession::test::SegmentGuard;

namespace {

constexpr std::string_view kId = "0123456789abcdef0123456789abcdef";

BridgeOptions quick_wait() {
  BridgeOptions options;
  options.store_bytes = 16 << 20;
  options.lock_wait = std::chrono::milliseconds(200);
  return options;
}

std::string frame_of(std::initializer_list<std::pair<std::string_view, std::string_view>> entries) {
  std::string frame;
  for (const auto& [key, value] : entries) append_entry(frame, key, value);
  return frame;
}

// key -> value of a frame.
std::map<std::string, std::string> entries_of(std::string_view frame) {
  std::map<std::string, std::string> out;
  for (const FrameEntry& e : parse_frame(frame)) out.emplace(e.key, e.value);
  return out;
}

std::uint64_t attribute_version(Store& store, std::string_view id, std::string_view name) {
  const std::optional<SessionInfo> info = store.describe(id);
  BOOST_REQUIRE(info);
  for (const AttributeInfo& a : info->attributes)
    if (a.name == name) return a.version;
  return 0;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(session_bridge)

BOOST_AUTO_TEST_CASE(php_keys_map_to_attribute_names_and_back) {
  for (const std::string& key :
       {std::string("n"), std::string("cart"), std::string("%x"), std::string("a b"), std::string("with|bar"),
        std::string(""), std::string("caf\xc3\xa9"), std::string("nul\0in", 6), std::string(255, 'k')}) {
    const std::string name = attribute_name(key);
    BOOST_TEST(!name.empty());
    BOOST_TEST(name.size() <= kMaxAttributeNameBytes);
    BOOST_TEST(attribute_key(name) == key);
  }
  BOOST_TEST(attribute_name("cart") == "cart");  // shmctl shows plain keys as they are
  BOOST_TEST((code_of([] { attribute_name(std::string(200, ' ')); }) == Errc::InvalidArgument));
  BOOST_TEST((code_of([] { attribute_key("%%4"); }) == Errc::Corrupt));
}

BOOST_AUTO_TEST_CASE(a_frame_cut_short_or_naming_a_key_twice_is_refused) {
  const std::string frame = frame_of({{"a", "i:1;"}, {"b", "s:1:\"x\";"}});
  BOOST_TEST(entries_of(frame).size() == 2u);
  BOOST_TEST(parse_frame("").empty());
  const std::size_t first_entry = 4 + 1 + 4 + 4;
  for (std::size_t cut = 1; cut < frame.size(); ++cut)
    if (cut != first_entry)
      BOOST_TEST((code_of([&] { parse_frame(std::string_view(frame).substr(0, cut)); }) == Errc::InvalidArgument), cut);
  BOOST_TEST((code_of([] { parse_frame(frame_of({{"a", "i:1;"}, {"a", "i:2;"}})); }) == Errc::InvalidArgument));
}

BOOST_AUTO_TEST_CASE(a_write_commits_only_the_keys_that_changed_and_removes_the_unset_ones) {
  SegmentGuard g("phpbr");
  SessionBridge bridge(g.name(), quick_wait());
  BOOST_TEST(bridge.read(kId, 60).empty());  // created on first read
  BOOST_TEST(bridge.write(kId, frame_of({{"a", "i:1;"}, {"b", "i:2;"}, {"c", "i:3;"}}), 60) == 3u);
  bridge.close();
  Store store = Store::attach(g.name());
  const std::uint64_t b_before = attribute_version(store, kId, "b");

  BOOST_TEST(entries_of(bridge.read(kId, 60)).size() == 3u);
  BOOST_TEST(bridge.write(kId, frame_of({{"a", "i:10;"}, {"b", "i:2;"}}), 60) == 2u);  // a put, c removed
  bridge.close();
  BOOST_TEST(attribute_version(store, kId, "b") == b_before);  // unchanged bytes: not written
  const std::optional<SessionSnapshot> now = store.peek(kId);
  BOOST_REQUIRE(now);
  BOOST_TEST(now->attributes.size() == 2u);
  BOOST_TEST(now->find("a")->value == "i:10;");
  BOOST_TEST(now->find("c") == nullptr);
}

BOOST_AUTO_TEST_CASE(two_requests_changing_different_keys_keep_both_changes) {
  SegmentGuard g("phpbr");
  SessionBridge first(g.name(), quick_wait());
  SessionBridge second(g.name(), quick_wait());
  first.read(kId, 60);
  first.write(kId, frame_of({{"a", "i:0;"}, {"b", "i:0;"}}), 60);
  first.close();
  // Request 1 reads, then request 2 runs whole (read, change b, write)
  // between request 1's read and write would be a lock violation: the lock
  // makes them take turns, so each write sees the other's key as read.
  const auto seen1 = entries_of(first.read(kId, 60));
  first.write(kId, frame_of({{"a", "i:1;"}, {"b", seen1.at("b")}}), 60);
  first.close();
  const auto seen2 = entries_of(second.read(kId, 60));
  BOOST_TEST(seen2.at("a") == "i:1;");
  second.write(kId, frame_of({{"a", seen2.at("a")}, {"b", "i:1;"}}), 60);
  second.close();
  const auto final = entries_of(first.read(kId, 60));
  BOOST_TEST(final.at("a") == "i:1;");
  BOOST_TEST(final.at("b") == "i:1;");
  first.close();
}

BOOST_AUTO_TEST_CASE(a_read_of_a_session_held_by_another_worker_times_out_cleanly) {
  SegmentGuard g("phpbr");
  SessionBridge holder(g.name(), quick_wait());
  holder.read(kId, 60);
  holder.write(kId, frame_of({{"n", "i:1;"}}), 60);
  shmsession::test::ChildProcess waiter([&] {
    SessionBridge other(g.name(), quick_wait());
    const std::optional<Errc> code = code_of([&] { other.read(kId, 60); });
    if (code != Errc::LockTimeout) return 1;
    return other.held() ? 2 : 0;  // nothing held after the timeout
  });
  BOOST_TEST(waiter.wait() == 0);
  holder.close();
  SessionBridge after(g.name(), quick_wait());
  BOOST_TEST(entries_of(after.read(kId, 60)).at("n") == "i:1;");  // the holder's write stands
}

BOOST_AUTO_TEST_CASE(a_waiting_worker_gets_the_session_once_the_holder_closes) {
  SegmentGuard g("phpbr");
  BridgeOptions long_wait = quick_wait();
  long_wait.lock_wait = std::chrono::milliseconds(20000);
  SessionBridge holder(g.name(), long_wait);
  holder.read(kId, 60);
  shmsession::test::ChildProcess waiter([&] {
    SessionBridge other(g.name(), long_wait);
    const auto seen = entries_of(other.read(kId, 60));
    return seen.count("n") == 1 && seen.at("n") == "i:1;" ? 0 : 1;
  });
  BOOST_REQUIRE(shmsession::test::wait_until_in_futex(waiter.pid(), std::chrono::seconds(20)));
  holder.write(kId, frame_of({{"n", "i:1;"}}), 60);
  holder.close();
  BOOST_TEST(waiter.wait() == 0);
}

BOOST_AUTO_TEST_CASE(a_session_destroyed_under_a_request_is_written_whole_again) {
  SegmentGuard g("phpbr");
  SessionBridge request(g.name(), quick_wait());
  request.read(kId, 60);
  request.write(kId, frame_of({{"a", "i:1;"}, {"b", "i:2;"}}), 60);
  request.close();
  request.read(kId, 60);
  Store store = Store::attach(g.name());
  BOOST_TEST(store.remove_session(kId));  // e.g. an operator's shmctl destroy
  BOOST_TEST(request.write(kId, frame_of({{"a", "i:1;"}, {"b", "i:3;"}}), 60) == 2u);
  request.close();
  const std::optional<SessionSnapshot> now = store.peek(kId);
  BOOST_REQUIRE(now);
  BOOST_TEST(now->attributes.size() == 2u);
}

BOOST_AUTO_TEST_CASE(destroy_create_exists_touch_and_gc) {
  SegmentGuard g("phpbr");
  SessionBridge bridge(g.name(), quick_wait());
  BOOST_TEST(!bridge.exists(kId));
  BOOST_TEST(bridge.create(kId, 60));
  BOOST_TEST(!bridge.create(kId, 60));  // taken
  BOOST_TEST(bridge.exists(kId));
  BOOST_TEST(bridge.touch(kId));
  bridge.read(kId, 60);
  BOOST_TEST(bridge.destroy(kId));
  BOOST_TEST(!bridge.held());
  BOOST_TEST(!bridge.exists(kId));
  BOOST_TEST(!bridge.touch(kId));
  BOOST_TEST(bridge.collect_garbage() == 0u);
}

BOOST_AUTO_TEST_CASE(a_missing_store_is_named_when_it_may_not_be_created) {
  SegmentGuard g("phpbr");
  BridgeOptions options = quick_wait();
  options.auto_create = false;
  try {
    SessionBridge bridge(g.name(), options);
    BOOST_FAIL("attached to a store that does not exist");
  } catch (const Error& e) {
    BOOST_TEST((e.code() == Errc::NotFound));
    BOOST_TEST(std::string(e.what()).find(g.name()) != std::string::npos);
  }
}

BOOST_AUTO_TEST_SUITE_END()
