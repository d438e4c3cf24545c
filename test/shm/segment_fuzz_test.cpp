// The segment fuzzer: random bit flips in the used structures of a real
// store, then everything the tools run on a damaged store (check, recover
// --rebuild, list, info, reading every session), in forked children (ten
// rounds each) so that a crash or a hang is caught and reported with its
// round, the seed and the flipped offsets.
//
// What must hold, every round: no crash, no hang; damage the format can
// see (a value's checksum, a record's magic, id and hash, a chain link, a
// bucket table, a shard counter, the header) is reported (check not clean,
// or an Error); after `recover --rebuild` the store checks clean, holds no
// session that was not in the original, and every session whose record and
// blob bytes were not hit reads back identical, even when a broken link or
// table cut it off its chain.
//
// Where the flips land: the segment header (not its init word: attach
// would wait 2 s each time), the root and the shards (not their robust
// mutexes: a flipped lock word is a lock held by nobody, which no reader
// can tell from a live holder), the bucket tables, the records, the blobs.
// Boost's own allocator metadata and named-object index are not flipped
// (shm/recovery.md says why).
//
// With SHMSESSION_SEGMENT_FUZZ_WRITES=1, each round then damages the store
// the same way again and runs writers on it (commit, lock, release,
// remove, create, expire): the same rules, no crash and no hang. Not on by
// default: damage that stays consistent (a record's blob link moved onto
// another live blob) still leads writers to free a block twice, which
// corrupts Boost's allocator (shm/recovery.md, Damage).
//
// Every 50th round also runs the shmctl binary (check, list, info, get,
// show, recover --rebuild, check) on the damaged store.
//
// SHMSESSION_SEGMENT_FUZZ_FLIPS (default 1000) sets how many bits are
// flipped in all, SHMSESSION_SEGMENT_FUZZ_SEED the seed (default fixed);
// SHMSESSION_SEGMENT_FUZZ_DEBUG_ROUND replays one round in this process.
#define BOOST_TEST_MODULE segment_fuzz
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <boost/interprocess/shared_memory_object.hpp>

#include "shm/agent_seat.hpp"
#include "shm/detail/segment_format.hpp"
#include "shm/detail/thread_annotations.hpp"
#include "shm/recovery.hpp"
#include "shm/replica.hpp"
#include "shm/store.hpp"
#include "test/support/segment_damage.hpp"
#include "test/support/test_support.hpp"

using namespace shmsession;
using namespace shmsession::shm::detail;
using namespace std::chrono_literals;
using shmsession::test::ChildProcess;
using shmsession::test::MappedSegment;
using shmsession::test::SegmentGuard;

