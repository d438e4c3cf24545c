// Session deltas: frame round trips, make_delta/apply_delta, and refusal of
// truncated, damaged, forged and oversized frames.
#include <boost/test/unit_test.hpp>

#include <xxhash.h>

#include <functional>
#include <random>
#include <string>

#include "diff/binary_diff.hpp"
#include "diff/delta.hpp"
#include "diff/delta_format.hpp"
#include "diff/detail/byte_io.hpp"
#include "diff/error.hpp"
#include "test/diff/allocation_probe.hpp"

#include "test/support/test_support.hpp"

using shmsession::test::throws;

using namespace shmsession;
using namespace shmsession::diff;
using shmsession::diff::detail::ByteWriter;
using Kind = AttributeChange::Kind;

namespace {

// The message of what `f` throws of diff/'s own exceptions.
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const CorruptInput& e) {
    return e.what();
  } catch (const RefusedInput& e) {
    return e.what();
  }
  BOOST_FAIL("no diff exception thrown");
  return {};
}

bool message_has(const std::function<void()>& f, const std::string& text) {
  const std::string what = error_of(f);
  BOOST_TEST_MESSAGE("error: " << what);
  return what.find(text) != std::string::npos;
}

AttributeChange put(std::string name, std::string value, std::uint32_t flags = 0) {
  const std::uint64_t sum = value_checksum(value);
  return AttributeChange{std::move(name), Kind::Put, std::move(value), flags, sum};
}

SessionDelta sample_delta() {
  SessionDelta d{"session-42", 7, 8, {}};
  d.changes.push_back(put("cart", std::string(3000, 'c'), 1));
  std::string base(5000, 'p');
  std::string target = base;
  target.insert(100, "new");
  d.changes.push_back(AttributeChange{"profile", Kind::Patch, make_patch(base, target), 0, value_checksum(target)});
  d.changes.push_back(AttributeChange{"stale", Kind::Remove, "", 0, 0});
  d.changes.push_back(put(std::string("bin\0name", 8), std::string("\0\xff\x01", 3)));
  return d;
}

// A frame around `body` (the bytes after the 16-byte header), with a correct
// length and checksum: lets a test forge any field past the checksum.
std::string frame(const std::string& body, std::uint32_t magic = kDeltaMagic,
                  std::uint16_t version = kDeltaFormatVersion) {
  std::string out;
  ByteWriter writer(out);
  writer.u32(magic);
  writer.u16(version);
  writer.u16(0);
  writer.u64(kDeltaHeaderBytes + body.size() + kDeltaChecksumBytes);
  writer.bytes(body);
  writer.u64(XXH3_64bits(out.data(), out.size()));
  return out;
}

// The body of a delta for session "s" with the given change count, then `rest`.
std::string body(std::uint64_t count, const std::string& rest) {
  std::string out;
  ByteWriter writer(out);
  writer.sized_bytes("s");
  writer.u64(1);
  writer.u64(2);
  writer.varint(count);
  writer.bytes(rest);
  return out;
}

std::string change(const std::string& name, Kind kind, const std::string& value, std::uint32_t flags = 0,
                   std::uint64_t checksum = 0) {
  std::string out;
  ByteWriter writer(out);
  writer.sized_bytes(name);
  writer.u8(static_cast<std::uint8_t>(kind));
  writer.u32(flags);
  writer.u64(checksum);
  writer.sized_bytes(value);
  return out;
}

AttributeMap random_attributes(std::mt19937_64& rng, int count) {
  AttributeMap attrs;
  for (int i = 0; i < count; ++i) {
    std::string value;
    const std::size_t size = rng() % 3 == 0 ? rng() % 40 : 1000 + rng() % 20000;
    while (value.size() < size) value += "field" + std::to_string(rng() % 100) + ";";
    attrs["attr" + std::to_string(i)] = {value, static_cast<std::uint32_t>(rng() % 2)};
  }
  return attrs;
}

