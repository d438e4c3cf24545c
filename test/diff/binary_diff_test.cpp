// Binary patches: round trips over random edits, the choice of method, and
// refusal of malformed or hostile patches.
#include <boost/test/unit_test.hpp>

#include <functional>
#include <random>
#include <string>

#include "diff/binary_diff.hpp"
#include "diff/detail/byte_io.hpp"
#include "diff/error.hpp"
#include "test/diff/allocation_probe.hpp"

#include "test/support/test_support.hpp"

using shmsession::test::throws;

using namespace shmsession;
using namespace shmsession::diff;

namespace {

std::string random_bytes(std::mt19937_64& rng, std::size_t size) {
  std::string out(size, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

// Half random bytes, half repeated text, so both Runs and zstd paths matter.
std::string make_base(std::mt19937_64& rng, std::size_t size) {
  std::string out;
  while (out.size() < size) {
    if (rng() % 2 == 0) {
      out += random_bytes(rng, 1 + rng() % 200);
    } else {
      out += "item{id=" + std::to_string(rng() % 1000) + ",qty=" + std::to_string(rng() % 10) + "};";
    }
  }
  out.resize(size);
  return out;
}

enum class Edit { Overwrite, Insert, Delete, Mixed };

std::string edited(std::mt19937_64& rng, std::string value, Edit kind) {
  const int edits = 1 + static_cast<int>(rng() % 8);
  for (int i = 0; i < edits; ++i) {
    Edit op = kind == Edit::Mixed ? static_cast<Edit>(rng() % 3) : kind;
    const std::size_t at = value.empty() ? 0 : rng() % (value.size() + 1);
    const std::size_t span = 1 + rng() % 64;
    if (op == Edit::Overwrite) {
      for (std::size_t j = at; j < std::min(value.size(), at + span); ++j) value[j] = static_cast<char>(rng());
    } else if (op == Edit::Insert) {
      value.insert(at, random_bytes(rng, span));
    } else {
      value.erase(std::min(at, value.size()), span);
    }
  }
  return value;
}

std::size_t whole_raw_size(std::size_t value_size) {
  return 1 + shmsession::diff::detail::varint_size(value_size) + value_size;
}

void check_round_trip(const std::string& base, const std::string& target) {
  const std::string patch = make_patch(base, target);
  BOOST_TEST_REQUIRE((apply_patch(base, patch) == target),
                     "round trip failed: base " << base.size() << " B, target " << target.size() << " B");
  BOOST_TEST(patch.size() <= whole_raw_size(target.size()));
  if (patch_method(patch) == PatchMethod::Runs) BOOST_TEST(base.size() == target.size());
}

std::string patch_header(PatchMethod method, std::uint64_t size) {
  std::string out;
  shmsession::diff::detail::ByteWriter writer(out);
  writer.u8(static_cast<std::uint8_t>(method));
  writer.varint(size);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(round_trip_over_random_edits_inserts_and_deletes) {
  for (const std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{100}, std::size_t{4} << 10,
                                 std::size_t{64} << 10, std::size_t{1} << 20}) {
    const int seeds = size >= (std::size_t{1} << 20) ? 2 : 8;
    for (int seed = 0; seed < seeds; ++seed) {
      for (const Edit kind : {Edit::Overwrite, Edit::Insert, Edit::Delete, Edit::Mixed}) {
        std::mt19937_64 rng(size * 131 + static_cast<std::size_t>(seed) * 7 + static_cast<std::size_t>(kind));
        const std::string base = make_base(rng, size);
        const std::string target = edited(rng, base, kind);
        BOOST_TEST_CONTEXT("size " << size << " seed " << seed << " edit " << static_cast<int>(kind)) {
          check_round_trip(base, target);
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(round_trip_edge_cases) {
  std::mt19937_64 rng(11);
  const std::string value = make_base(rng, 5000);
  check_round_trip("", "");
  check_round_trip("", value);
  check_round_trip(value, "");
  check_round_trip(value, value);
  check_round_trip(value, value + value);
  check_round_trip(value.substr(0, 10), value);
  const std::string deleted = value.substr(0, 2000) + value.substr(2100);
  BOOST_TEST((patch_method(make_patch(value, deleted)) == PatchMethod::ZstdPrefix));  // an empty zstd frame
  check_round_trip(value, deleted);
  check_round_trip(std::string(70000, 'a'), std::string(300000, 'a'));
  // A base that starts like a zstd dictionary must still be used as raw bytes.
  const std::string dict_like = std::string("\x37\xA4\x30\xEC", 4) + value;
  check_round_trip(dict_like, dict_like.substr(0, 2000) + "inserted" + dict_like.substr(2000));
}

BOOST_AUTO_TEST_CASE(identical_values_give_a_tiny_patch) {
  std::mt19937_64 rng(3);
  const std::string value = random_bytes(rng, std::size_t{1} << 20);
  const std::string patch = make_patch(value, value);
  BOOST_TEST((patch_method(patch) == PatchMethod::Runs));
  BOOST_TEST(patch.size() <= 4u);
}

BOOST_AUTO_TEST_CASE(equal_length_single_byte_change_is_runs_and_tiny) {
  std::mt19937_64 rng(4);
  const std::string base = random_bytes(rng, std::size_t{64} << 10);
  std::string target = base;
  target[40000] = static_cast<char>(target[40000] ^ 0x5a);
  const std::string patch = make_patch(base, target);
  BOOST_TEST((patch_method(patch) == PatchMethod::Runs));
  BOOST_TEST(patch.size() <= 12u, "patch is " << patch.size() << " bytes");
  BOOST_TEST(apply_patch(base, patch) == target);
}

BOOST_AUTO_TEST_CASE(one_byte_inserted_is_zstd_prefix_and_tiny) {
  std::mt19937_64 rng(5);
  const std::string base = random_bytes(rng, std::size_t{64} << 10);
  std::string target = base;
  target.insert(30000, 1, 'x');
  const std::string patch = make_patch(base, target);
  BOOST_TEST((patch_method(patch) == PatchMethod::ZstdPrefix));
  BOOST_TEST(patch.size() <= 40u, "patch is " << patch.size() << " bytes");
  BOOST_TEST(apply_patch(base, patch) == target);
}

BOOST_AUTO_TEST_CASE(one_field_in_a_large_value_stays_small_when_it_grows) {
  std::mt19937_64 rng(6);
  const std::string base = make_base(rng, std::size_t{1} << 20);
  std::string target = base;
  target.insert(700000, "longer");
  const std::string patch = make_patch(base, target);
  BOOST_TEST(patch.size() <= 48u, "patch is " << patch.size() << " bytes");
  BOOST_TEST(apply_patch(base, patch) == target);
}

BOOST_AUTO_TEST_CASE(unrelated_data_is_sent_whole) {
  std::mt19937_64 rng(7);
  const std::string base = random_bytes(rng, std::size_t{64} << 10);
  const std::string random_target = random_bytes(rng, std::size_t{64} << 10);
  const std::string patch = make_patch(base, random_target);
  BOOST_TEST((patch_method(patch) == PatchMethod::WholeRaw));
  BOOST_TEST(patch.size() == whole_raw_size(random_target.size()));

  const std::string text_target(std::size_t{50} << 10, 'z');
  const std::string compressed = make_patch("", text_target);
  BOOST_TEST((patch_method(compressed) == PatchMethod::WholeCompressed));
  BOOST_TEST(compressed.size() < 100u);
  BOOST_TEST(apply_patch("", compressed) == text_target);
  const std::string against_base = make_patch(base, text_target);
  BOOST_TEST(against_base.size() < 100u);
  BOOST_TEST(apply_patch(base, against_base) == text_target);
}

BOOST_AUTO_TEST_CASE(malformed_patches_are_refused_as_corrupt) {
  const std::string base(1000, 'b');
  BOOST_TEST(throws<CorruptInput>([&] { apply_patch(base, ""); }));
  BOOST_TEST(throws<CorruptInput>([&] { apply_patch(base, std::string(1, '\x09')); }));
  BOOST_TEST(throws<CorruptInput>([&] { patch_method(std::string(1, '\0')); }));
  // Runs for a base of another size; a run past the end; an empty run.
  BOOST_TEST(throws<CorruptInput>([&] { apply_patch(base, patch_header(PatchMethod::Runs, 999)); }));
  BOOST_TEST(
      throws<CorruptInput>([&] { apply_patch(base, patch_header(PatchMethod::Runs, 1000) + "\xe6\x07\x05zzzzz"); }));
  BOOST_TEST(throws<CorruptInput>(
      [&] { apply_patch(base, patch_header(PatchMethod::Runs, 1000) + std::string("\x01\x00", 2)); }));
  // A non-minimal varint.
  BOOST_TEST(throws<CorruptInput>([&] { apply_patch(base, std::string("\x04\x80\x00", 3)); }));
  // WholeRaw with a missing or an extra byte.
  BOOST_TEST(throws<CorruptInput>([&] { apply_patch(base, patch_header(PatchMethod::WholeRaw, 3) + "ab"); }));
  BOOST_TEST(throws<CorruptInput>([&] { apply_patch(base, patch_header(PatchMethod::WholeRaw, 3) + "abcd"); }));
}

BOOST_AUTO_TEST_CASE(zstd_patches_for_another_base_or_damaged_are_refused) {
  std::mt19937_64 rng(8);
  const std::string base = make_base(rng, 20000);
  std::string target = base;
  target.insert(10000, "inserted");
  const std::string patch = make_patch(base, target);
  BOOST_REQUIRE((patch_method(patch) == PatchMethod::ZstdPrefix));
  BOOST_TEST(throws<CorruptInput>([&] { apply_patch(base.substr(1), patch); }));
  BOOST_TEST(throws<CorruptInput>([&] { apply_patch(base, patch + "x"); }));
  // Every truncation of a zstd patch is refused: the frame or its header is cut.
  for (std::size_t cut = 0; cut < patch.size(); ++cut)
    BOOST_TEST(throws<CorruptInput>([&] { apply_patch(base, patch.substr(0, cut)); }), "cut at " << cut);
  const std::string whole = make_patch("", std::string(5000, 'q'));
  BOOST_REQUIRE((patch_method(whole) == PatchMethod::WholeCompressed));
  for (std::size_t cut = 0; cut < whole.size(); ++cut)
    BOOST_TEST(throws<CorruptInput>([&] { apply_patch("", whole.substr(0, cut)); }), "cut at " << cut);
}

BOOST_AUTO_TEST_CASE(damaged_patches_never_crash) {
  // Runs patches cut at a run boundary are still well-formed (the delta's
  // value checksum catches those); any other damage must be a CorruptInput.
  std::mt19937_64 rng(9);
  const std::string base = make_base(rng, 3000);
  for (const Edit kind : {Edit::Overwrite, Edit::Mixed}) {
    const std::string patch = make_patch(base, edited(rng, base, kind));
    for (std::size_t i = 0; i < patch.size() * 8; ++i) {
      std::string damaged = patch;
      damaged[i / 8] = static_cast<char>(damaged[i / 8] ^ (1 << (i % 8)));
      try {
        (void)apply_patch(base, damaged, 1 << 20);
      } catch (const CorruptInput&) {
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(results_over_the_cap_are_refused_before_allocating) {
  const std::string value(1000, 'v');
  BOOST_TEST(throws<CorruptInput>([&] { apply_patch("", make_patch("", value), 999); }));
  BOOST_TEST(apply_patch("", make_patch("", value), 1000) == value);
  // A tiny zstd patch claiming 60 MiB (under the default cap): the frame
  // cannot hold that much, so nothing near that size is allocated.
  std::string lying = patch_header(PatchMethod::WholeCompressed, std::uint64_t{60} << 20);
  const std::string frame_patch = make_patch("", std::string(5000, 'q'));
  BOOST_REQUIRE((patch_method(frame_patch) == PatchMethod::WholeCompressed));
  lying += frame_patch.substr(3);  // method byte + 2-byte size varint
  shmsession::test::AllocationProbe probe;
  BOOST_TEST(throws<CorruptInput>([&] { apply_patch("", lying); }));
  const std::string raw = patch_header(PatchMethod::WholeRaw, std::uint64_t{1} << 40) + "x";
  BOOST_TEST(throws<CorruptInput>([&] { apply_patch("", raw, ~std::size_t{0}); }));
  BOOST_TEST(probe.largest() < (std::size_t{1} << 16));
}
