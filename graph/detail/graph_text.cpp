#include "graph/detail/graph_text.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstdio>
#include <vector>

namespace shmsession::graph::detail {
namespace {

constexpr std::size_t kKeyTextLimit = 64;
constexpr std::size_t kBinaryShown = 16;

std::uint64_t scalar_of(std::string_view bytes) {
  std::uint64_t bits = 0;
  for (std::size_t i = 0; i < bytes.size() && i < sizeof bits; ++i) {
    bits |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  }
  return bits;
}

void append_escaped(std::string& out, char32_t c) {
  switch (c) {
    case '"':
      out += "\\\"";
      return;
    case '\\':
      out += "\\\\";
      return;
    case '\n':
      out += "\\n";
      return;
    case '\t':
      out += "\\t";
      return;
    case '\r':
      out += "\\r";
      return;
    default:
      break;
  }
  if (c >= 0x20 && c < 0x7f) {
    out += static_cast<char>(c);
    return;
  }
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, c < 0x100 ? "\\x%02x" : "\\u{%x}", static_cast<unsigned>(c));
  out += buffer;
}

std::string quoted(std::string_view bytes) {
  std::string out = "\"";
  for (char c : bytes) {
    // UTF-8 passes through; only ASCII controls are escaped.
    if (static_cast<unsigned char>(c) >= 0x80)
      out += c;
    else
      append_escaped(out, static_cast<unsigned char>(c));
  }
  return out + "\"";
}

std::string quoted_wide(std::string_view bytes) {
  std::string out = "L\"";
  for (std::size_t i = 0; i + sizeof(wchar_t) <= bytes.size(); i += sizeof(wchar_t)) {
    std::uint32_t c = 0;
    for (std::size_t b = 0; b < sizeof(wchar_t) && b < 4; ++b) {
      c |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + b])) << (8 * b);
    }
    append_escaped(out, c);
  }
  return out + "\"";
}

std::string hex_bytes(std::string_view bytes) {
  std::string out = "0x";
  char buffer[4];
  for (std::size_t i = 0; i < bytes.size() && i < kBinaryShown; ++i) {
    std::snprintf(buffer, sizeof buffer, "%02x", static_cast<unsigned char>(bytes[i]));
    out += buffer;
  }
  if (bytes.size() > kBinaryShown) out += "... (" + std::to_string(bytes.size()) + " bytes)";
  return out;
}

template <class Number>
std::string number_text(Number value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

// Whether n is the (first, second) pair of a map entry.
bool is_map_entry(const GraphData& g, std::uint32_t n) {
  const Node& node = g.nodes[n];
  return node.parent != kNoIndex && g.nodes[node.parent].kind == NodeKind::Map && node.kind == NodeKind::Struct &&
         !node.is_reference() && g.child_count(n) == 2;
}

void append_key_text(const GraphData& g, std::uint32_t n, std::string& out);

void append_children_text(const GraphData& g, std::uint32_t n, std::string& out, bool named) {
  for (std::uint32_t c = n + 1; c < g.end_of(n) && out.size() <= kKeyTextLimit; c = g.next_sibling(c)) {
    if (c > n + 1) out += ", ";
    if (named && g.nodes[c].name != kNoIndex) {
      out += g.name_of(c);
      out += '=';
    }
    append_key_text(g, c, out);
  }
}

void append_key_text(const GraphData& g, std::uint32_t n, std::string& out) {
  const Node& node = g.nodes[n];
  if (out.size() > kKeyTextLimit) return;
  if (node.is_reference()) {
    out += "&";
    out += path_of(g, node.ref(), "$");
    return;
  }
  switch (node.kind) {
    case NodeKind::Value:
      out += value_text(g, n);
      return;
    case NodeKind::Pointer:
    case NodeKind::Optional:
      if (node.size == 1)
        out += node.kind == NodeKind::Pointer ? "null" : "none";
      else
        append_key_text(g, n + 1, out);
      return;
    case NodeKind::Struct:
      out += '{';
      append_children_text(g, n, out, true);
      out += '}';
      return;
    default:
      out += '[';
      append_children_text(g, n, out, false);
      out += ']';
      return;
  }
}

// The label of n in the dump: its path segment without the dot, "*" for a
// pointee, the member name inside a map entry.
std::string dump_label(const GraphData& g, std::uint32_t n) {
  const Node& node = g.nodes[n];
  if (node.parent == kNoIndex) return "$";
  if (is_map_entry(g, node.parent)) return std::string{g.name_of(n)};
  std::string label;
  append_segment(g, n, label);
  if (label.empty()) return "*";
  if (label[0] == '.') label.erase(0, 1);
  return label;
}

}  // namespace

