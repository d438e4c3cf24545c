// Tests of the shmctl binary: every command in text and JSON form, and the
// promise that any failure is one line on stderr with a non-zero status.
// Each test uses its own store name, removed by a SegmentGuard even when the
// test fails.
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "shm/agent_seat.hpp"
#include "shm/detail/clock.hpp"
#include "shm/replica.hpp"
#include "shm/store.hpp"
#include "test/support/segment_damage.hpp"
#include "test/support/test_support.hpp"
#include "test/tools/shmctl_harness.hpp"

namespace {

using namespace shmsession::test;
namespace json = boost::json;

// Runs shmctl, requires success and returns its standard output.
std::string shmctl_ok(const std::vector<std::string>& args, const std::string& input = {}) {
  CommandResult r = shmctl(args, input);
  BOOST_TEST_REQUIRE(r.exit_code == 0, "shmctl " << args.front() << " failed: " << r.err);
  BOOST_TEST(r.err.empty());
  return r.out;
}

void create_store(const SegmentGuard& guard, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"create", guard.name(), "--size", "16M"};
  args.insert(args.end(), extra.begin(), extra.end());
  shmctl_ok(args);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (std::size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1)
    lines.push_back(text.substr(start, end - start));
  return lines;
}

// Where the value column of a "key  value" line starts (after the first run
// of two or more blanks).
std::size_t value_column(const std::string& line) {
  std::size_t gap = line.find("  ");
  return gap == std::string::npos ? gap : line.find_first_not_of(' ', gap);
}

// The line a field list prints for `key` when its values start at `column`.
std::string field_line(const std::string& key, const std::string& value, std::size_t column) {
  return key + std::string(column - key.size(), ' ') + value;
}

}  // namespace

BOOST_AUTO_TEST_CASE(create_then_info_reports_options_and_statistics) {
  SegmentGuard guard("info");
  json::value created = shmctl_json({"create", guard.name(), "--size", "16M", "--shards", "16", "--log-capacity", "64",
                                     "--change-lanes", "4", "--idle-timeout", "60"});
  BOOST_TEST(created.at("name").as_string() == guard.name());

  json::object info = shmctl_json({"info", guard.name()}).as_object();
  for (const char* key : {"layout_version", "size_bytes", "free_bytes", "sessions", "store_id", "used_bytes", "commits",
                          "expirations", "lock_recoveries", "next_change_seq"})
    BOOST_TEST(info.contains(key), key);
  BOOST_TEST(info.at("layout_version").to_number<std::uint64_t>() >= 1u);
  BOOST_TEST(info.at("size_bytes").to_number<std::uint64_t>() == std::uint64_t{16} << 20);
  BOOST_TEST(info.at("free_bytes").to_number<std::uint64_t>() > 0u);
  BOOST_TEST(info.at("free_bytes").to_number<std::uint64_t>() < std::uint64_t{16} << 20);
  BOOST_TEST(info.at("sessions").to_number<std::uint64_t>() == 0u);
  BOOST_TEST(info.at("shards").to_number<std::uint64_t>() == 16u);
  BOOST_TEST(info.at("change_log_capacity").to_number<std::uint64_t>() == 64u);
  BOOST_TEST(info.at("change_lanes").to_number<std::uint64_t>() == 4u);
  BOOST_TEST(info.at("default_idle_timeout_s").to_number<std::uint64_t>() == 60u);
  BOOST_TEST(info.at("store_id").as_string().size() == 32u);

  std::vector<std::string> lines = lines_of(shmctl_ok({"info", guard.name()}));
  BOOST_TEST_REQUIRE(lines.size() > 5u);
  const std::size_t column = value_column(lines.front());
  BOOST_TEST(lines.front() == field_line("name", guard.name(), column));
  for (const std::string& line : lines) BOOST_TEST(value_column(line) == column, line);
  BOOST_TEST(std::count(lines.begin(), lines.end(), field_line("shards", "16", column)) == 1);
}

