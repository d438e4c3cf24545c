// One log line of a long-running tool (shmsession-agent,
// shmsession-backupd) on stderr: "<UTC time> <program>: <line>", with any
// line break in `line` turned into a space so that one event is one line.
//
// Thread safety: one call writes one line (std::cerr, flushed).
#pragma once

#include <string_view>

namespace shmsession::shmctl {

void log_line(std::string_view program, std::string_view line);

}  // namespace shmsession::shmctl
