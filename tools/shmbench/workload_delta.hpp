// The `delta` workload: how many bytes replicating one edit of a session
// attribute costs with shmsession's binary diff (diff/binary_diff.hpp,
// diff/delta.hpp), beside what whole-attribute replication sends (Tomcat's
// DeltaManager and WildFly ship a modified attribute whole), how fast the
// patch is made and applied, and what the object-graph diff (graph/) reports
// for the same edit. Edits:
//   one field in a ~1 MiB attribute (an order history)
//   100 scattered field edits in it
//   a string in it grown by one byte
//   an object inserted at the front of a list of 1,000 orders
//   one field in the cycle workload's cart (~1.3 KiB)
// No server takes part: the peer's figure is the size of the whole value.
//
// Thread safety: run_delta runs on one thread and forks nothing.
#pragma once

#include <string_view>

#include "tools/shmbench/workload.hpp"

namespace shmsession::bench {

inline constexpr std::string_view kDeltaDetails =
    "Measures, per edit of one session attribute, the bytes replication sends:\n"
    "  whole:  the whole new value (what whole-attribute replication sends: Tomcat's\n"
    "          DeltaManager and WildFly ship a modified attribute whole)\n"
    "  patch:  diff::make_patch(old, new), with the method it chose (Runs: same-offset\n"
    "          changed runs; ZstdPrefix: zstd with the old value as prefix; Whole*)\n"
    "  frame:  diff::encode_delta of the session delta carrying that one change\n"
    "          (session id, attribute name, versions, checksums): what the agent ships\n"
    "and the speed of make_patch and apply_patch (MB/s of the value, averaged over\n"
    "repeated calls for 0.5 s each, --quick: 0.05 s), and graph::diff's changed paths\n"
    "with the time to build the new value's object graph and diff it (the old one's\n"
    "graph is cached by the client). Edits, on values encoded by sync/attribute_codec.hpp\n"
    "(Boost binary archive of make_nvp structs):\n"
    "  one field:   total_cents of the middle order of an order history of ~1 MiB\n"
    "  100 edits:   qty or total_cents of 100 distinct random orders of that history\n"
    "  string +1 B: ship_to of the middle order grows by one character\n"
    "  insert:      a new order inserted at the front of a history of 1,000 orders\n"
    "  small:       one line item's qty in the cycle workload's 20-item cart\n"
    "No server takes part (the peer's figure is computed: the whole value's size).\n"
    "Values come from --seed.";

// Throws std::runtime_error if a patch does not turn the old value into the
// new one, or shmsession::Error from diff/ or graph/.
BenchReport run_delta(const RunOptions& options);

}  // namespace shmsession::bench