BOOST_AUTO_TEST_CASE(create_on_existing_name_fails_with_one_line) {
  SegmentGuard guard("twice");
  create_store(guard);
  check_one_line_error(shmctl({"create", guard.name(), "--size", "16M"}), 1, "shmctl: create '" + guard.name() + "': ");
}

BOOST_AUTO_TEST_CASE(create_mode_sets_segment_permissions) {
  SegmentGuard given("mode");
  create_store(given, {"--mode", "0640"});
  struct stat st {};
  BOOST_TEST_REQUIRE(::stat(("/dev/shm/" + given.name()).c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 07777) == 0640u);

  SegmentGuard standard("mode_default");
  create_store(standard);
  BOOST_TEST_REQUIRE(::stat(("/dev/shm/" + standard.name()).c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 07777) == 0600u);
}

BOOST_AUTO_TEST_CASE(put_then_get_round_trips_values) {
  SegmentGuard guard("putget");
  create_store(guard);
  json::object first = shmctl_json({"put", guard.name(), "s1", "greeting", "hello"}).as_object();
  BOOST_TEST(first.at("version").to_number<std::uint64_t>() == 1u);
  BOOST_TEST(first.at("created_session").as_bool());
  BOOST_TEST(shmctl_ok({"get", guard.name(), "s1", "greeting"}) == "hello");

  const std::string binary("a\0b\n\xff\xfe\r\x01z", 9);
  json::object second = shmctl_json({"put", guard.name(), "s1", "blob", "-"}, binary).as_object();
  BOOST_TEST(second.at("version").to_number<std::uint64_t>() == 2u);
  BOOST_TEST(!second.at("created_session").as_bool());
  BOOST_TEST(second.at("bytes").to_number<std::uint64_t>() == binary.size());
  BOOST_TEST(shmctl_ok({"get", guard.name(), "s1", "blob"}) == binary);
  json::object blob = shmctl_json({"get", guard.name(), "s1", "blob"}).as_object();
  BOOST_TEST(blob.at("value_base64").as_string() == "YQBiCv/+DQF6");

  json::object got = shmctl_json({"get", guard.name(), "s1", "greeting"}).as_object();
  BOOST_TEST(got.at("session").as_string() == "s1");
  BOOST_TEST(got.at("name").as_string() == "greeting");
  BOOST_TEST(got.at("value").as_string() == "hello");
  BOOST_TEST(got.at("version").to_number<std::uint64_t>() == 1u);
  BOOST_TEST(got.at("flags").to_number<std::uint64_t>() == 0u);
  BOOST_TEST(!got.contains("value_base64"));

  std::vector<std::string> lines = lines_of(shmctl_ok({"put", guard.name(), "s1", "greeting", "bonjour"}));
  BOOST_TEST_REQUIRE(!lines.empty());
  BOOST_TEST(std::count(lines.begin(), lines.end(), field_line("version", "3", value_column(lines[0]))) == 1);
  BOOST_TEST(shmctl_ok({"get", guard.name(), "s1", "greeting"}) == "bonjour");
}

BOOST_AUTO_TEST_CASE(get_of_missing_session_or_attribute_fails) {
  SegmentGuard guard("getmiss");
  create_store(guard);
  shmctl_ok({"put", guard.name(), "s1", "a", "1"});
  check_one_line_error(shmctl({"get", guard.name(), "nobody", "a"}), 1);
  check_one_line_error(shmctl({"get", guard.name(), "s1", "nothing"}), 1);
  check_one_line_error(shmctl({"show", guard.name(), "nobody"}), 1);
}