AttributeMap mutated(std::mt19937_64& rng, AttributeMap attrs) {
  for (auto it = attrs.begin(); it != attrs.end();) {
    const auto roll = rng() % 6;
    if (roll == 0) {
      it = attrs.erase(it);
      continue;
    }
    std::string& value = it->second.first;
    if (roll == 1 && !value.empty()) value[rng() % value.size()] ^= 1;
    if (roll == 2) value.insert(rng() % (value.size() + 1), "grown");
    if (roll == 3) it->second.second ^= 4;
    ++it;
  }
  attrs["added" + std::to_string(rng() % 1000)] = {"brand new", 2};
  return attrs;
}

}  // namespace

BOOST_AUTO_TEST_CASE(value_checksum_is_xxh3_64) {
  BOOST_TEST(value_checksum("") == 0x2D06800538D394C2ULL);
  BOOST_TEST(value_checksum("cart") == XXH3_64bits("cart", 4));
}

BOOST_AUTO_TEST_CASE(encode_decode_round_trip) {
  SessionDelta d = sample_delta();
  const std::string bytes = encode_delta(d);
  std::sort(d.changes.begin(), d.changes.end(), [](auto& a, auto& b) { return a.name < b.name; });
  BOOST_TEST((decode_delta(bytes) == d));
  BOOST_TEST(encode_delta(decode_delta(bytes)) == bytes);
  const SessionDelta empty{"only-versions", 1, 2, {}};
  BOOST_TEST((decode_delta(encode_delta(empty)) == empty));
}

BOOST_AUTO_TEST_CASE(encode_refuses_deltas_the_peer_would_refuse) {
  SessionDelta d = sample_delta();
  d.changes.push_back(d.changes.front());
  BOOST_TEST(throws<RefusedInput>([&] { encode_delta(d); }));
  d = sample_delta();
  d.changes.push_back(AttributeChange{"gone", Kind::Remove, "x", 0, 0});
  BOOST_TEST(throws<RefusedInput>([&] { encode_delta(d); }));
  d = sample_delta();
  d.session_id.clear();
  BOOST_TEST(throws<RefusedInput>([&] { encode_delta(d); }));
  d = sample_delta();
  d.changes[0].kind = static_cast<Kind>(9);
  BOOST_TEST(throws<RefusedInput>([&] { encode_delta(d); }));
  DeltaLimits small;
  small.max_value_bytes = 100;
  BOOST_TEST(throws<RefusedInput>([&] { encode_delta(sample_delta(), small); }));
}

BOOST_AUTO_TEST_CASE(make_delta_then_apply_delta_round_trip) {
  for (int seed = 0; seed < 20; ++seed) {
    std::mt19937_64 rng(static_cast<std::uint64_t>(seed));
    const AttributeMap base = random_attributes(rng, 1 + seed % 12);
    const AttributeMap target = mutated(rng, base);
    const SessionDelta d = make_delta("s1", 3, 4, base, target);
    AttributeMap attrs = base;
    apply_delta(attrs, decode_delta(encode_delta(d)));
    BOOST_TEST_REQUIRE((attrs == target), "seed " << seed);
  }
}

BOOST_AUTO_TEST_CASE(make_delta_omits_unchanged_and_patches_only_when_smaller) {
  AttributeMap base{{"big", {std::string(100000, 'b'), 0}},
                    {"same", {"s", 1}},
                    {"small", {"ab", 0}},
                    {"flagged", {"f", 0}},
                    {"old", {"o", 0}}};
  AttributeMap target = base;
  target["big"].first[5000] = 'X';
  target["small"].first = "cd";
  target["flagged"].second = 9;
  target.erase("old");
  const SessionDelta d = make_delta("s1", 1, 2, base, target);
  BOOST_REQUIRE(d.changes.size() == 4u);
  BOOST_TEST(d.changes[0].name == "big");
  BOOST_TEST((d.changes[0].kind == Kind::Patch));
  BOOST_TEST(d.changes[0].bytes.size() < 20u);
  BOOST_TEST((d.changes[1].kind == Kind::Put));  // "flagged": value unchanged, flags changed, 1 byte
  BOOST_TEST(d.changes[1].flags == 9u);
  BOOST_TEST((d.changes[2].kind == Kind::Remove));
  BOOST_TEST(d.changes[2].name == "old");
  BOOST_TEST((d.changes[3].kind == Kind::Put));
  BOOST_TEST(d.changes[3].checksum == value_checksum("cd"));
}

