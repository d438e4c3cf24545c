// The `replicate` workload: what keeping a backup costs the primary. The
// same writers commit one changed attribute at a time, first with no backup,
// then with one attached:
//   shmsession  Store::commit of a one-attribute CommitBatch; the backup is
//               our sync agent (sync/backup/agent.hpp) and backup daemon
//               (sync/backup/backup_server.hpp), each in a forked child,
//               over TCP on 127.0.0.1 into a standby segment
//   redis       HSET session:<id> <field> <value>, one round trip per commit;
//               the backup is a second redis-server started with --replicaof
// and measures the commit rate with and without, the lag until the backup
// has a commit (a prober thread commits ~500 times a second and watches the
// backup; also with no writers), the bytes sent per commit beside
// whole-session replication, and that the backup equals its primary
// afterwards. Writers: one paced at a rate both backups keep up with, then
// one and two unpaced (the backups' limits).
//
// Thread safety: run_replicate runs on one thread; it forks the agent, the
// daemon and the writers, and runs the prober on a second thread that is
// never inside a Store call while the writers are forked.
#pragma once

#include <string_view>

#include "tools/shmbench/workload.hpp"

namespace shmsession::bench {

inline constexpr std::string_view kReplicateDetails =
    "Measures, for shmsession with its backup and a Redis primary with a replica, both\n"
    "started by this run on 127.0.0.1:\n"
    "  commits/s alone:      writers commit one attribute of a random session (a new\n"
    "                        100 B value) with no backup (Redis: HSET of one field,\n"
    "                        one round trip per commit)\n"
    "  commits/s backup:     the same with the backup attached: our sync agent and\n"
    "                        backup daemon in forked children (AgentOptions defaults:\n"
    "                        asleep on the change log until a commit wakes it, polls\n"
    "                        of 256 changes), after their initial full resync; Redis:\n"
    "                        a replica (--replicaof) after its initial sync\n"
    "  lag p50/p99/max:      a prober thread commits to its own session every 2 ms\n"
    "                        meanwhile and times each probe until the backup has it:\n"
    "                        ours, the standby's applied position reaching the primary's\n"
    "                        change sequence after the probe; Redis, HGET on the replica\n"
    "                        returning the probe's counter; the backup is looked at\n"
    "                        every 20 us; probes do not wait for each other. Also with\n"
    "                        no writers (probes only, 1 s, --quick: 0.2 s).\n"
    "  bytes per commit:     ours, the agent's sealed frame bytes (headers and tags included);\n"
    "                        Redis, master_repl_offset growth; over every commit from\n"
    "                        the phase's start until the backup had them all; beside\n"
    "                        whole-session replication (the agent's whole_bytes: a\n"
    "                        whole-session delta per delta shipped; Redis: the session\n"
    "                        hash's fields and values)\n"
    "and then checks that the backup holds the primary's sessions (ours: every session,\n"
    "attribute by attribute; Redis: DBSIZE and 200 sessions by HGETALL); a backup that\n"
    "differs fails the run (exit 1) after the report.\n"
    "Sessions: 10,000 (--quick: 1,000), each 10 attributes attr0..attr9 of 100 B.\n"
    "Writers: 1 process paced at 5,000 commits/s (each commit shipped on its own), then\n"
    "1 and 2 unpaced processes on disjoint session ranges. Each loop runs 3 s (--quick:\n"
    "0.3 s) after an untimed warm-up of a tenth of that. Our primary's change log holds\n"
    "4M entries (--quick: 1M) so the unpaced writers' backlog ships as deltas rather\n"
    "than full resyncs. Random sessions, attributes and values come from --seed, the\n"
    "same on both sides.";

// Throws shmsession::Error or std::runtime_error if a phase fails; every
// segment, child and peer process it started is gone when it returns or
// throws. A backup found unequal to its primary is a report.failures entry.
BenchReport run_replicate(const RunOptions& options);

}  // namespace shmsession::bench