// A value damaged in the segment is not printed: get fails with one line
// naming the session and attribute, exit 1; check finds the damage.
BOOST_AUTO_TEST_CASE(get_of_a_damaged_value_fails_with_one_line) {
  SegmentGuard guard("getdamaged");
  create_store(guard);
  const std::string value = "a distinctive value, soon damaged: " + std::string(200, 'z');
  shmctl_ok({"put", guard.name(), "s1", "cart", "-"}, value);
  shmctl_ok({"put", guard.name(), "s1", "name", "sound"});
  BOOST_TEST_REQUIRE(shmctl_ok({"get", guard.name(), "s1", "cart"}) == value);
  BOOST_TEST_REQUIRE(flip_in_segment(guard.name(), value, 120, 0x10) >= 1u);  // the current blob (and the spare)

  for (bool json : {false, true}) {
    std::vector<std::string> args{"get", guard.name(), "s1", "cart"};
    if (json) args.push_back("--json");
    CommandResult r = shmctl(args);
    check_one_line_error(r, 1, "shmctl: get 'cart' of session 's1': ");
    BOOST_TEST(r.err.find("checksum") != std::string::npos, r.err);
  }
  BOOST_TEST(shmctl_ok({"get", guard.name(), "s1", "name"}) == "sound");
  CommandResult check = shmctl({"check", guard.name()});
  BOOST_TEST(check.exit_code == 3, check.out << check.err);
}

