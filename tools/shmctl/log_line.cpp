#include "tools/shmctl/log_line.hpp"

#include <ctime>
#include <iostream>
#include <string>

namespace shmsession::shmctl {

void log_line(std::string_view program, std::string_view line) {
  char stamp[32];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::string one(line);
  for (char& c : one)
    if (c == '\n' || c == '\r') c = ' ';
  std::cerr << stamp << ' ' << program << ": " << one << std::endl;
}

}  // namespace shmsession::shmctl
