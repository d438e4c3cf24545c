// LoadClient: drives the demo shop over HTTP/1.1 keep-alive connections
// with a realistic mix per request (view a product 35%, add an item 20%,
// change a quantity 15%, view the cart 20%, /api/session 10%). Each
// connection owns its share of the sessions and cycles over their cookies
// (it starts each session with a cookieless request and keeps the
// Set-Cookie), and mirrors each cart so that a quantity change names a line
// that is there. Progress once a second on stderr; a summary at the end.
//
// Thread safety: run_load runs one event loop on the calling thread.
#pragma once

#include <cstdint>
#include <string>

namespace shmsession::appserver {

struct LoadOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  int connections = 8;
  int sessions = 64;
  double seconds = 5;
  std::uint64_t seed = 20240601;
  bool json = false;   // the summary as one JSON document on stdout
  bool quiet = false;  // no progress lines
};

// Returns the exit status: 0 when every request got a 2xx/3xx answer, 3 when
// some failed (the summary counts them), 1 when nothing could be sent.
int run_load(const LoadOptions& options);

}  // namespace shmsession::appserver
