// Tests of `shmctl check` and `shmctl recover` run as operators run them:
// the built binary against healthy stores, missing ones, a shared-memory
// object that is no store, and (in test-hooks builds) stores left behind by
// processes SIGKILLed at chosen points. Exit statuses: check 0 clean, 3
// problems found, 1 error; recover 0 or 1.
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "shm/detail/test_hooks.hpp"
#include "shm/store.hpp"
#include "test/support/segment_damage.hpp"
#include "test/support/test_support.hpp"
#include "test/tools/shmctl_harness.hpp"

using namespace std::chrono_literals;
using namespace shmsession::test;
namespace json = boost::json;

namespace {

// The JSON report of `shmctl check` or `recover` (or `info`).
json::object report_of(const std::vector<std::string>& args, int exit_code = 0) {
  return shmctl_json(args, {}, exit_code).as_object();
}

std::uint64_t number(const json::object& doc, const char* key) { return doc.at(key).to_number<std::uint64_t>(); }

// Session id -> version, as `shmctl list` shows them.
std::map<std::string, std::uint64_t> versions_of(const SegmentGuard& g) {
  std::map<std::string, std::uint64_t> versions;
  const json::value listed = shmctl_json({"list", g.name(), "--limit", "0"});
  for (const json::value& s : listed.as_array())
    versions[std::string(s.at("id").as_string())] = s.at("version").to_number<std::uint64_t>();
  return versions;
}

// The value of the "key  value" line for `key` in a field list, or "<none>".
std::string field(const std::string& text, const std::string& key) {
  std::size_t at = text.rfind(key + "  ", 0) == 0 ? 0 : text.find("\n" + key + "  ");
  if (at == std::string::npos) return "<none>";
  if (at != 0) ++at;
  std::size_t value = text.find_first_not_of(' ', at + key.size());
  return text.substr(value, text.find('\n', value) - value);
}

// Session id -> attribute name -> value.
using Values = std::map<std::string, std::map<std::string, std::string>>;

// Creates a store of `sessions` sessions named s0, s1... of two attributes
// each; s0's "blob" holds bytes that are not text. Filled through the
// library (what the tools read is the same store): one shmctl process per
// put made this suite the slowest of the sanitized pass.
Values fill(const SegmentGuard& g, int sessions) {
  shmsession::CreateOptions options;
  options.size_bytes = 16u << 20;
  options.shards = 4;
  shmsession::Store store = shmsession::Store::create(g.name(), options);
  Values values;
  for (int i = 0; i < sessions; ++i) {
    const std::string id = "s" + std::to_string(i);
    values[id]["cart"] = "items=" + std::to_string(i * 7);
    values[id]["blob"] = i == 0 ? std::string("\0\xff\x01 binary", 10) : std::string(100 + i, 'b');
    shmsession::CommitBatch batch;
    for (const auto& [name, value] : values[id]) batch.put(name, value);
    BOOST_TEST_REQUIRE(store.create_session(id));
    store.commit(id, batch);
  }
  return values;
}

// Every value of `values` as the store holds it now, read through the
// library; s0's binary blob also through `shmctl get`, as operators read it.
void expect_values(const SegmentGuard& g, const Values& values) {
  {
    shmsession::Store store = shmsession::Store::attach(g.name());
    for (const auto& [id, attributes] : values) {
      std::optional<shmsession::SessionSnapshot> got = store.read(id);
      BOOST_TEST_REQUIRE(got.has_value(), id);
      BOOST_TEST(got->attributes.size() == attributes.size(), id);
      for (const auto& [name, value] : attributes) {
        const shmsession::Attribute* a = got->find(name);
        BOOST_TEST_REQUIRE(a != nullptr, id << "/" << name);
        BOOST_TEST((a->value == value), id << "/" << name);
      }
    }
  }
  CommandResult blob = shmctl({"get", g.name(), "s0", "blob"});
  BOOST_TEST(blob.exit_code == 0, blob.err);
  BOOST_TEST((blob.out == values.at("s0").at("blob")));
}

}  // namespace

