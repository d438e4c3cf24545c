#include "sync/backup/endpoint.hpp"

#include <charconv>

namespace shmsession::sync {

std::string Endpoint::to_string() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Endpoint parse_endpoint(std::string_view text, bool allow_zero) {
  const auto bad = [&](const std::string& why) {
    return Error(Errc::InvalidArgument, "'" + std::string(text) + "' is not HOST:PORT: " + why);
  };
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) throw bad("no port");
  std::string_view host = text.substr(0, colon);
  const std::string_view port = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  else if (host.find(':') != std::string_view::npos)
    throw bad("write an IPv6 address in brackets, [::1]:7480");
  if (host.empty()) throw bad("empty host");
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535 ||
      (value == 0 && !allow_zero))
    throw bad(std::string("port must be 1..65535") + (allow_zero ? " or 0" : ""));
  return Endpoint{std::string(host), static_cast<std::uint16_t>(value)};
}

}  // namespace shmsession::sync