namespace {

constexpr std::uint32_t kShardCount = 2;
constexpr std::uint32_t kChangeLog = 64;
constexpr std::uint64_t kSegmentBytes = 2 << 20;

// Session id -> attribute name -> value, and the session's version.
struct Session {
  std::map<std::string, std::string> attributes;
  std::uint64_t version = 0;
};
using Content = std::map<std::string, Session>;

enum Category { kHeader, kRoot, kShards, kTables, kRecords, kBlobMeta, kValues, kCategories };
const char* const kCategoryNames[] = {"header", "root", "shard", "table", "record", "blob", "value"};
// How often each category is picked (a flip then lands on a uniform byte of it).
constexpr int kWeights[kCategories] = {4, 8, 10, 13, 30, 15, 20};

// Bytes of one field of one structure, in file offsets.
struct Region {
  std::size_t begin = 0, end = 0;
  Category category = kHeader;
  bool must_detect = false;  // a flip here is damage the format can see
  std::string session;       // the session these bytes belong to (records, blobs)
};

std::string random_bytes(std::mt19937_64& rng, std::size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

// A store of sessions of every shape: empty ones, one to five attributes of
// 0 B to 2 KB (random bytes, so a shifted read never matches a checksum),
// several versions (spare and freed blobs), removed sessions (freed
// records), tables grown past their first size, and a lock held by a
// process that died.
Content build_store(const std::string& name) {
  CreateOptions o;
  o.size_bytes = kSegmentBytes;
  o.shards = kShardCount;
  o.change_log_capacity = kChangeLog;
  o.default_idle_timeout_s = 0;
  Store store = Store::create(name, o);
  std::mt19937_64 rng(7);
  Content content;
  for (int i = 0; i < 70; ++i) {
    const std::string id = "fuzz-session-" + std::to_string(i);
    store.create_session(id);
    Session& s = content[id];
    const int commits = i % 5 == 0 ? 0 : 1 + static_cast<int>(rng() % 3);
    for (int c = 0; c < commits; ++c) {
      CommitBatch batch;
      const int n = 1 + static_cast<int>(rng() % 5);
      for (int a = 0; a < n; ++a) {
        const std::string attr = "attr" + std::to_string(rng() % 6);
        if (s.attributes.count(attr) ||
            std::any_of(batch.puts.begin(), batch.puts.end(), [&](const AttributeWrite& w) { return w.name == attr; }))
          continue;
        std::string value = random_bytes(rng, rng() % 4 == 0 ? 0 : rng() % 2000);
        s.attributes[attr] = value;
        batch.put(attr, std::move(value));
      }
      s.version = store.commit(id, batch);
    }
  }
  for (int i = 3; i < 70; i += 9) {
    const std::string id = "fuzz-session-" + std::to_string(i);
    store.remove_session(id);
    content.erase(id);
  }
  ChildProcess holder([&] {
    Store mine = Store::attach(name);
    mine.acquire("fuzz-session-1", 1s);
    ::_exit(0);  // dies holding the lock
    return 0;
  });
  BOOST_TEST_REQUIRE(holder.wait() == 0);
  return content;
}

// The fuzzed regions of the store as its structures lay them out. It reads
// a mapping no process uses (the store is idle), so no shard lock is taken.
std::vector<Region> map_regions(const std::string& name) NO_THREAD_SAFETY_ANALYSIS {
  MappedSegment segment(name);
  const unsigned char* base = segment.data();
  std::vector<std::size_t> headers = segment.find_all(std::string_view("SESSION1", 8));
  BOOST_TEST_REQUIRE(headers.size() == 1u);
  const auto* header = reinterpret_cast<const SegmentHeader*>(base + headers[0]);
  const StoreRoot* root = nullptr;
  for (std::size_t manager : {16, 8, 32, 0, 64}) {  // Boost's own header before the segment manager
    const auto* r = reinterpret_cast<const StoreRoot*>(base + manager + header->root_handle);
    if (manager + header->root_handle + sizeof(StoreRoot) <= segment.size() && r->shard_count == kShardCount &&
        r->change_capacity == kChangeLog) {
      root = r;
      break;
    }
  }
  BOOST_TEST_REQUIRE(root != nullptr);
  std::vector<Region> regions;
  auto off = [&](const void* p) { return static_cast<std::size_t>(static_cast<const unsigned char*>(p) - base); };
  auto add = [&](const void* p, std::size_t from, std::size_t to, Category c, bool must, const std::string& s = {}) {
    regions.push_back({off(p) + from, off(p) + to, c, must, s});
  };
#define FIELD(T, f) offsetof(T, f), offsetof(T, f) + sizeof(T::f)
  add(header, FIELD(SegmentHeader, magic), kHeader, true);
  add(header, FIELD(SegmentHeader, layout_version), kHeader, true);
  add(header, FIELD(SegmentHeader, root_size), kHeader, true);
  add(header, FIELD(SegmentHeader, reserved), kHeader, false);
  add(header, FIELD(SegmentHeader, store_id), kHeader, false);
  add(header, FIELD(SegmentHeader, created_unix_ms), kHeader, false);
  add(header, FIELD(SegmentHeader, root_handle), kHeader, true);

  // The root but its robust mutexes (a flipped owner word can name a live
  // thread, pid 1's say: a lock nobody can tell from a held one), in the
  // root's order.
  const std::size_t mutexes[][2] = {
      {FIELD(StoreRoot, replica_mutex)},
      {offsetof(StoreRoot, agent), offsetof(StoreRoot, agent) + sizeof(RobustMutexStorage)},
      {FIELD(StoreRoot, sequencer_mutex)},
      {FIELD(StoreRoot, recovery_mutex)},
      {FIELD(StoreRoot, allocator_mutex)}};
  std::size_t at = 0;
  for (const auto& m : mutexes) {
    BOOST_TEST_REQUIRE(m[0] >= at);  // in the root's order
    add(root, at, m[0], kRoot, false);
    at = m[1];
  }
  add(root, at, sizeof(StoreRoot), kRoot, false);

  const Shard* shards = root->shards.get();
  for (std::uint32_t i = 0; i < kShardCount; ++i) {
    const Shard& sh = shards[i];
    add(&sh, offsetof(Shard, moved), offsetof(Shard, table), kShards, false);
    add(&sh, FIELD(Shard, table), kShards, true);
    add(&sh, FIELD(Shard, growing), kShards, false);
    add(&sh, FIELD(Shard, sessions), kShards, true);
    add(&sh, FIELD(Shard, attributes), kShards, true);
    add(&sh, FIELD(Shard, payload_bytes), kShards, true);
    add(&sh, offsetof(Shard, pending), sizeof(Shard), kShards, false);
    // The shard's lock-state table and its chunks (the dead holder's lock
    // has a slot there).
    const LockTable& locks = root->lock_tables.get()[i];
    add(&locks, 0, sizeof(LockTable), kShards, false);
    for (std::uint32_t c = 0; c < locks.chunk_count && c < kLockChunks; ++c)
      add(locks.chunks[c].get(), 0, std::size_t{kLockChunkBase << c} * sizeof(LockSlot), kShards, false);

    const BucketTable* t = sh.table.get();
    add(t, FIELD(BucketTable, bucket_count), kTables, true);
    add(t, offsetof(BucketTable, parity), sizeof(BucketTable), kTables, false);
    add(t, sizeof(BucketTable), sizeof(BucketTable) + t->bucket_count * 8, kTables, true);
    const std::uint32_t p = t->parity;
    auto* heads = reinterpret_cast<const bip::offset_ptr<SessionRecord>*>(t + 1);
    for (std::uint64_t b = 0; b < t->bucket_count; ++b) {
      for (const SessionRecord* r = heads[b].get(); r != nullptr; r = r->next[p].get()) {
        const std::string id(r->id(), r->id_size);
        add(r, FIELD(SessionRecord, magic), kRecords, true, id);
        add(r, FIELD(SessionRecord, id_size), kRecords, true, id);
        add(r, offsetof(SessionRecord, reserved), offsetof(SessionRecord, hash), kRecords, false, id);
        add(r, FIELD(SessionRecord, hash), kRecords, true, id);
        add(r, offsetof(SessionRecord, incarnation), offsetof(SessionRecord, blob), kRecords, false, id);
        // A blob link moved onto another blob is consistent damage: nothing can see it.
        add(r, FIELD(SessionRecord, blob), kRecords, false, id);
        const std::size_t link = offsetof(SessionRecord, next) + p * 8;
        add(r, link, link + 8, kRecords, true, id);
        const std::size_t other = offsetof(SessionRecord, next) + (p ^ 1u) * 8;
        add(r, other, other + 8, kRecords, false, id);
        // A reference moved anywhere leads out of range or to a slot that is
        // free or another session's (the slot names its owner).
        add(r, FIELD(SessionRecord, lock_slot), kRecords, true, id);
        add(r, FIELD(SessionRecord, reserved2), kRecords, false, id);
        add(r, sizeof(SessionRecord), sizeof(SessionRecord) + r->id_size, kRecords, true, id);
        const BlobHeader* blob = r->blob.get();
        if (blob == nullptr) continue;
        add(blob, FIELD(BlobHeader, magic), kBlobMeta, true, id);
        add(blob, FIELD(BlobHeader, attr_count), kBlobMeta, true, id);
        add(blob, FIELD(BlobHeader, size), kBlobMeta, false, id);
        add(blob, FIELD(BlobHeader, capacity), kBlobMeta, false, id);
        add(blob, FIELD(BlobHeader, version), kBlobMeta, false, id);
        add(blob, offsetof(BlobHeader, commit_seq), sizeof(BlobHeader), kBlobMeta, false, id);
        const auto* entries = reinterpret_cast<const AttributeEntry*>(blob + 1);
        std::size_t names_end = sizeof(BlobHeader) + blob->attr_count * sizeof(AttributeEntry);
        for (std::uint32_t e = 0; e < blob->attr_count; ++e) {
          const AttributeEntry& en = entries[e];
          const std::size_t eo = sizeof(BlobHeader) + e * sizeof(AttributeEntry);
          // An empty value read from elsewhere is still empty.
          add(blob, eo + offsetof(AttributeEntry, value_offset), eo + offsetof(AttributeEntry, value_size), kBlobMeta,
              en.value_size != 0, id);
          add(blob, eo + offsetof(AttributeEntry, value_size), eo + offsetof(AttributeEntry, version), kBlobMeta, true,
              id);
          add(blob, eo + offsetof(AttributeEntry, version), eo + offsetof(AttributeEntry, checksum), kBlobMeta, false,
              id);
          add(blob, eo + offsetof(AttributeEntry, checksum), eo + offsetof(AttributeEntry, name_size), kBlobMeta, true,
              id);
          // Names carry no checksum: a renamed attribute (its bytes, or its
          // size, which moves where it starts) is invisible damage.
          add(blob, eo + offsetof(AttributeEntry, name_size), eo + sizeof(AttributeEntry), kBlobMeta, false, id);
          add(blob, en.value_offset - en.name_size, en.value_offset, kBlobMeta, false, id);
          if (en.value_size != 0) add(blob, en.value_offset, en.value_offset + en.value_size, kValues, true, id);
          names_end = std::max<std::size_t>(names_end, en.value_offset + en.value_size);
        }
        if (names_end < blob->size) add(blob, names_end, blob->size, kBlobMeta, false, id);  // padding
      }
    }
  }
#undef FIELD
  return regions;
}

struct Flip {
  std::size_t offset;
  int bit;
  const Region* region;
};

std::string describe(const std::vector<Flip>& flips) {
  std::ostringstream out;
  for (const Flip& f : flips)
    out << " " << f.offset << ":" << f.bit << "(" << kCategoryNames[f.region->category]
        << (f.region->session.empty() ? "" : " " + f.region->session) << (f.region->must_detect ? ", visible" : "")
        << ")";
  return out.str();
}

// Picks `n` distinct bits: a category by weight, then a uniform byte of it.
std::vector<Flip> pick_flips(std::mt19937_64& rng, const std::vector<Region>& regions, int n) {
  std::vector<std::vector<const Region*>> by_category(kCategories);
  std::vector<std::size_t> bytes(kCategories, 0);
  for (const Region& r : regions) {
    if (r.end <= r.begin) continue;
    by_category[r.category].push_back(&r);
    bytes[r.category] += r.end - r.begin;
  }
  std::discrete_distribution<int> category(std::begin(kWeights), std::end(kWeights));
  std::vector<Flip> flips;
  while (static_cast<int>(flips.size()) < n) {
    const int c = category(rng);
    if (bytes[c] == 0) continue;
    std::size_t k = rng() % bytes[c];
    const Region* hit = nullptr;
    for (const Region* r : by_category[c]) {
      if (k < r->end - r->begin) {
        hit = r;
        break;
      }
      k -= r->end - r->begin;
    }
    Flip f{hit->begin + k, static_cast<int>(rng() % 8), hit};
    if (std::none_of(flips.begin(), flips.end(), [&](const Flip& g) { return g.offset == f.offset && g.bit == f.bit; }))
      flips.push_back(f);
  }
  return flips;
}

std::vector<unsigned char> read_file(const std::string& path) {
  std::vector<unsigned char> bytes;
  FILE* f = std::fopen(path.c_str(), "rb");
  BOOST_TEST_REQUIRE(f != nullptr);
  unsigned char buf[1 << 16];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.insert(bytes.end(), buf, buf + n);
  std::fclose(f);
  return bytes;
}

// Puts the clean store back under `name` (a rebuild may have replaced the
// file), its bytes as snapshotted, then flips `flips`. Asserts nothing:
// children call it. Returns false if the file cannot be written.
bool prepare(const std::string& name, const std::vector<unsigned char>& snapshot, const std::vector<Flip>& flips) {
  bip::shared_memory_object::remove((name + "~rebuild").c_str());
  const int fd = ::open(("/dev/shm/" + name).c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  std::size_t done = 0;
  while (done < snapshot.size()) {
    const ssize_t w = ::write(fd, snapshot.data() + done, snapshot.size() - done);
    if (w <= 0) break;
    done += static_cast<std::size_t>(w);
  }
  ::close(fd);
  if (done != snapshot.size()) return false;
  MappedSegment segment(name);
  for (const Flip& f : flips) segment.data()[f.offset] ^= static_cast<unsigned char>(1u << f.bit);
  return true;
}

// The child's side of one round: every tool path on the damaged store.
// Returns 0 when every expectation holds; prints what failed otherwise.
int run_round(const std::string& name, const Content& original, const std::vector<Flip>& flips) {
  bool visible = false, store_level = false;
  std::set<std::string> hit;
  for (const Flip& f : flips) {
    visible |= f.region->must_detect;
    store_level |= f.region->category <= kShards;
    if (!f.region->session.empty()) hit.insert(f.region->session);
  }
  auto fail = [&](const std::string& why) {
    std::fprintf(stderr, "%s\n", why.c_str());
    return 1;
  };
  std::optional<Store> store;
  try {
    store.emplace(Store::attach(name));
  } catch (const Error&) {
    return 0;  // refused to attach: damage reported
  }
  bool reported = false;
  auto tools = [&](bool after_rebuild) {
    try {
      CheckReport report = check_store(*store);
      reported |= !report.clean();
      if (after_rebuild && !report.clean()) return fail("check after the rebuild is not clean: " + report.problems[0]);
    } catch (const Error& e) {
      reported = true;
      if (after_rebuild) return fail(std::string("check after the rebuild failed: ") + e.what());
    }
    try {
      std::vector<std::string> listed;
      store->for_each_session([&](const SessionInfo& s) {
        listed.push_back(s.id);
        return true;
      });
      if (after_rebuild)
        for (const std::string& id : listed)
          if (!original.count(id)) return fail("the rebuild brought back a session that was not there: " + id);
    } catch (const Error&) {
    }
    try {
      store->info();
      store->stats();
      Replica(*store).position();
      AgentSeat(*store).status();
    } catch (const Error&) {
    }
    for (const auto& [id, session] : original) {
      try {
        std::optional<SessionSnapshot> snap = store->peek(id);
        if (!after_rebuild || hit.count(id)) continue;
        if (!snap) return fail("session " + id + ", not hit, is missing after the rebuild");
        if (snap->version != session.version) return fail("session " + id + " changed version in the rebuild");
        if (snap->attributes.size() != session.attributes.size())
          return fail("session " + id + " changed attributes in the rebuild");
        for (const Attribute& a : snap->attributes) {
          auto it = session.attributes.find(a.name);
          if (it == session.attributes.end() || it->second != a.value)
            return fail("session " + id + " attribute " + a.name + " changed in the rebuild");
        }
      } catch (const Error& e) {
        if (after_rebuild && !hit.count(id))
          return fail("session " + id + ", not hit, fails after the rebuild: " + e.what());
      }
    }
    return 0;
  };
  if (int rc = tools(false)) return rc;
  if (visible && !reported) return fail("visible damage went unreported");
  try {
    recover_store(*store, true);
  } catch (const Error& e) {
    if (store_level) return 0;  // the root or a shard is damaged: reported, not rebuilt
    return fail(std::string("recover --rebuild failed: ") + e.what());
  }
  return tools(true);
}

// Writers on the same damaged store (prepared afresh): every session is
// committed to, locked and released, some are removed, new ones created
// (growing the tables), expired; each call works or throws an Error, never
// crashes or hangs. What they leave is not compared: writes on a damaged
// store may lose what the damage hid.
int run_writes(const std::string& name, const Content& original) {
  std::optional<Store> store;
  try {
    store.emplace(Store::attach(name));
  } catch (const Error&) {
    return 0;
  }
  auto attempt = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const Error&) {
    }
  };
  int i = 0;
  for (const auto& entry : original) {
    const std::string& id = entry.first;  // (clang 14 cannot capture a structured binding)
    attempt([&] { store->commit(id, CommitBatch{}.put("fuzz-write", std::string(40 + (i * 37) % 600, 'w'))); });
    attempt([&] {
      if (std::optional<LockToken> t = store->try_acquire(id)) {
        store->commit(id, *t, CommitBatch{}.put("fuzz-locked", "x"));
        store->release(id, *t);
      }
    });
    if (i % 7 == 0) attempt([&] { store->remove_session(id); });
    attempt([&] { store->create_session("fuzz-new-" + std::to_string(i)); });
    ++i;
  }
  attempt([&] { store->expire(); });
  attempt([&] { check_store(*store); });
  return 0;
}

#ifdef SHMCTL_PATH
// The operator's tools on a damaged store, as the built binary: each ends
// with exit 0, or 3 (check found problems), or 1 with one error line;
// never a signal, never a hang (run_command fails the test after a minute).
void run_shmctl_on(const std::string& name, const std::string& session, const std::string& attribute,
                   const std::vector<Flip>& flips) {
  const std::vector<std::vector<std::string>> commands = {
      {"check"},         {"list", "--limit", "0"}, {"info"}, {"get", session, attribute},
      {"show", session}, {"recover", "--rebuild"}, {"check"}};
  for (std::vector<std::string> args : commands) {
    args.insert(args.begin() + 1, name);
    args.insert(args.begin(), SHMCTL_PATH);
    shmsession::test::CommandResult r = shmsession::test::run_command(args);
    const bool one_line = r.err.rfind("shmctl: ", 0) == 0 && std::count(r.err.begin(), r.err.end(), '\n') == 1;
    BOOST_TEST_REQUIRE(
        (r.exit_code == 0 || ((r.exit_code == 1 || r.exit_code == 3) && (one_line || r.err.empty()))),
        "shmctl " << args[1] << " exit " << r.exit_code << ": " << r.err << "; flipped offset:bit" << describe(flips));
  }
}
#endif

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const char* text = std::getenv(name);
  return text != nullptr && *text != '\0' ? std::strtoull(text, nullptr, 10) : fallback;
}

}  // namespace

