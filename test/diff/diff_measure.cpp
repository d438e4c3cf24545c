// diff_measure: patch sizes and diff speed on serialized-record values.
// Not a test (figures are not asserted); prints one line per scenario:
//   diff_measure [--quick]
// Columns: patch bytes and method, make_patch and apply_patch throughput
// (MB of target per second), and the same for plain zstd of the whole target
// with the whole base as prefix (ZSTD_CCtx_refPrefix, level 3).
// Scenarios edit a value of packed records (id, name, qty, price, note), the
// shape of a serialized cart.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "diff/binary_diff.hpp"
#include "diff/detail/compare.hpp"
#include "diff/detail/zstd_codec.hpp"

using namespace shmsession::diff;

namespace {

std::string word(std::mt19937_64& rng) {
  static const char* const kWords[] = {"alpha",  "basket",  "cobalt", "delta", "ember",  "falcon", "garnet", "harbor",
                                       "indigo", "juniper", "kettle", "lumen", "meadow", "nickel", "orchid", "pepper"};
  return kWords[rng() % 16];
}

void append_record(std::string& out, std::mt19937_64& rng, std::uint32_t id) {
  const auto put = [&out](const void* p, std::size_t n) { out.append(static_cast<const char*>(p), n); };
  put(&id, 4);
  const std::string name = word(rng) + "-" + word(rng) + "-" + std::to_string(rng() % 1000);
  const auto name_size = static_cast<std::uint16_t>(name.size());
  put(&name_size, 2);
  out += name;
  const auto qty = static_cast<std::uint16_t>(rng() % 10);
  put(&qty, 2);
  const double price = static_cast<double>(rng() % 100000) / 100.0;
  put(&price, 8);
  out += "note:" + word(rng) + ";";
}

struct Value {
  std::string bytes;
  std::vector<std::size_t> qty_offsets;   // offset of each record's qty field
  std::vector<std::size_t> name_offsets;  // offset of each record's name bytes
};

Value make_value(std::size_t size, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  Value v;
  for (std::uint32_t id = 1; v.bytes.size() < size; ++id) {
    v.name_offsets.push_back(v.bytes.size() + 6);
    append_record(v.bytes, rng, id);
    std::uint16_t name_size = 0;
    std::memcpy(&name_size, v.bytes.data() + v.name_offsets.back() - 2, 2);
    v.qty_offsets.push_back(v.name_offsets.back() + name_size);
  }
  return v;
}

double seconds_per_call(const std::function<void()>& f, double budget) {
  const auto start = std::chrono::steady_clock::now();
  int calls = 0;
  double elapsed = 0;
  do {
    f();
    ++calls;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (elapsed < budget);
  return elapsed / calls;
}

void report(const char* scenario, const std::string& base, const std::string& target, double budget) {
  std::string patch = make_patch(base, target);
  if (apply_patch(base, patch) != target) std::printf("ROUND TRIP FAILED: %s\n", scenario);
  const double make_s = seconds_per_call([&] { patch = make_patch(base, target); }, budget);
  const double apply_s = seconds_per_call([&] { (void)apply_patch(base, patch); }, budget);
  std::string plain;
  shmsession::diff::detail::compress_frame(base, target, 3, ~std::size_t{0}, plain);
  const double plain_s = seconds_per_call(
      [&] {
        plain.clear();
        shmsession::diff::detail::compress_frame(base, target, 3, ~std::size_t{0}, plain);
      },
      budget);
  const double mb = static_cast<double>(target.size()) / 1e6;
  std::printf("%-40s %9zu %-15s %8zu %9.0f %9.0f | %8zu %9.0f\n", scenario, target.size(),
              std::string(patch_method_name(patch_method(patch))).c_str(), patch.size(), mb / make_s, mb / apply_s,
              plain.size(), mb / plain_s);
}

// A string field one byte longer, its length prefix updated as a
// serializer would.
std::string grow_name(const Value& v, std::size_t record) {
  std::string out = v.bytes;
  const std::size_t at = v.name_offsets[record];
  out.insert(at, 1, 'x');
  std::uint16_t size = 0;
  std::memcpy(&size, out.data() + at - 2, 2);
  ++size;
  std::memcpy(out.data() + at - 2, &size, 2);
  return out;
}

void run_scenarios(std::size_t size, double budget) {
  const Value v = make_value(size, 42);
  const std::string& base = v.bytes;
  std::mt19937_64 rng(7);
  const std::string tag = " (" + std::to_string(size >> 10) + " KiB)";

  std::string one_field = base;
  one_field[v.qty_offsets[v.qty_offsets.size() / 2]] ^= 0x05;
  report(("one field changed" + tag).c_str(), base, one_field, budget);
  report(("string grown by one byte" + tag).c_str(), base, grow_name(v, v.name_offsets.size() / 2), budget);

  std::string scattered = base;
  for (int i = 0; i < 100; ++i) scattered[v.qty_offsets[rng() % v.qty_offsets.size()]] ^= 0x03;
  report(("100 scattered edits" + tag).c_str(), base, scattered, budget);

  std::string shifted = base;
  for (std::size_t i = 0; i < 100; ++i) {
    const std::size_t at = v.name_offsets[v.name_offsets.size() - 1 - i * v.name_offsets.size() / 100];
    if (i % 2 == 0) {
      shifted.insert(at, "zz");
    } else {
      shifted.erase(at, 1);
    }
  }
  report(("100 scattered inserts/deletes" + tag).c_str(), base, shifted, budget);

  std::string appended = base;
  append_record(appended, rng, 999999);
  report(("one record appended" + tag).c_str(), base, appended, budget);
  report(("unrelated value" + tag).c_str(), base, make_value(size, 99).bytes, budget);
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  std::printf("%-40s %9s %-15s %8s %9s %9s | %8s %9s\n", "scenario", "bytes", "method", "patch B", "diff MB/s",
              "apply MB/s", "zstd-pfx", "MB/s");
  for (std::size_t size : {std::size_t{4} << 10, std::size_t{64} << 10, std::size_t{1} << 20})
    run_scenarios(size, quick ? 0.05 : 0.5);
  return 0;
}
