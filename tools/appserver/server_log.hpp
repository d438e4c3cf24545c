// The app server's log: one line on stderr per event, "<UTC time>
// shmsession-appserver: <line>", written with a single write(2) so that the
// lines of several worker processes sharing stderr never interleave.
//
// Thread safety: any thread, any process (one system call per line).
#pragma once

#include <string_view>

namespace shmsession::appserver {

void log_line(std::string_view line);

}  // namespace shmsession::appserver
