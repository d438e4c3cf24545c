// SessionShape: the one session layout every shmbench workload stores, in
// shmsession and in the peer alike, so that both sides hold the same bytes:
//   id "session:<8 digits>", attributes
//   profile  1024 B  (the attribute a workload commits)
//   user       64 B
//   flags      16 B
// Values are deterministic filler; commit_value() stamps an operation number
// into the first bytes so that no commit rewrites identical bytes.
//
// Thread safety: immutable after construction; any number of threads.
// Cross-process safety: plain values; safe to use after fork().
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "shm/session.hpp"

namespace shmsession::bench {

struct ShapeAttribute {
  std::string_view name;
  std::size_t bytes;
};

inline constexpr std::array<ShapeAttribute, 3> kShapeAttributes = {{
    {"profile", 1024},
    {"user", 64},
    {"flags", 16},
}};
inline constexpr std::string_view kCommittedAttribute = "profile";
inline constexpr std::array<std::string_view, 3> kShapeNames = {"profile", "user", "flags"};

// One line for --help texts.
inline constexpr std::string_view kShapeSummary =
    "each session: id session:<8 digits>, attributes profile 1024 B (the one committed), "
    "user 64 B, flags 16 B; a read fetches all three";

// "session:00000042"
std::string session_id(std::uint64_t index);

// Attribute values plus attribute names: what a user stores per session.
std::uint64_t shape_payload_bytes() noexcept;

// Filler of `bytes` bytes, different per attribute.
std::string filler_value(std::size_t bytes, char seed);

// The batch that fills a new session with every attribute.
CommitBatch fill_batch();

// Overwrites the first 8 bytes of `value` (>= 8 bytes) with `stamp`.
void stamp_value(std::string& value, std::uint64_t stamp) noexcept;

// Deterministic pseudo-random numbers (splitmix64): the same sequence on
// every machine and library, unlike std:: distributions.
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) noexcept : state_(seed) {}
  std::uint64_t next() noexcept {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform enough in [0, bound) for bound << 2^64.
  std::uint64_t below(std::uint64_t bound) noexcept { return next() % bound; }

 private:
  std::uint64_t state_;
};

}  // namespace shmsession::bench
