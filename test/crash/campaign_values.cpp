#include "test/crash/campaign_values.hpp"

#include <charconv>

#include <xxhash.h>

#include "sync/attribute_codec.hpp"

namespace shmsession::test::crash {
namespace {

char pattern_byte(std::uint64_t counter, std::size_t i) { return static_cast<char>('a' + (counter * 31 + i * 7) % 26); }

// Reads "<digits>:" at the front of `text`.
bool take_number(std::string_view& text, std::uint64_t& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (ec != std::errc() || end == text.data() + text.size() || *end != ':') return false;
  text.remove_prefix(static_cast<std::size_t>(end - text.data()) + 1);
  return true;
}

// The text of attribute `name`, decoded when `client_encoded`; nullopt (and
// why) if it is missing or does not decode.
std::optional<std::string> text_of(const SessionSnapshot& snapshot, const char* name, bool client_encoded,
                                   std::string& why) {
  const Attribute* a = snapshot.find(name);
  if (a == nullptr) {
    why = std::string("attribute '") + name + "' missing";
    return std::nullopt;
  }
  if (a->version != snapshot.version) {
    why = std::string("attribute '") + name + "' at version " + std::to_string(a->version) + " in session version " +
          std::to_string(snapshot.version) + " (torn)";
    return std::nullopt;
  }
  if (!client_encoded) return a->value;
  try {
    return sync::decode_attribute<ClientValue>(a->value).text;
  } catch (const std::exception& e) {
    why = std::string("attribute '") + name + "' does not decode: " + e.what();
    return std::nullopt;
  }
}

}  // namespace

std::string make_value(std::string_view writer, std::uint64_t counter, std::size_t length) {
  std::string value;
  value.reserve(writer.size() + 48 + length);
  value.append(writer).append(":").append(std::to_string(counter)).append(":").append(std::to_string(length));
  value.push_back(':');
  for (std::size_t i = 0; i < length; ++i) value.push_back(pattern_byte(counter, i));
  return value;
}

std::optional<Stamp> parse_value(std::string_view value, std::string& why) {
  std::size_t colon = value.find(':');
  Stamp stamp;
  std::uint64_t length = 0;
  if (colon == std::string_view::npos || colon == 0) {
    why = "no writer";
    return std::nullopt;
  }
  stamp.writer = std::string(value.substr(0, colon));
  std::string_view rest = value.substr(colon + 1);
  if (!take_number(rest, stamp.counter) || !take_number(rest, length)) {
    why = "bad header";
    return std::nullopt;
  }
  if (rest.size() != length) {
    why = "length " + std::to_string(rest.size()) + ", header says " + std::to_string(length);
    return std::nullopt;
  }
  for (std::size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] != pattern_byte(stamp.counter, i)) {
      why = "pattern wrong at byte " + std::to_string(i);
      return std::nullopt;
    }
  }
  return stamp;
}

std::uint64_t commit_checksum(std::string_view first, std::string_view second) {
  XXH3_state_t* state = XXH3_createState();
  XXH3_64bits_reset(state);
  XXH3_64bits_update(state, first.data(), first.size());
  XXH3_64bits_update(state, "\n", 1);
  XXH3_64bits_update(state, second.data(), second.size());
  std::uint64_t sum = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  return sum;
}

SessionVerdict judge_session(const SessionSnapshot& snapshot, bool client_encoded) {
  SessionVerdict verdict;
  verdict.version = snapshot.version;
  if (snapshot.version == 0) {
    if (!snapshot.attributes.empty()) verdict.problem = "version 0 with attributes";
    return verdict;
  }
  std::string why;
  std::optional<std::string> first = text_of(snapshot, kFirstAttribute, client_encoded, why);
  std::optional<std::string> second = first ? text_of(snapshot, kSecondAttribute, client_encoded, why) : std::nullopt;
  if (!first || !second) {
    verdict.problem = why;
    return verdict;
  }
  std::optional<Stamp> a = parse_value(*first, why);
  if (!a) {
    verdict.problem = "attribute 'a' damaged: " + why;
    return verdict;
  }
  std::optional<Stamp> b = parse_value(*second, why);
  if (!b) {
    verdict.problem = "attribute 'b' damaged: " + why;
    return verdict;
  }
  if (!(*a == *b)) {
    verdict.problem = "torn: 'a' from " + a->writer + "#" + std::to_string(a->counter) + ", 'b' from " + b->writer +
                      "#" + std::to_string(b->counter);
    return verdict;
  }
  if (snapshot.attributes.size() != 2) verdict.problem = std::to_string(snapshot.attributes.size()) + " attributes";
  verdict.checksum = commit_checksum(*first, *second);
  return verdict;
}

}  // namespace shmsession::test::crash