void append_segment(const GraphData& g, std::uint32_t n, std::string& path) {
  const Node& node = g.nodes[n];
  if (node.parent == kNoIndex) return;
  const Node& parent = g.nodes[node.parent];
  switch (parent.kind) {
    case NodeKind::Sequence:
      path += '[' + std::to_string(node.ordinal) + ']';
      return;
    case NodeKind::Set:
    case NodeKind::Map:
      path += '[' + key_text(g, is_map_entry(g, n) ? n + 1 : n) + ']';
      return;
    case NodeKind::Pointer:
    case NodeKind::Optional:
      if (g.child_count(node.parent) != 1) path += '[' + std::to_string(node.ordinal) + ']';
      return;
    default:
      break;
  }
  if (is_map_entry(g, node.parent) && node.ordinal == 1) return;  // the value sits at "[key]"
  if (node.name == kNoIndex) {
    path += '[' + std::to_string(node.ordinal) + ']';
  } else {
    path += '.';
    path += g.name_of(n);
  }
}

std::string path_of(const GraphData& g, std::uint32_t n, std::string_view root_name) {
  std::vector<std::uint32_t> chain;
  for (std::uint32_t at = n; at != kNoIndex; at = g.nodes[at].parent) chain.push_back(at);
  std::string path{root_name};
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) append_segment(g, *it, path);
  return path;
}

std::string value_text(const GraphData& g, std::uint32_t n) {
  const std::string_view bytes = g.value_of(n);
  switch (g.nodes[n].tag) {
    case ValueTag::Bool:
      return scalar_of(bytes) != 0 ? "true" : "false";
    case ValueTag::Signed:
      return number_text(static_cast<std::int64_t>(scalar_of(bytes)));
    case ValueTag::Unsigned:
      return number_text(scalar_of(bytes));
    case ValueTag::Float:
      return number_text(std::bit_cast<double>(scalar_of(bytes)));
    case ValueTag::String:
      return quoted(bytes);
    case ValueTag::WideString:
      return quoted_wide(bytes);
    case ValueTag::Binary:
      return hex_bytes(bytes);
    case ValueTag::Text:
      return std::string{bytes};
    case ValueTag::None:
      break;
  }
  return {};
}

std::string key_text(const GraphData& g, std::uint32_t n) {
  std::string out;
  append_key_text(g, n, out);
  if (out.size() > kKeyTextLimit) out = out.substr(0, kKeyTextLimit) + "...";
  return out;
}

std::string graph_to_text(const GraphData& g) {
  std::string out;
  std::vector<std::uint32_t> depth(g.nodes.size(), 0);
  for (std::uint32_t n = 0; n < g.nodes.size(); ++n) {
    const Node& node = g.nodes[n];
    if (node.parent != kNoIndex) depth[n] = depth[node.parent] + 1;
    out.append(std::size_t{2} * depth[n], ' ');
    out += dump_label(g, n);
    out += ": ";
    out += g.type_of(n);
    if (node.is_reference())
      out += " -> " + path_of(g, node.ref(), "$");
    else if (node.kind == NodeKind::Value)
      out += " = " + value_text(g, n);
    else if (node.kind == NodeKind::Pointer && node.size == 1)
      out += " = null";
    else if (node.kind == NodeKind::Optional && node.size == 1)
      out += " = none";
    else if (node.kind == NodeKind::Sequence || node.kind == NodeKind::Set || node.kind == NodeKind::Map) {
      out += " [" + std::to_string(g.child_count(n)) + "]";
    }
    out += '\n';
  }
  return out;
}

}  // namespace shmsession::graph::detail
