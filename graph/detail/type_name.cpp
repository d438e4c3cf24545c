#include "graph/detail/type_name.hpp"

#include "graph/node_types.hpp"

#include <boost/core/demangle.hpp>

#include <deque>
#include <mutex>
#include <typeindex>
#include <unordered_map>

namespace shmsession::graph::detail {
namespace {

// Template arguments that only repeat the defaults and make names unreadable.
constexpr std::string_view kDefaultArguments[] = {
    ", std::allocator<", ", std::less<",        ", std::hash<",
    ", std::equal_to<",  ", std::char_traits<", ", std::default_delete<",
};

// Index just past the '>' that closes the '<' ending at `open_end`.
std::size_t skip_brackets(std::string_view text, std::size_t open_end) {
  int depth = 1;
  std::size_t i = open_end;
  for (; i < text.size() && depth > 0; ++i) {
    if (text[i] == '<') ++depth;
    if (text[i] == '>') --depth;
  }
  return i;
}

std::string drop_default_arguments(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    bool dropped = false;
    for (std::string_view argument : kDefaultArguments) {
      if (text.substr(i, argument.size()) == argument) {
        i = skip_brackets(text, i + argument.size());
        if (i < text.size() && text[i] == ' ') ++i;  // "> >" spelling
        dropped = true;
        break;
      }
    }
    if (!dropped) out += text[i++];
  }
  return out;
}

void replace_all(std::string& text, std::string_view from, std::string_view to) {
  // Resuming at `at` also catches overlaps ("> > >"); no `to` contains its `from`.
  for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at)) {
    text.replace(at, from.size(), to);
  }
}

struct Registry {
  std::mutex mutex;
  std::deque<TypeEntry> entries;  // deque: entries never move
  std::unordered_map<std::type_index, const TypeEntry*> by_type;
};

Registry& registry() {
  static Registry instance;
  return instance;
}

}  // namespace

std::string pretty_type_name(std::string_view demangled) {
  std::string name{demangled};
  replace_all(name, "std::__cxx11::", "std::");
  name = drop_default_arguments(name);
  replace_all(name, "> >", ">>");
  replace_all(name, "std::basic_string<char>", "std::string");
  replace_all(name, "std::basic_string<wchar_t>", "std::wstring");
  return name;
}

}  // namespace shmsession::graph::detail

namespace shmsession::graph {

const TypeEntry& register_type_name(const std::type_info& info) {
  detail::Registry& reg = detail::registry();
  std::lock_guard lock(reg.mutex);
  auto found = reg.by_type.find(std::type_index(info));
  if (found != reg.by_type.end()) return *found->second;
  TypeEntry& entry = reg.entries.emplace_back();
  entry.id = static_cast<std::uint32_t>(reg.entries.size() - 1);
  entry.name = detail::pretty_type_name(boost::core::demangle(info.name()));
  reg.by_type.emplace(std::type_index(info), &entry);
  return entry;
}

}  // namespace shmsession::graph