BOOST_AUTO_TEST_CASE(every_truncation_is_refused) {
  const std::string bytes = encode_delta(sample_delta());
  for (std::size_t cut = 0; cut < bytes.size(); ++cut)
    BOOST_TEST(throws<CorruptInput>([&] { decode_delta(bytes.substr(0, cut)); }), "cut at " << cut);
  BOOST_TEST(message_has([&] { decode_delta(bytes.substr(0, bytes.size() - 1)); }, "truncated"));
  BOOST_TEST(message_has([&] { decode_delta(bytes + "x"); }, "follow the frame"));
}

BOOST_AUTO_TEST_CASE(every_bit_flip_is_refused) {
  const std::string bytes = encode_delta(sample_delta());
  for (std::size_t bit = 0; bit < bytes.size() * 8; ++bit) {
    std::string damaged = bytes;
    damaged[bit / 8] = static_cast<char>(damaged[bit / 8] ^ (1 << (bit % 8)));
    BOOST_TEST(throws<CorruptInput>([&] { decode_delta(damaged); }), "bit " << bit);
  }
  std::string damaged = bytes;
  damaged[40] ^= 1;
  BOOST_TEST(message_has([&] { decode_delta(damaged); }, "checksum"));
}

BOOST_AUTO_TEST_CASE(wrong_magic_version_or_reserved_bits_are_refused) {
  const std::string good = frame(body(0, ""));
  BOOST_TEST(decode_delta(good).session_id == "s");
  BOOST_TEST(message_has([&] { decode_delta(frame(body(0, ""), 0x12345678)); }, "bad magic"));
  BOOST_TEST(message_has([&] { decode_delta(frame(body(0, ""), kDeltaMagic, 2)); }, "format version 2"));
  std::string reserved = good;
  reserved[6] = 1;
  BOOST_TEST(message_has([&] { decode_delta(reserved); }, "reserved"));
}

BOOST_AUTO_TEST_CASE(lengths_past_the_end_or_over_caps_are_refused) {
  const std::string ok = change("a", Kind::Put, "value", 0, value_checksum("value"));
  BOOST_TEST(decode_delta(frame(body(1, ok))).changes.size() == 1u);
  // A value length pointing past the end of the frame.
  std::string past = ok.substr(0, ok.size() - 6) + '\x40' + "value";
  BOOST_TEST(message_has([&] { decode_delta(frame(body(1, past))); }, "truncated value"));
  // More changes declared than present, or than the bytes could hold.
  const std::string cut = change("b", Kind::Put, "y").substr(0, 15);
  BOOST_TEST(message_has([&] { decode_delta(frame(body(2, ok + cut))); }, "truncated value length"));
  BOOST_TEST(message_has([&] { decode_delta(frame(body(2, ok))); }, "cannot fit"));
  BOOST_TEST(message_has([&] { decode_delta(frame(body(1000, ok))); }, "cannot fit"));
  // Caps of the limits.
  DeltaLimits limits;
  limits.max_value_bytes = 4;
  BOOST_TEST(message_has([&] { decode_delta(frame(body(1, ok)), limits); }, "exceeds the limit of 4"));
  limits = {};
  limits.max_changes = 0;
  BOOST_TEST(message_has([&] { decode_delta(frame(body(1, ok)), limits); }, "change count 1 exceeds"));
  limits = {};
  limits.max_name_bytes = 0;
  BOOST_TEST(message_has([&] { decode_delta(frame(body(1, ok)), limits); }, "attribute name length"));
  limits = {};
  limits.max_frame_bytes = 30;
  BOOST_TEST(message_has([&] { decode_delta(frame(body(1, ok)), limits); }, "frame length"));
}

