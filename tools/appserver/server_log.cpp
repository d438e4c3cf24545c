#include "tools/appserver/server_log.hpp"

#include <unistd.h>

#include <ctime>
#include <string>

namespace shmsession::appserver {

void log_line(std::string_view line) {
  char stamp[32];
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  ::gmtime_r(&now, &utc);
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &utc);
  std::string text = std::string(stamp) + " shmsession-appserver: ";
  for (char c : line) text.push_back(c == '\n' || c == '\r' ? ' ' : c);  // one line, whatever the reason says
  text.push_back('\n');
  // A short write to a pipe or terminal of a few hundred bytes does not
  // happen in practice; a log line is not worth a retry loop.
  [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, text.data(), text.size());
}

}  // namespace shmsession::appserver