BOOST_AUTO_TEST_CASE(show_lists_attributes_without_values) {
  SegmentGuard guard("show");
  create_store(guard);
  shmctl_ok({"put", guard.name(), "s1", "cart", "three items"});
  shmctl_ok({"put", "--immutable", guard.name(), "s1", "account", "42"});

  json::object shown = shmctl_json({"show", guard.name(), "s1"}).as_object();
  BOOST_TEST(shown.at("id").as_string() == "s1");
  BOOST_TEST(shown.at("version").to_number<std::uint64_t>() == 2u);
  const json::array& attributes = shown.at("attributes").as_array();
  BOOST_TEST_REQUIRE(attributes.size() == 2u);
  BOOST_TEST(attributes[0].at("name").as_string() == "account");
  BOOST_TEST(attributes[0].at("version").to_number<std::uint64_t>() == 2u);
  BOOST_TEST(attributes[0].at("size").to_number<std::uint64_t>() == 2u);
  BOOST_TEST(attributes[0].at("flags").to_number<std::uint64_t>() == 1u);
  BOOST_TEST(attributes[1].at("name").as_string() == "cart");
  BOOST_TEST(attributes[1].at("version").to_number<std::uint64_t>() == 1u);
  BOOST_TEST(attributes[1].at("size").to_number<std::uint64_t>() == 11u);

  std::string text = shmctl_ok({"show", guard.name(), "s1"});
  BOOST_TEST(text.find("NAME     VERSION  SIZE  FLAGS\n") != std::string::npos, text);
  BOOST_TEST(text.find("account        2     2  immutable\n") != std::string::npos, text);
  BOOST_TEST(text.find("three items") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(list_shows_sessions_sorted_and_limited) {
  SegmentGuard guard("list");
  create_store(guard);
  for (const char* id : {"s3", "s1", "s5", "s2", "s4"}) shmctl_ok({"put", guard.name(), id, "a", "xyz"});

  json::array all = shmctl_json({"list", guard.name()}).as_array();
  BOOST_TEST_REQUIRE(all.size() == 5u);
  for (std::size_t i = 0; i < all.size(); ++i) {
    BOOST_TEST(all[i].at("id").as_string() == "s" + std::to_string(i + 1));
    BOOST_TEST(all[i].at("version").to_number<std::uint64_t>() == 1u);
    BOOST_TEST(all[i].at("attributes").to_number<std::uint64_t>() == 1u);
    BOOST_TEST(all[i].at("bytes").to_number<std::uint64_t>() == 3u);
  }
  BOOST_TEST(shmctl_json({"list", guard.name(), "--limit", "2"}).as_array().size() == 2u);
  BOOST_TEST(shmctl_json({"list", guard.name(), "--limit", "0"}).as_array().size() == 5u);

  std::vector<std::string> lines = lines_of(shmctl_ok({"list", guard.name(), "--limit", "2"}));
  BOOST_TEST_REQUIRE(lines.size() == 4u);  // header, two rows, the truncation note
  BOOST_TEST(lines[0].rfind("ID  VERSION  ATTRIBUTES  BYTES  IDLE  ", 0) == 0u, lines[0]);
  BOOST_TEST(lines[1].size() == lines[0].size());
  BOOST_TEST(lines[3].find("--limit 0") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(reset_removes_one_session_or_all) {
  SegmentGuard guard("reset");
  create_store(guard);
  for (const char* id : {"s1", "s2", "s3"}) shmctl_ok({"put", guard.name(), id, "a", "1"});

  shmctl_ok({"reset", guard.name(), "s1"});
  BOOST_TEST(shmctl_json({"list", guard.name()}).as_array().size() == 2u);
  check_one_line_error(shmctl({"reset", guard.name(), "s1"}), 1, "shmctl: reset session 's1': ");

  json::object removed = shmctl_json({"reset", guard.name(), "--all"}).as_object();
  BOOST_TEST(removed.at("removed").to_number<std::uint64_t>() == 2u);
  BOOST_TEST(shmctl_json({"list", guard.name()}).as_array().empty());

  check_one_line_error(shmctl({"reset", guard.name()}), 2);
  check_one_line_error(shmctl({"reset", guard.name(), "s2", "--all"}), 2);
}

#ifdef SHMSESSION_TEST_HOOKS
// shmctl reads the real segment clock, so the test ages a session by dating
// its last access back: this process's segment clock runs 121 s behind
// while it touches s1 (the test seam of shm/detail/clock.hpp). Nothing here
// waits, and s2, touched at the real time, must stay.
BOOST_AUTO_TEST_CASE(expire_frees_idle_sessions) {
  SegmentGuard guard("expire");
  create_store(guard, {"--idle-timeout", "120"});  // far longer than a few shmctl runs
  shmctl_ok({"put", guard.name(), "s1", "a", "1"});
  shmctl_ok({"put", guard.name(), "s2", "a", "2"});
  BOOST_TEST(shmctl_json({"expire", guard.name()}).at("expired").to_number<std::uint64_t>() == 0u);
  constexpr std::int64_t kBackMs = 121'000;
  timespec boot{};
  ::clock_gettime(CLOCK_BOOTTIME, &boot);
  BOOST_REQUIRE_MESSAGE(boot.tv_sec * std::int64_t{1000} > kBackMs, "the machine booted less than 121 s ago");
  {
    using shmsession::shm::detail::set_test_clock_offset_ms;
    using shmsession::shm::detail::TestClock;
    shmsession::Store store = shmsession::Store::attach(guard.name());
    set_test_clock_offset_ms(TestClock::kSegment, -kBackMs);
    const bool touched = store.touch("s1");
    set_test_clock_offset_ms(TestClock::kSegment, 0);
    BOOST_REQUIRE(touched);
  }
  BOOST_TEST(shmctl_json({"expire", guard.name()}).at("expired").to_number<std::uint64_t>() == 1u);
  json::value listed = shmctl_json({"list", guard.name()});
  BOOST_REQUIRE(listed.as_array().size() == 1u);
  BOOST_TEST(listed.as_array()[0].at("id").as_string() == "s2");
  BOOST_TEST(shmctl_json({"info", guard.name()}).at("expirations").to_number<std::uint64_t>() == 1u);
}
#endif

BOOST_AUTO_TEST_CASE(destroy_removes_the_store) {
  SegmentGuard guard("destroy");
  create_store(guard);
  shmctl_ok({"destroy", guard.name()});
  check_one_line_error(shmctl({"info", guard.name()}), 1, "shmctl: attach '" + guard.name() + "': ");
  check_one_line_error(shmctl({"destroy", guard.name()}), 1, "shmctl: destroy '" + guard.name() + "': ");
}

// create takes the whole size from memory unless told --no-reserve, and
// a 1 MiB store works with the default settings.
BOOST_AUTO_TEST_CASE(create_reserves_memory_unless_no_reserve) {
  SegmentGuard reserved("reserved"), sparse("sparse"), tiny("tiny");
  shmctl_ok({"create", reserved.name(), "--size", "16M"});
  shmctl_ok({"create", sparse.name(), "--size", "16M", "--no-reserve"});
  auto backed = [](const std::string& name) {
    struct stat st {};
    BOOST_REQUIRE(::stat(("/dev/shm/" + name).c_str(), &st) == 0);
    return static_cast<std::uint64_t>(st.st_blocks) * 512;
  };
  BOOST_TEST(backed(reserved.name()) >= std::uint64_t{16} << 20);
  BOOST_TEST(backed(sparse.name()) < std::uint64_t{8} << 20);
  json::value info = shmctl_json({"create", tiny.name(), "--size", "1M"});
  BOOST_TEST(info.at("shards").to_number<std::uint64_t>() == 16u);
  BOOST_TEST(info.at("change_log_capacity").to_number<std::uint64_t>() == 512u);
}

// A store some live process still uses is not destroyed (it would carry on
// committing into a segment no one else can reach): the refusal names it
// and its locks. Once it has exited, or with --force, destroy goes ahead.
BOOST_AUTO_TEST_CASE(destroy_refuses_while_live_processes_use_the_store) {
  SegmentGuard guard("destroy_busy"), forced("destroy_forced");
  create_store(guard);
  create_store(forced);
  Signal ready;
  auto user = [&](const std::string& name) {
    return [&ready, name] {
      shmsession::Store store = shmsession::Store::attach(name);
      store.create_session("s");
      store.acquire("s", std::chrono::seconds(10));
      ready.notify();
      for (;;) ::pause();  // until killed
      return 0;
    };
  };
  auto child = std::make_unique<ChildProcess>(user(guard.name()));
  BOOST_REQUIRE(ready.wait(std::chrono::seconds(30)));
  CommandResult refused = shmctl({"destroy", guard.name()});
  check_one_line_error(refused, 1, "shmctl: destroy '" + guard.name() + "': ");
  BOOST_TEST(refused.err.find("in use by 1 live process: " + std::to_string(child->pid()) + " (") != std::string::npos,
             refused.err);
  BOOST_TEST(refused.err.find("holds 1 lock)") != std::string::npos, refused.err);
  shmctl_ok({"info", guard.name()});  // still there
  child->kill(SIGKILL);
  child->wait();
  shmctl_ok({"destroy", guard.name()});

  ChildProcess still_running(user(forced.name()));
  BOOST_REQUIRE(ready.wait(std::chrono::seconds(30)));
  BOOST_TEST(shmctl({"destroy", forced.name()}).exit_code == 1);
  shmctl_ok({"destroy", forced.name(), "--force"});
  check_one_line_error(shmctl({"info", forced.name()}), 1);
}

BOOST_AUTO_TEST_CASE(bad_input_fails_with_one_line) {
  SegmentGuard guard("badinput");
  check_one_line_error(shmctl({"create", "a/b"}), 1, "shmctl: create 'a/b': ");
  check_one_line_error(shmctl({"info", "a/b"}), 1);
  check_one_line_error(shmctl({"create", guard.name(), "--size", "12Q"}), 2);
  check_one_line_error(shmctl({"create", guard.name(), "--size", "99999999999G"}), 2);
  check_one_line_error(shmctl({"create", guard.name(), "--mode", "999"}), 2);
  check_one_line_error(shmctl({"create", guard.name(), "--idle-timeout", "-1"}), 2);
  check_one_line_error(shmctl({"create", guard.name(), "--shards", "3", "--size", "16M"}), 1);
  BOOST_TEST(shmctl({"info", guard.name()}).exit_code == 1);  // nothing was left behind

  create_store(guard);
  check_one_line_error(shmctl({"put", guard.name(), std::string(200, 'x'), "a", "1"}), 1);
  check_one_line_error(shmctl({"put", guard.name(), "bad\x01id", "a", "1"}), 1);
  check_one_line_error(shmctl({"show", guard.name(), ""}), 1);
  check_one_line_error(shmctl({"list", guard.name(), "--limit", "ten"}), 2);
  check_one_line_error(shmctl({"get", guard.name(), "s1"}), 2);
  check_one_line_error(shmctl({"info"}), 2);
  check_one_line_error(shmctl({"frobnicate", guard.name()}), 2);
  check_one_line_error(shmctl({}), 2);
}

BOOST_AUTO_TEST_CASE(help_is_printed_for_every_command) {
  for (std::string command : {"create", "info", "list", "show", "get", "put", "reset", "expire", "destroy"}) {
    CommandResult r = shmctl({command, "--help"});
    BOOST_TEST(r.exit_code == 0, command);
    BOOST_TEST(r.err.empty(), command);
    BOOST_TEST(r.out.find("shmctl " + command) != std::string::npos, r.out);
    BOOST_TEST(r.out.find("--json") != std::string::npos, command);
  }
  CommandResult top = shmctl({"--help"});
  BOOST_TEST(top.exit_code == 0);
  BOOST_TEST(top.out.find("destroy") != std::string::npos);
}

namespace {

// Makes store `name` a standby of a primary whose store id is 16 bytes of
// `id_byte`, applied up to `seq`.
void follow(const std::string& name, std::uint8_t id_byte, std::uint64_t seq) {
  shmsession::Store store = shmsession::Store::attach(name);
  shmsession::ReplicaPosition position;
  position.primary_store_id.fill(id_byte);
  position.applied_seq = seq;
  shmsession::Replica(store).set_position(position);
}

}  // namespace

BOOST_AUTO_TEST_CASE(info_shows_a_standby_replication_position) {
  SegmentGuard guard("replica_info");
  create_store(guard);
  json::value primary = shmctl_json({"info", guard.name()});
  BOOST_TEST(primary.at("replica_of").is_null());
  BOOST_TEST(primary.at("replica_applied_seq").to_number<std::uint64_t>() == 0u);
  follow(guard.name(), 0xab, 77);
  json::value standby = shmctl_json({"info", guard.name()});
  std::string expected;
  for (int i = 0; i < 16; ++i) expected += "ab";
  BOOST_TEST(standby.at("replica_of").as_string() == expected);
  BOOST_TEST(standby.at("replica_applied_seq").to_number<std::uint64_t>() == 77u);
  std::string text = shmctl_ok({"info", guard.name()});
  BOOST_TEST(text.find("replica applied seq") != std::string::npos);
}

// Failing over by hand: promote the standby (a new epoch, following
// nothing, its old position kept as promoted_from), demote the old primary
// (put, reset and create-by-put fail with Fenced; get still reads).
BOOST_AUTO_TEST_CASE(promote_and_demote_fail_over_by_hand) {
  SegmentGuard standby_guard("fo_standby"), old_guard("fo_old");
  create_store(standby_guard);
  create_store(old_guard);
  follow(standby_guard.name(), 0xcd, 91);
  json::value info = shmctl_json({"info", standby_guard.name()});
  BOOST_TEST(info.at("epoch").to_number<std::uint64_t>() == 1u);
  BOOST_TEST(info.at("promoted").as_bool() == false);
  BOOST_TEST(info.at("fenced_by").to_number<std::uint64_t>() == 0u);
  BOOST_TEST(info.at("promoted_from").is_null());

  json::value promoted = shmctl_json({"promote", standby_guard.name()});
  BOOST_TEST(promoted.at("epoch").to_number<std::uint64_t>() == 2u);
  BOOST_TEST(promoted.at("promoted").as_bool());
  BOOST_TEST(promoted.at("promoted_from").at("applied_seq").to_number<std::uint64_t>() == 91u);
  BOOST_TEST(promoted.at("promoted_from").at("store_id").as_string() == "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd");
  info = shmctl_json({"info", standby_guard.name()});
  BOOST_TEST(info.at("replica_of").is_null());
  const std::string text = shmctl_ok({"info", standby_guard.name()});
  BOOST_TEST(text.find("promoted from") != std::string::npos);
  shmctl_ok({"put", standby_guard.name(), "s1", "user", "alice"});

  shmctl_ok({"put", old_guard.name(), "s1", "user", "bob"});
  json::value demoted = shmctl_json({"demote", old_guard.name(), "--epoch", "2"});
  BOOST_TEST(demoted.at("fenced_by").to_number<std::uint64_t>() == 2u);
  BOOST_TEST(shmctl_ok({"info", old_guard.name()}).find("fenced (superseded by epoch 2)") != std::string::npos);
  for (const std::vector<std::string>& write :
       std::vector<std::vector<std::string>>{{"put", old_guard.name(), "s1", "user", "carol"},
                                             {"put", old_guard.name(), "s2", "user", "dave"},
                                             {"reset", old_guard.name(), "s1"},
                                             {"reset", old_guard.name(), "--all"}}) {
    const CommandResult r = shmctl(write);
    check_one_line_error(r, 1);
    BOOST_TEST(r.err.find("is fenced (superseded by epoch 2)") != std::string::npos, r.err);
  }
  BOOST_TEST(shmctl_ok({"get", old_guard.name(), "s1", "user"}) == "bob");
  // A promotion unfences: the old primary, made the new one's standby and
  // promoted in turn, takes writes at epoch 3 (it had epoch 1; admitted
  // by a backup daemon of the epoch-2 primary it would have epoch 2).
  json::value again = shmctl_json({"promote", old_guard.name()});
  BOOST_TEST(again.at("fenced_by").to_number<std::uint64_t>() == 0u);
  shmctl_ok({"put", old_guard.name(), "s1", "user", "erin"});
  check_one_line_error(shmctl({"demote", old_guard.name(), "--epoch", "x"}), 2);
}

BOOST_AUTO_TEST_CASE(info_shows_the_replication_agent) {
  SegmentGuard guard("agent_info");
  create_store(guard);
  BOOST_TEST(shmctl_json({"info", guard.name()}).at("agent").is_null());
  std::vector<std::string> lines = lines_of(shmctl_ok({"info", guard.name()}));
  BOOST_TEST_REQUIRE(!lines.empty());
  const std::size_t column = value_column(lines.front());
  BOOST_TEST(std::count(lines.begin(), lines.end(), field_line("agent", "none", column)) == 1);

  // This test process is the agent; shmctl reads it from outside.
  shmsession::Store store = shmsession::Store::attach(guard.name());
  store.create_session("s1");
  store.commit("s1", shmsession::CommitBatch{}.put("a", "1"));
  const std::uint64_t next_seq = store.stats().next_change_seq;  // 3: created, committed
  BOOST_TEST_REQUIRE(shmsession::AgentSeat(store).claim());
  shmsession::AgentStatus status;
  status.state = shmsession::AgentState::Streaming;
  status.backup = "127.0.0.1:7001";
  status.last_error = "connect: Connection refused";
  status.updated_unix_ms = 1700000000000;
  status.connected_unix_ms = 1700000000001;
  status.sent_seq = next_seq;       // both changes sent...
  status.acked_seq = next_seq - 1;  // ...the second not yet acknowledged
  status.lag_ms = 12;
  status.frames_sent = 40;
  status.frames_per_s = 4;
  status.wire_bytes = 900;
  status.delta_bytes = 250;
  status.whole_bytes = 1000;
  status.full_resyncs = 1;
  status.partial_resyncs = 2;
  status.reconnects = 3;
  status.resends = 5;
  shmsession::AgentSeat(store).publish(status);

  const std::string pid = std::to_string(::getpid());
  json::object agent = shmctl_json({"info", guard.name()}).at("agent").as_object();
  BOOST_TEST(agent.at("pid").to_number<std::int64_t>() == ::getpid());
  BOOST_TEST(agent.at("alive").as_bool());
  BOOST_TEST(agent.at("state").as_string() == "streaming");
  BOOST_TEST(agent.at("backup").as_string() == "127.0.0.1:7001");
  BOOST_TEST(agent.at("last_error").as_string() == "connect: Connection refused");
  BOOST_TEST(agent.at("started_unix_ms").to_number<std::uint64_t>() > 0u);
  BOOST_TEST(agent.at("lag_changes").to_number<std::uint64_t>() == 1u);
  const std::pair<const char*, std::uint64_t> figures[] = {{"updated_unix_ms", 1700000000000},
                                                           {"connected_unix_ms", 1700000000001},
                                                           {"sent_seq", next_seq},
                                                           {"acked_seq", next_seq - 1},
                                                           {"lag_ms", 12},
                                                           {"frames_sent", 40},
                                                           {"frames_per_s", 4},
                                                           {"wire_bytes", 900},
                                                           {"delta_bytes", 250},
                                                           {"whole_bytes", 1000},
                                                           {"full_resyncs", 1},
                                                           {"partial_resyncs", 2},
                                                           {"reconnects", 3},
                                                           {"resends", 5}};
  for (const auto& [key, value] : figures) BOOST_TEST(agent.at(key).to_number<std::uint64_t>() == value, key);

  lines = lines_of(shmctl_ok({"info", guard.name()}));
  BOOST_TEST_REQUIRE(!lines.empty());
  const std::size_t at = value_column(lines.front());
  for (const std::string& line : lines) BOOST_TEST(value_column(line) == at, line);
  auto has = [&](const std::string& key, const std::string& value) {
    return std::count(lines.begin(), lines.end(), field_line(key, value, at)) == 1;
  };
  BOOST_TEST(has("agent", "pid " + pid + " (running), streaming to 127.0.0.1:7001"));
  BOOST_TEST(has("agent lag", "1 changes, 12 ms"));
  BOOST_TEST(has("agent shipped", "250 delta bytes for 1000 whole-session bytes (25.0%), 40 frames, 4 frames/s"));
  BOOST_TEST(has("agent resyncs", "full 1, partial 2, reconnects 3, resends 5"));
  BOOST_TEST(has("agent last error", "connect: Connection refused"));

  // An acknowledgement beyond the log (a restored store) is no negative lag.
  status.acked_seq = next_seq + 5;
  shmsession::AgentSeat(store).publish(status);
  BOOST_TEST(shmctl_json({"info", guard.name()}).at("agent").at("lag_changes").to_number<std::uint64_t>() == 0u);

  // Released: stopped and no longer running, the figures kept.
  shmsession::AgentSeat(store).release();
  json::object released = shmctl_json({"info", guard.name()}).at("agent").as_object();
  BOOST_TEST(released.at("state").as_string() == "stopped");
  BOOST_TEST(!released.at("alive").as_bool());
  BOOST_TEST(released.at("frames_sent").to_number<std::uint64_t>() == 40u);
  lines = lines_of(shmctl_ok({"info", guard.name()}));
  BOOST_TEST(std::count(lines.begin(), lines.end(),
                        field_line("agent", "pid " + pid + " (not running), stopped, backup 127.0.0.1:7001",
                                   value_column(lines.front()))) == 1);
}