BOOST_AUTO_TEST_CASE(huge_declared_lengths_allocate_nothing_big) {
  std::string huge_value;
  ByteWriter writer(huge_value);
  writer.sized_bytes("a");
  writer.u8(1);
  writer.u32(0);
  writer.u64(0);
  writer.varint(std::uint64_t{60} << 20);  // under the 64 MiB cap, but absent
  writer.bytes("tiny");
  std::string huge_frame = frame(body(0, ""));
  huge_frame.replace(8, 8, std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8));
  shmsession::test::AllocationProbe probe;
  BOOST_TEST(throws<CorruptInput>([&] { decode_delta(frame(body(1, huge_value))); }));
  BOOST_TEST(throws<CorruptInput>([&] { decode_delta(frame(body(65535, ""))); }));
  BOOST_TEST(message_has([&] { decode_delta(huge_frame); }, "exceeds the limit"));
  BOOST_TEST(probe.largest() < (std::size_t{1} << 16), "largest allocation " << probe.largest());
}

BOOST_AUTO_TEST_CASE(fields_breaking_the_format_are_refused) {
  const std::string a = change("a", Kind::Put, "x", 0, value_checksum("x"));
  const std::string b = change("b", Kind::Put, "y", 0, value_checksum("y"));
  BOOST_TEST(message_has([&] { decode_delta(frame(body(2, b + a))); }, "not sorted"));
  BOOST_TEST(message_has([&] { decode_delta(frame(body(2, a + a))); }, "not sorted"));
  BOOST_TEST(message_has([&] { decode_delta(frame(body(1, change("a", static_cast<Kind>(4), "")))); }, "kind 4"));
  BOOST_TEST(message_has([&] { decode_delta(frame(body(1, change("a", Kind::Remove, "x")))); }, "removal"));
  BOOST_TEST(message_has([&] { decode_delta(frame(body(1, change("", Kind::Put, "x")))); }, "empty attribute"));
  BOOST_TEST(message_has([&] { decode_delta(frame(body(1, a + "zz"))); }, "follow the last change"));
  BOOST_TEST(message_has([&] { decode_delta(frame(std::string(1, '\0') + body(0, "").substr(2))); }, "empty session"));
  std::string overlong = body(0, "");
  overlong.back() = '\x80';
  overlong += '\0';
  BOOST_TEST(message_has([&] { decode_delta(frame(overlong)); }, "not minimal"));
}

BOOST_AUTO_TEST_CASE(failed_apply_leaves_attributes_unchanged) {
  const AttributeMap base{{"a", {"alpha", 0}}, {"b", {std::string(10000, 'b'), 1}}, {"c", {"gamma", 0}}};
  AttributeMap target = base;
  target.erase("a");
  target["b"].first.insert(5000, "more");
  target["d"] = {"delta", 3};
  const SessionDelta good = make_delta("s", 1, 2, base, target);

  SessionDelta bad_put = good;
  bad_put.changes.back().checksum ^= 1;  // "d", applied after the removal and the patch
  AttributeMap attrs = base;
  BOOST_TEST(message_has([&] { apply_delta(attrs, bad_put); }, "checksum mismatch"));
  BOOST_TEST((attrs == base));

  AttributeMap other_base = base;
  other_base["b"].first[0] = 'X';  // not the benchmark the patch was made against
  const AttributeMap before = other_base;
  BOOST_TEST(throws<CorruptInput>([&] { apply_delta(other_base, good); }));
  BOOST_TEST((other_base == before));

  AttributeMap missing = base;
  missing.erase("a");
  const AttributeMap missing_before = missing;
  BOOST_TEST(message_has([&] { apply_delta(missing, good); }, "removal of an attribute"));
  BOOST_TEST((missing == missing_before));

  SessionDelta twice = good;
  twice.changes.push_back(twice.changes.back());
  BOOST_TEST(throws<RefusedInput>([&] { apply_delta(attrs, twice); }));
  BOOST_TEST((attrs == base));

  apply_delta(attrs, good);
  BOOST_TEST((attrs == target));
}

BOOST_AUTO_TEST_CASE(apply_respects_the_value_cap) {
  const AttributeMap base{{"v", {std::string(1000, 'v'), 0}}};
  AttributeMap target = base;
  target["v"].first.append(1000, 'w');
  const SessionDelta d = make_delta("s", 1, 2, base, target);
  DeltaLimits limits;
  limits.max_value_bytes = 1500;
  AttributeMap attrs = base;
  BOOST_TEST(throws<CorruptInput>([&] { apply_delta(attrs, d, limits); }));
  BOOST_TEST((attrs == base));
}
