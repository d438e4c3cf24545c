// The `worker` workload: one long-running app-server worker process serving
// a million distinct sessions over time through one sync::Client with
// explicit bounds (ClientOptions max_sessions, max_bytes, max_idle), in the
// request pattern of visit_pattern.hpp. A sampler thread of the worker
// records every second what it has done and what it keeps: its private
// memory (RssAnon), the Client's kept sessions, bytes and evictions, and
// the process locks the store says the worker's pid holds. A Redis peer
// serves the same sequence (HMGET + HSET of the session hash) with its
// memory sampled the same way. Afterwards a second process (shmbench
// itself) reads back every 997th session and compares it with what the
// sequence wrote; a difference fails the workload.
//
// Thread safety: run_worker runs on one thread and forks one worker per
// system (the Client, its watcher thread and the sampler live there).
#pragma once

#include <string_view>

#include "tools/shmbench/workload.hpp"

namespace shmsession::bench {

inline constexpr std::string_view kWorkerDetails =
    "One long-running worker process serves 1,000,000 distinct sessions (--quick: 20,000)\n"
    "through one sync::Client with explicit bounds: max_sessions 4096, max_bytes 64 MiB,\n"
    "max_idle 600 s (object-graph comparison). The store is sized for every session\n"
    "(32 MiB + 700 B a session, reserved at creation: 700 MiB for 1M).\n"
    "Requests (from --seed, the same on both sides):\n"
    "  50% a new visitor: the next session, its first page\n"
    "  35% a visitor clicking on: one of the 32 sessions started last, uniformly\n"
    "  15% a returning visitor: a session started earlier, its distance back from the\n"
    "      newest log-uniform in [1, 100,000] (Zipf-like: each decade equally likely)\n"
    "until every session has been started (about 2 requests per session). A request:\n"
    "  shmsession: client.open(id) (creates a new session), get<VisitLog>(\"visits\")\n"
    "              unless new, edit<Cart>(\"cart\") (pages 1-2 add a line item, later\n"
    "              pages change one qty; put for a new session), put of visits (pages\n"
    "              + 1, the request number), commit()\n"
    "  redis:      HMGET <id> cart visits, decode, the same edit, HSET of both\n"
    "Every second a sampler thread of the worker records requests, distinct sessions,\n"
    "the worker's RssAnon (/proc/self/status: its heap, not the shared segment), the\n"
    "store's memory (segment used bytes; redis used_memory_rss), Client::stats() (kept\n"
    "sessions, bytes, evictions, locks_held) and the locks Store::locks() shows held by\n"
    "the worker's pid (a scan of every session). Once the worker has left, shmbench\n"
    "(another process) replays the sequence and reads back every 997th session from the\n"
    "store (and redis): a value other than written fails the run (exit status 1).";

// Throws shmsession::Error or std::runtime_error if a phase fails; every
// segment and peer process it started is gone when it returns or throws.
BenchReport run_worker(const RunOptions& options);

}  // namespace shmsession::bench
