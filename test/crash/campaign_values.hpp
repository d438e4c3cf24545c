// The values the kill campaign commits, and how the supervisor tells a whole
// session from a torn or damaged one.
//
// Every commit of the campaign writes two attributes, "a" and "b", in one
// batch, both made from one stamp: "<writer>:<counter>:<length>:" followed by
// `length` bytes of a pattern drawn from the counter. A session is torn when
// its two attributes carry different stamps or different versions, and
// damaged when a value does not parse or its pattern is wrong. Sessions
// written through sync::Client hold the same texts inside a ClientValue
// (Boost.Serialization, sync/attribute_codec.hpp).
//
// Thread safety: pure functions over their arguments.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/serialization/nvp.hpp>
#include <boost/serialization/string.hpp>

#include "shm/session.hpp"

namespace shmsession::test::crash {

inline constexpr const char* kFirstAttribute = "a";
inline constexpr const char* kSecondAttribute = "b";

// What one commit of the campaign stamped into both of its attributes.
struct Stamp {
  std::string writer;  // "w<worker>.<incarnation>"
  std::uint64_t counter = 0;
  friend bool operator==(const Stamp&, const Stamp&) = default;
};

// "<writer>:<counter>:<length>:<pattern>".
std::string make_value(std::string_view writer, std::uint64_t counter, std::size_t length);
// The stamp of a value; nullopt (and why) if it is not one make_value made.
std::optional<Stamp> parse_value(std::string_view value, std::string& why);

// XXH3 of the two texts of one commit, as the ack log records it.
std::uint64_t commit_checksum(std::string_view first, std::string_view second);

// The attribute type of the sessions written through sync::Client.
struct ClientValue {
  std::string text;
  template <class Archive>
  void serialize(Archive& archive, unsigned) {
    archive& boost::serialization::make_nvp("text", text);
  }
};

// What the supervisor found in one session: its version and the checksum of
// its two texts, or why it is torn or damaged.
struct SessionVerdict {
  std::uint64_t version = 0;
  std::uint64_t checksum = 0;  // 0 for an empty session (version 0)
  std::string problem;         // empty: whole
};

// Verifies one snapshot. `client_encoded`: the attributes are ClientValues.
SessionVerdict judge_session(const SessionSnapshot& snapshot, bool client_encoded);

}  // namespace shmsession::test::crash
