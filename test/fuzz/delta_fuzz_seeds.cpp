// delta_fuzz_seeds DIR: writes the seed corpus of delta_fuzz into DIR (which
// it empties first): valid frames, their bodies, patches of every method and
// diff pairs, all made by the current encoder so the seeds never go stale.
// Built with the project's compiler; run by CTest before delta_fuzz_smoke.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "diff/binary_diff.hpp"
#include "diff/delta.hpp"
#include "diff/delta_format.hpp"
#include "test/fuzz/delta_fuzz_input.hpp"

namespace {

using namespace shmsession;
using shmsession::fuzz::Mode;

struct Seeds {
  std::filesystem::path dir;
  int count = 0;

  void write(Mode mode, const std::string& payload) {
    const std::filesystem::path file = dir / ("seed-" + std::to_string(count++));
    std::ofstream out(file, std::ios::binary);
    out.put(static_cast<char>(mode));
    out.write(payload.data(), static_cast<std::streamsize>(payload.size()));
    if (!out) throw std::runtime_error("cannot write " + file.string());
  }
};

// Targets reached from fixed_base() by puts, every patch method and removals.
std::vector<diff::AttributeMap> targets() {
  const diff::AttributeMap base = fuzz::fixed_base();
  std::vector<diff::AttributeMap> out(6, base);
  out[0]["cart"].first[10] = '9';                                  // Runs
  out[1]["cart"].first.insert(100, "item{id=77,qty=1};");          // ZstdPrefix
  out[2]["cart"].first = std::string(3000, 'c');                   // WholeCompressed
  out[3]["token"].first = "\x01\x02\x03\x04\x05\x06\x07\x08\x09";  // WholeRaw or Put
  out[4].erase("profile");
  out[4]["new"] = {"fresh value", 2};
  out[5]["profile"].second = 5;
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: delta_fuzz_seeds DIR\n");
    return 2;
  }
  try {
    Seeds seeds{argv[1]};
    std::filesystem::remove_all(seeds.dir);
    std::filesystem::create_directories(seeds.dir);
    const diff::AttributeMap base = fuzz::fixed_base();
    std::uint64_t version = 1;
    for (const diff::AttributeMap& target : targets()) {
      const std::string frame = diff::encode_delta(diff::make_delta("session-1", version, version + 1, base, target));
      ++version;
      seeds.write(Mode::Frame, frame);
      seeds.write(Mode::Body, frame.substr(diff::kDeltaHeaderBytes,
                                           frame.size() - diff::kDeltaHeaderBytes - diff::kDeltaChecksumBytes));
      const std::string& cart = target.count("cart") ? target.at("cart").first : std::string();
      seeds.write(Mode::Patch, diff::make_patch(fuzz::patch_base(), cart));
      seeds.write(Mode::Diff, std::string(1, '\x80') + fuzz::patch_base() + cart);
    }
    std::printf("delta_fuzz_seeds: %d seeds in %s\n", seeds.count, seeds.dir.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "delta_fuzz_seeds: %s\n", e.what());
    return 1;
  }
}