BOOST_AUTO_TEST_CASE(check_of_a_healthy_store_is_clean) {
  SegmentGuard g("check_ok");
  fill(g, 5);
  json::object report = report_of({"check", g.name()});
  BOOST_TEST(report.at("clean").as_bool());
  BOOST_TEST(report.at("problems").as_array().empty());
  BOOST_TEST(report.at("damaged_ids").as_array().empty());
  BOOST_TEST(number(report, "generation") == 1u);
  BOOST_TEST(number(report, "sessions") == 5u);
  BOOST_TEST(number(report, "attributes") == 10u);
  BOOST_TEST(report.at("allocator_ok").as_bool());
  BOOST_TEST(report.at("index_ok").as_bool());
  BOOST_TEST(!report.at("moved").as_bool());
  for (const char* key : {"damaged_sessions", "shard_repairs", "miscounted_shards", "dead_lock_holders", "dead_waiters",
                          "dead_process_slots"})
    BOOST_TEST(number(report, key) == 0u, key);
  BOOST_TEST(number(report, "unreferenced_bytes") == 0u);  // a quiet store, no process killed

  CommandResult text = shmctl({"check", g.name()});
  BOOST_TEST(text.exit_code == 0, text.err);
  BOOST_TEST(text.err.empty());
  BOOST_TEST(field(text.out, "generation") == "1");
  BOOST_TEST(field(text.out, "sessions verified") == "5");
  BOOST_TEST(field(text.out, "attributes verified") == "10");
  BOOST_TEST(field(text.out, "allocator") == "ok");
  BOOST_TEST(field(text.out, "result") == "clean");
  BOOST_TEST(text.out.find("problem  ") == std::string::npos, text.out);
}

BOOST_AUTO_TEST_CASE(check_and_recover_of_a_missing_store_fail_with_one_line) {
  SegmentGuard g("check_missing");
  const std::string attach = "shmctl: attach '" + g.name() + "': ";
  check_one_line_error(shmctl({"check", g.name()}), 1, attach);
  check_one_line_error(shmctl({"check", g.name(), "--json"}), 1, attach);
  check_one_line_error(shmctl({"recover", g.name()}), 1, attach);
  check_one_line_error(shmctl({"recover", g.name(), "--rebuild", "--json"}), 1, attach);
  check_one_line_error(shmctl({"check", "a/b"}), 1, "shmctl: attach 'a/b': ");
  BOOST_TEST(!shmsession::Store::exists(g.name()));  // neither created it
}

