// Commands about sessions of a store: show, get, put, reset.
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <ostream>
#include <string_view>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "tools/shmctl/commands.hpp"
#include "tools/shmctl/output.hpp"

namespace shmsession::shmctl {
namespace {

std::string describe_flags(std::uint32_t flags) {
  if (flags == 0) return "-";
  std::string out;
  if (flags & kAttributeImmutable) out = "immutable";
  std::uint32_t unknown = flags & ~kAttributeImmutable;
  if (unknown != 0) {
    char hex[16];
    std::snprintf(hex, sizeof hex, "%s0x%x", out.empty() ? "" : ",", static_cast<unsigned>(unknown));
    out += hex;
  }
  return out;
}

std::string no_such_session(const Options& options) {
  return "session " + quote(options.session) + " does not exist in store " + quote(options.store);
}

// Reads standard input up to the attribute value limit. Throws: CommandError.
std::string read_stdin_value() {
  const std::string what = "read value from standard input";
  std::string value;
  char buf[65536];
  for (;;) {
    std::size_t n = std::fread(buf, 1, sizeof buf, stdin);
    value.append(buf, n);
    if (value.size() > kMaxAttributeValueBytes) {
      throw CommandError(what,
                         "more than " + std::to_string(kMaxAttributeValueBytes) + " bytes, the attribute value limit");
    }
    if (n < sizeof buf) break;
  }
  if (std::ferror(stdin)) throw CommandError(what, shmsession::errno_text(errno));
  return value;
}

void print_session(const SessionInfo& s, bool json, std::ostream& out) {
  if (json) {
    boost::json::array attributes;
    for (const AttributeInfo& a : s.attributes) {
      attributes.push_back({{"name", a.name}, {"version", a.version}, {"size", a.size}, {"flags", a.flags}});
    }
    print_json(out, boost::json::object{{"id", s.id},
                                        {"version", s.version},
                                        {"incarnation", s.incarnation},
                                        {"created_unix_ms", s.created_unix_ms},
                                        {"last_access_unix_ms", s.last_access_unix_ms},
                                        {"idle_timeout_s", s.idle_timeout_s},
                                        {"payload_bytes", s.payload_bytes},
                                        {"attributes", std::move(attributes)}});
    return;
  }
  FieldList()
      .add("id", s.id)
      .add("version", std::to_string(s.version))
      .add("created", format_unix_ms(s.created_unix_ms))
      .add("last access", format_unix_ms(s.last_access_unix_ms))
      .add("idle timeout", format_timeout(s.idle_timeout_s))
      .print(out);
  out << '\n';
  Table table({{"NAME"}, {"VERSION", Align::Right}, {"SIZE", Align::Right}, {"FLAGS"}});
  for (const AttributeInfo& a : s.attributes) {
    table.add_row({a.name, std::to_string(a.version), std::to_string(a.size), describe_flags(a.flags)});
  }
  table.print(out);
}

// JSON must be valid UTF-8: a value that is not gets its exact bytes in
// "value_base64" beside a readable, lossy "value".
boost::json::object attribute_json(const SessionSnapshot& snapshot, const Attribute& attribute) {
  bool lossy = false;
  boost::json::object doc{{"session", snapshot.id},       {"name", attribute.name},
                          {"version", attribute.version}, {"session_version", snapshot.version},
                          {"flags", attribute.flags},     {"value", to_valid_utf8(attribute.value, &lossy)}};
  if (lossy) doc["value_base64"] = base64_encode(attribute.value);
  return doc;
}

}  // namespace

void run_show(const Options& options, std::ostream& out) {
  Store store = attach_store(options.store);
  const std::string what = "show session " + quote(options.session);
  std::optional<SessionInfo> session = run_step(what, [&] { return store.describe(options.session); });
  if (!session) throw CommandError(what, no_such_session(options));
  print_session(*session, options.json, out);
}

void run_get(const Options& options, std::ostream& out) {
  Store store = attach_store(options.store);
  const std::string what = "get " + quote(options.attribute) + " of session " + quote(options.session);
  const std::array<std::string_view, 1> names{options.attribute};
  std::optional<SessionSnapshot> snapshot = run_step(what, [&] { return store.peek(options.session, names); });
  if (!snapshot) throw CommandError(what, no_such_session(options));
  const Attribute* attribute = snapshot->find(options.attribute);
  if (attribute == nullptr) throw CommandError(what, "the session has no such attribute");
  if (!options.json) {
    out.write(attribute->value.data(), static_cast<std::streamsize>(attribute->value.size()));
    return;
  }
  print_json(out, attribute_json(*snapshot, *attribute));
}

// Creates the session when it is missing, then commits the one put.
void run_put(const Options& options, std::ostream& out) {
  std::string value = options.value == "-" ? read_stdin_value() : options.value;
  Store store = attach_store(options.store);
  const std::string what = "put " + quote(options.attribute) + " in session " + quote(options.session);
  bool created = run_step(what, [&] { return store.create_session(options.session); });
  CommitBatch batch;
  const std::uint64_t bytes = value.size();
  batch.put(options.attribute, std::move(value), options.immutable ? kAttributeImmutable : 0);
  std::uint64_t version = run_step(what, [&] { return store.commit(options.session, batch); });
  if (options.json) {
    print_json(out, boost::json::object{{"session", options.session},
                                        {"name", options.attribute},
                                        {"version", version},
                                        {"bytes", bytes},
                                        {"created_session", created}});
    return;
  }
  FieldList()
      .add("session", options.session)
      .add("attribute", options.attribute)
      .add("bytes", std::to_string(bytes))
      .add("version", std::to_string(version))
      .add("new session", created ? "yes" : "no")
      .print(out);
}

void run_reset(const Options& options, std::ostream& out) {
  if (options.all == !options.session.empty()) {
    throw UsageError("give either a SESSION or --all");
  }
  Store store = attach_store(options.store);
  std::uint64_t removed = 0;
  if (options.all) {
    removed = run_step("reset all sessions of " + quote(options.store), [&] { return store.remove_all_sessions(); });
  } else {
    const std::string what = "reset session " + quote(options.session);
    if (!run_step(what, [&] { return store.remove_session(options.session); }))
      throw CommandError(what, no_such_session(options));
    removed = 1;
  }
  if (options.json) {
    print_json(out, boost::json::object{{"store", options.store}, {"removed", removed}});
  } else {
    FieldList().add("store", options.store).add("removed", std::to_string(removed)).print(out);
  }
}

}  // namespace shmsession::shmctl