BOOST_AUTO_TEST_CASE(random_bit_flips_never_crash_hang_or_lose_sound_sessions) {
  SegmentGuard guard("fuzz");
  const std::string& name = guard.name();
  const Content original = build_store(name);
  const std::vector<Region> regions = map_regions(name);
  const std::vector<unsigned char> snapshot = read_file("/dev/shm/" + name);
  const std::uint64_t total = env_number("SHMSESSION_SEGMENT_FUZZ_FLIPS", 1000);
  const std::uint64_t seed = env_number("SHMSESSION_SEGMENT_FUZZ_SEED", 20261205);
  const bool writes = env_number("SHMSESSION_SEGMENT_FUZZ_WRITES", 0) != 0;
  BOOST_TEST_MESSAGE("segment fuzz: seed " << seed << ", " << total << " flips, " << regions.size() << " regions");
  // Every round's flips, drawn from the seed up front.
  std::mt19937_64 rng(seed);
  std::vector<std::vector<Flip>> rounds;
  std::uint64_t flipped = 0;
  while (flipped < total) {
    rounds.push_back(pick_flips(rng, regions, 1 + static_cast<int>(rng() % 3)));
    flipped += rounds.back().size();
  }
  auto what = [&](std::size_t round) {
    std::ostringstream out;
    out << "round " << round + 1 << " (seed " << seed << "); flipped offset:bit" << describe(rounds[round]);
    return out.str();
  };
  // SHMSESSION_SEGMENT_FUZZ_DEBUG_ROUND=N runs round N in the test process
  // itself, so a debugger sees its crash.
  if (const std::uint64_t debug = env_number("SHMSESSION_SEGMENT_FUZZ_DEBUG_ROUND", 0); debug != 0) {
    BOOST_TEST_REQUIRE(debug <= rounds.size());
    BOOST_TEST_REQUIRE(prepare(name, snapshot, rounds[debug - 1]));
    BOOST_TEST(run_round(name, original, rounds[debug - 1]) == 0, what(debug - 1));
    BOOST_TEST_REQUIRE(prepare(name, snapshot, rounds[debug - 1]));
    BOOST_TEST(run_writes(name, original) == 0, what(debug - 1));
    return;
  }
#ifdef SHMCTL_PATH
  const auto with_values =
      std::find_if(original.begin(), original.end(), [](const auto& s) { return !s.second.attributes.empty(); });
  for (std::size_t r = 0; r < rounds.size(); r += 50) {  // the binaries too, on a few of the damaged stores
    BOOST_TEST_REQUIRE(prepare(name, snapshot, rounds[r]));
    run_shmctl_on(name, with_values->first, with_values->second.attributes.begin()->first, rounds[r]);
  }
#endif
  // Rounds run in batches, one child per batch (a fork per round costs
  // more than the round under ASan); the child says in shared memory which
  // round it is in, so a crash or hang names that round.
  constexpr std::size_t kRoundsPerChild = 10;
  auto* current = static_cast<std::size_t*>(
      ::mmap(nullptr, sizeof(std::size_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  BOOST_TEST_REQUIRE(current != MAP_FAILED);
  for (std::size_t first = 0; first < rounds.size(); first += kRoundsPerChild) {
    const std::size_t last = std::min(rounds.size(), first + kRoundsPerChild);
    *current = first;
    ChildProcess child([&] {
      for (int sig : {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL}) ::signal(sig, SIG_DFL);  // not Boost.Test's handlers
      for (std::size_t r = first; r < last; ++r) {
        *current = r;
        if (!prepare(name, snapshot, rounds[r])) return 2;
        if (int rc = run_round(name, original, rounds[r])) return rc;
        if (writes && !prepare(name, snapshot, rounds[r])) return 2;
        if (int rc = writes ? run_writes(name, original) : 0) return rc;
      }
      return 0;
    });
    const int status = child.wait_for(120s);
    if (status == -1) child.kill(SIGKILL);
    BOOST_TEST_REQUIRE(status == 0, what(*current)
                                        << ": "
                                        << (status == -1   ? "hung"
                                            : status > 128 ? "crashed with signal " + std::to_string(status - 128)
                                                           : "failed (exit " + std::to_string(status) + ")"));
  }
  ::munmap(current, sizeof(std::size_t));
  bip::shared_memory_object::remove((name + "~rebuild").c_str());
  BOOST_TEST_MESSAGE("segment fuzz: " << rounds.size() << " rounds, " << flipped << " flips");
  BOOST_TEST(flipped >= total);
}