BOOST_AUTO_TEST_CASE(check_reports_a_segment_that_is_no_store_as_a_problem) {
  SegmentGuard g("check_garbage");
  {
    int fd = ::shm_open(("/" + g.name()).c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    BOOST_TEST_REQUIRE(fd >= 0);
    std::string garbage;
    while (garbage.size() < (1u << 20)) garbage += "not a shmsession store ";
    BOOST_TEST_REQUIRE(::ftruncate(fd, 1 << 20) == 0);
    BOOST_TEST_REQUIRE(::write(fd, garbage.data(), 1 << 20) == 1 << 20);
    ::close(fd);
  }
  check_one_line_error(shmctl({"check", g.name()}), 3, "shmctl: attach '" + g.name() + "': ");

  json::object report = report_of({"check", g.name()}, 3);
  BOOST_TEST(!report.at("clean").as_bool());
  BOOST_TEST(report.at("error").as_string() == "Corrupt");
  const json::array& problems = report.at("problems").as_array();
  BOOST_TEST_REQUIRE(problems.size() == 1u);
  BOOST_TEST(problems[0].as_string().subview().rfind("header: ", 0) == 0u, problems[0]);
  BOOST_TEST(problems[0].as_string().size() > 8u);

  // recover needs a store to attach: that is a failure, not a finding.
  check_one_line_error(shmctl({"recover", g.name()}), 1, "shmctl: attach '" + g.name() + "': ");
}

BOOST_AUTO_TEST_CASE(recover_of_a_healthy_store_keeps_its_generation) {
  SegmentGuard g("recover_ok");
  fill(g, 3);
  json::object report = report_of({"recover", g.name()});
  const std::string action(report.at("action").as_string());
  BOOST_TEST((action == "none" || action == "repaired"), action);
  BOOST_TEST(number(report, "from_generation") == 1u);
  BOOST_TEST(number(report, "to_generation") == 1u);
  BOOST_TEST(number(report, "sessions_dropped") == 0u);
  BOOST_TEST(report.at("dropped_ids").as_array().empty());
  for (const char* key :
       {"reason", "shard_repairs", "locks_revoked", "slots_freed", "sessions_copied", "bytes_reclaimed"})
    BOOST_TEST(report.contains(key), key);

  CommandResult text = shmctl({"recover", g.name()});
  BOOST_TEST(text.exit_code == 0, text.err);
  BOOST_TEST((field(text.out, "action") == "none" || field(text.out, "action") == "repaired"), text.out);
  BOOST_TEST(field(text.out, "generation") == "1");
  BOOST_TEST(report_of({"check", g.name()}).at("clean").as_bool());
}

BOOST_AUTO_TEST_CASE(recover_rebuild_moves_every_session_to_generation_2) {
  SegmentGuard g("rebuild");
  const auto values = fill(g, 6);
  BOOST_TEST(number(report_of({"info", g.name()}), "generation") == 1u);
  const std::map<std::string, std::uint64_t> versions = versions_of(g);
  BOOST_TEST_REQUIRE(versions.size() == values.size());

  json::object report = report_of({"recover", g.name(), "--rebuild"});
  BOOST_TEST(report.at("action").as_string() == "rebuilt");
  BOOST_TEST(number(report, "from_generation") == 1u);
  BOOST_TEST(number(report, "to_generation") == 2u);
  BOOST_TEST(number(report, "sessions_copied") == values.size());
  BOOST_TEST(number(report, "sessions_dropped") == 0u);
  BOOST_TEST(report.at("dropped_ids").as_array().empty());

  // Every session, version and value survived the move.
  BOOST_TEST((versions_of(g) == versions));
  expect_values(g, values);

  json::object check = report_of({"check", g.name()});
  BOOST_TEST(check.at("clean").as_bool());
  BOOST_TEST(number(check, "generation") == 2u);
  BOOST_TEST(number(check, "sessions") == values.size());
  BOOST_TEST(number(report_of({"info", g.name()}), "generation") == 2u);
  CommandResult info = shmctl({"info", g.name()});
  BOOST_TEST(field(info.out, "generation") == "2", info.out);

  // The text form says what moved where.
  CommandResult text = shmctl({"recover", g.name(), "--rebuild"});
  BOOST_TEST(text.exit_code == 0, text.err);
  BOOST_TEST(field(text.out, "action").rfind("rebuilt", 0) == 0u, text.out);
  BOOST_TEST(field(text.out, "generation") == "2 -> 3");
  BOOST_TEST(field(text.out, "sessions copied") == std::to_string(values.size()));
  BOOST_TEST(field(text.out, "sessions dropped") == "0");
}

// A bit flipped in a chain link of the session table (the link now leads
// out of the segment) used to make check, recover --rebuild, list and info
// die with SIGSEGV. Every tool survives it: check reports the broken link,
// list and info answer, get fails with one line for a session the link cut
// off, and the rebuild finds those sessions again and keeps every one.
BOOST_AUTO_TEST_CASE(tools_survive_a_broken_chain_link_and_the_rebuild_keeps_every_session) {
  SegmentGuard g("brokenlink");
  const Values values = fill(g, 40);
  {
    MappedSegment segment(g.name());
    BOOST_TEST_REQUIRE(break_a_chain_link(segment), "no record with a successor");
  }

  json::object check = report_of({"check", g.name()}, 3);
  BOOST_TEST(!check.at("clean").as_bool());
  BOOST_TEST(number(check, "broken_links") >= 1u);
  BOOST_TEST(number(check, "sessions") < values.size());  // the cut-off ones were not reached
  CommandResult text = shmctl({"check", g.name()});
  BOOST_TEST(text.exit_code == 3, text.err);
  BOOST_TEST(text.out.find("chain link") != std::string::npos, text.out);

  BOOST_TEST(shmctl_json({"list", g.name(), "--limit", "0"}).as_array().size() < values.size());
  BOOST_TEST(shmctl({"info", g.name()}).exit_code == 0);
  std::size_t unreachable = 0;
  for (const auto& [id, attributes] : values) {
    CommandResult got = shmctl({"get", g.name(), id, "cart"});
    if (got.exit_code == 0) {
      BOOST_TEST(got.out == attributes.at("cart"));
      continue;
    }
    ++unreachable;
    check_one_line_error(got, 1, "shmctl: get 'cart' of session '" + id + "': ");
    BOOST_TEST(got.err.find("damaged") != std::string::npos, got.err);
  }
  BOOST_TEST(unreachable >= 1u);

  json::object report = report_of({"recover", g.name(), "--rebuild"});
  BOOST_TEST(report.at("action").as_string() == "rebuilt");
  BOOST_TEST(number(report, "sessions_copied") == values.size());
  BOOST_TEST(number(report, "sessions_relinked") == unreachable);
  BOOST_TEST(number(report, "sessions_dropped") == 0u);
  BOOST_TEST(report_of({"check", g.name()}).at("clean").as_bool());
  expect_values(g, values);
}

// A session's lock-state reference moved onto a free slot (a stray write):
// check names the damage (exit 3), the lock of that session is refused with
// one line, and the rebuild clears it.
BOOST_AUTO_TEST_CASE(check_reports_a_damaged_lock_reference_and_the_rebuild_clears_it) {
  SegmentGuard g("lockref");
  const Values values = fill(g, 8);
  {
    shmsession::Store store = shmsession::Store::attach(g.name());
    shmsession::LockToken t = store.acquire("s1", 1s);  // the table gets its first chunk
    store.release("s1", t);
    MappedSegment segment(g.name());
    // s5's record: magic "SESS" 72 bytes before its id; the reference at 64.
    bool damaged = false;
    for (std::size_t at : segment.find_all("s5")) {
      if (at < 72 || std::memcmp(segment.data() + at - 72, "SSES", 4) != 0) continue;
      std::uint32_t slot = 3;
      std::memcpy(segment.data() + at - 72 + 64, &slot, 4);
      damaged = true;
    }
    BOOST_TEST_REQUIRE(damaged);
  }
  json::object check = report_of({"check", g.name()}, 3);
  BOOST_TEST(!check.at("clean").as_bool());
  BOOST_TEST(number(check, "damaged_lock_references") == 1u);
  CommandResult text = shmctl({"check", g.name()});
  BOOST_TEST(text.exit_code == 3, text.err);
  BOOST_TEST(field(text.out, "damaged lock references") == "1");
  BOOST_TEST(text.out.find("reference a lock state") != std::string::npos, text.out);

  json::object report = report_of({"recover", g.name()});
  BOOST_TEST(report.at("action").as_string() == "rebuilt");
  BOOST_TEST(number(report, "sessions_copied") == values.size());
  BOOST_TEST(report_of({"check", g.name()}).at("clean").as_bool());
  expect_values(g, values);
}

BOOST_AUTO_TEST_CASE(help_and_usage_errors) {
  for (const char* command : {"check", "recover"}) {
    CommandResult r = shmctl({command, "--help"});
    BOOST_TEST(r.exit_code == 0, command);
    BOOST_TEST(r.out.find("--json") != std::string::npos, r.out);
  }
  BOOST_TEST(shmctl({"recover", "--help"}).out.find("--rebuild") != std::string::npos);
  check_one_line_error(shmctl({"check"}), 2, "shmctl: check: ");
  check_one_line_error(shmctl({"check", "x", "--rebuild"}), 2, "shmctl: check: ");
  check_one_line_error(shmctl({"recover", "x", "--bogus"}), 2, "shmctl: recover: ");
}

#ifdef SHMSESSION_TEST_HOOKS

namespace {

using shmsession::shm::detail::HookPoint;

HookPoint g_kill_at;

void die_here(HookPoint point) {
  if (point == g_kill_at) ::raise(SIGKILL);
}

// Runs `work` in a child process that SIGKILLs itself at `point`.
void kill_child_at(const SegmentGuard& g, HookPoint point, const std::function<void(shmsession::Store&)>& work) {
  shmsession::test::ChildProcess child([&] {
    shmsession::Store mine = shmsession::Store::attach(g.name());
    g_kill_at = point;
    shmsession::shm::detail::set_test_hook(die_here);
    work(mine);
    return 1;  // the hook was never reached
  });
  BOOST_TEST_REQUIRE(child.wait() == 128 + SIGKILL);
}

}  // namespace

// A commit killed inside its shard's critical section: check repairs the
// shard as any access would, which is not a problem.
BOOST_AUTO_TEST_CASE(check_repairs_a_shard_whose_holder_died_and_stays_clean) {
  SegmentGuard g("check_shard");
  fill(g, 2);
  const std::uint64_t unreferenced = number(report_of({"check", g.name()}), "unreferenced_bytes");
  kill_child_at(g, HookPoint::kCommitBeforePublish,
                [](shmsession::Store& s) { s.commit("s1", shmsession::CommitBatch{}.put("cart", "new")); });
  json::object report = report_of({"check", g.name()});
  BOOST_TEST(report.at("clean").as_bool(), json::serialize(report));
  BOOST_TEST(number(report, "shard_repairs") == 1u);
  BOOST_TEST(number(report, "sessions") == 2u);
  BOOST_TEST(number(report, "unreferenced_bytes") > unreferenced);            // the blob built, never published
  BOOST_TEST(number(report_of({"check", g.name()}), "shard_repairs") == 0u);  // repaired once
  BOOST_TEST(shmctl({"get", g.name(), "s1", "cart"}).out == "items=7");
}

// A process that died holding a session lock: informational for check;
// recover revokes the lock without a rebuild.
BOOST_AUTO_TEST_CASE(recover_revokes_a_dead_holders_lock) {
  SegmentGuard g("recover_lock");
  fill(g, 2);
  {
    shmsession::test::Signal holding;
    shmsession::test::ChildProcess holder([&] {
      shmsession::Store mine = shmsession::Store::attach(g.name());
      mine.acquire("s0", 5s);
      holding.notify();
      for (;;) ::pause();
      return 0;
    });
    BOOST_TEST_REQUIRE(holding.wait(10s));
    holder.kill(SIGKILL);
    BOOST_TEST(holder.wait() == 128 + SIGKILL);
  }
  json::object check = report_of({"check", g.name()});
  BOOST_TEST(check.at("clean").as_bool(), json::serialize(check));
  BOOST_TEST(number(check, "dead_lock_holders") == 1u);
  CommandResult text = shmctl({"check", g.name()});
  BOOST_TEST(text.exit_code == 0);
  BOOST_TEST(field(text.out, "dead processes").rfind("lock holders 1, ", 0) == 0u, text.out);

  json::object report = report_of({"recover", g.name()});
  BOOST_TEST(report.at("action").as_string() == "repaired");
  BOOST_TEST(number(report, "locks_revoked") == 1u);
  BOOST_TEST(number(report, "to_generation") == 1u);
  BOOST_TEST(number(report_of({"check", g.name()}), "dead_lock_holders") == 0u);
  BOOST_TEST(shmctl_json({"locks", g.name()}).as_array().empty());
}

// A process killed inside the segment allocator poisons it: check lists the
// problem (exit 3, report printed), recover rebuilds, and nothing is lost.
BOOST_AUTO_TEST_CASE(check_reports_a_poisoned_allocator_and_recover_rebuilds) {
  SegmentGuard g("check_alloc");
  const auto values = fill(g, 3);
  kill_child_at(g, HookPoint::kInsideAllocator,
                [](shmsession::Store& s) { s.commit("s2", shmsession::CommitBatch{}.put("new", "x")); });

  json::object report = report_of({"check", g.name()}, 3);
  BOOST_TEST(!report.at("clean").as_bool());
  BOOST_TEST(!report.at("allocator_ok").as_bool());
  BOOST_TEST(!report.at("problems").as_array().empty());
  CommandResult text = shmctl({"check", g.name()});
  BOOST_TEST(text.exit_code == 3, text.err);
  BOOST_TEST(text.err.empty());
  BOOST_TEST(field(text.out, "allocator") != "ok");
  BOOST_TEST(field(text.out, "result").find("problem") != std::string::npos, text.out);
  BOOST_TEST(text.out.find("\nproblem  ") != std::string::npos, text.out);

  json::object recovered = report_of({"recover", g.name()});
  BOOST_TEST(recovered.at("action").as_string() == "rebuilt");
  BOOST_TEST(!recovered.at("reason").as_string().empty());
  BOOST_TEST(number(recovered, "to_generation") == 2u);
  BOOST_TEST(number(recovered, "sessions_copied") == 3u);
  json::object after = report_of({"check", g.name()});
  BOOST_TEST(after.at("clean").as_bool(), json::serialize(after));
  for (const auto& [id, attributes] : values)
    for (const auto& [name, value] : attributes)
      BOOST_TEST((shmctl({"get", g.name(), id, name}).out == value), id << "/" << name);
}

#endif  // SHMSESSION_TEST_HOOKS
