// Plain value types exchanged with a Store: what a caller writes (a
// CommitBatch), what it reads back (a SessionSnapshot), what an operator
// sees (SessionInfo, StoreInfo, StoreStats, AgentStatus) and what a follower
// of the change log receives (ChangeEntry). They own their bytes: nothing here points into
// shared memory, so they outlive the Store and may cross threads freely.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shmsession {

// Attribute flags, stored with each attribute value.
inline constexpr std::uint32_t kAttributeImmutable = 1u << 0;
// The flag bits a store keeps (16 per attribute, in the segment's attribute
// table); a commit with any other bit set is refused (InvalidArgument).
inline constexpr std::uint32_t kAttributeFlagsMask = 0xFFFFu;

// Limits checked on every call (violations are Errc::InvalidArgument).
inline constexpr std::size_t kMaxSessionIdBytes = 128;
inline constexpr std::size_t kMaxAttributeNameBytes = 255;
inline constexpr std::size_t kMaxAttributeValueBytes = std::size_t{64} << 20;  // 64 MiB
inline constexpr std::size_t kMaxAttributesPerSession = 65535;

// One attribute put of a commit.
struct AttributeWrite {
  std::string name;
  std::string value;  // arbitrary bytes
  std::uint32_t flags = 0;
  // attribute_checksum(value), when the caller has it already (a Client
  // hashes what it encoded to compare it): the store keeps it instead of
  // hashing the value again. A wrong one makes the value read as Corrupt.
  std::optional<std::uint64_t> checksum;
};

// The XXH3-64 a store keeps of each value (the low 32 bits, checked on
// every read). The fastest entry point the CPU runs; the same hash as
// XXH3_64bits everywhere.
std::uint64_t attribute_checksum(std::string_view value) noexcept;

// The changes of one atomic commit: puts (insert or replace) and removals.
// A name may appear once in the whole batch.
struct CommitBatch {
  std::vector<AttributeWrite> puts;
  std::vector<std::string> removes;

  CommitBatch& put(std::string name, std::string value, std::uint32_t flags = 0,
                   std::optional<std::uint64_t> checksum = std::nullopt) {
    puts.push_back({std::move(name), std::move(value), flags, checksum});
    return *this;
  }
  CommitBatch& remove(std::string name) {
    removes.push_back(std::move(name));
    return *this;
  }
  bool empty() const noexcept { return puts.empty() && removes.empty(); }
};

struct Attribute {
  std::string name;
  std::string value;
  std::uint64_t version = 0;  // session version of the commit that wrote it
  std::uint32_t flags = 0;
  // Store::read_moved only: the value was not copied (empty), because the
  // caller's copy holds this version already.
  bool value_omitted = false;
};

// An attribute version a caller's copy holds (Store::read_moved).
struct KnownAttribute {
  std::string_view name;
  std::uint64_t version = 0;
};

// A consistent copy of one session version (or of a subset of its
// attributes): every attribute comes from the same version.
struct SessionSnapshot {
  std::string id;
  std::uint64_t version = 0;      // 0 for a new session with nothing committed
  std::uint64_t incarnation = 0;  // differs when a session is removed and created again
  std::uint64_t created_unix_ms = 0;
  std::uint64_t last_access_unix_ms = 0;
  std::uint32_t idle_timeout_s = 0;   // 0: never expires
  std::vector<Attribute> attributes;  // sorted by name

  // The attribute of that name, or nullptr.
  const Attribute* find(std::string_view name) const noexcept;
};

struct SessionVersion {
  std::uint64_t version = 0;
  std::uint64_t incarnation = 0;
  friend bool operator==(const SessionVersion&, const SessionVersion&) = default;
};

struct AttributeInfo {
  std::string name;
  std::uint64_t version = 0;
  std::uint64_t size = 0;
  std::uint32_t flags = 0;
};

// What an operator sees of a session: no values.
struct SessionInfo {
  std::string id;
  std::uint64_t version = 0;
  std::uint64_t incarnation = 0;
  std::uint64_t created_unix_ms = 0;
  std::uint64_t last_access_unix_ms = 0;
  std::uint32_t idle_timeout_s = 0;
  std::uint32_t attribute_count = 0;
  std::uint64_t payload_bytes = 0;        // sum of attribute value sizes
  std::vector<AttributeInfo> attributes;  // filled by Store::describe only
};

struct StoreInfo {
  std::string name;
  std::uint32_t layout_version = 0;
  std::array<std::uint8_t, 16> store_id{};
  std::uint64_t created_unix_ms = 0;
  std::uint64_t size_bytes = 0;
  std::uint32_t shard_count = 0;
  std::uint32_t change_log_capacity = 0;
  std::uint32_t default_idle_timeout_s = 0;
  std::uint32_t lock_lease_ms = 0;
  std::uint32_t max_lock_queue = 0;

  std::string store_id_hex() const;
};

// Where a standby stands in its primary's change log. All zero on a store
// that follows no primary.
struct ReplicaPosition {
  std::array<std::uint8_t, 16> primary_store_id{};
  std::uint64_t applied_seq = 0;
  bool follows_a_primary() const noexcept;
  std::string primary_store_id_hex() const;
  friend bool operator==(const ReplicaPosition&, const ReplicaPosition&) = default;
};

struct StoreStats {
  std::uint64_t sessions = 0;
  std::uint64_t attributes = 0;
  std::uint64_t payload_bytes = 0;  // attribute values only
  std::uint64_t size_bytes = 0;     // segment size
  std::uint64_t free_bytes = 0;     // free in the segment allocator
  std::uint64_t used_bytes = 0;     // size - free
  std::uint64_t commits = 0;
  std::uint64_t expirations = 0;
  std::uint64_t lock_recoveries = 0;  // shard locks taken over from a dead holder
  std::uint64_t next_change_seq = 0;
  std::uint64_t lock_revocations = 0;  // process locks taken from dead, overdue or forced holders
  std::uint64_t next_lock_token = 0;
  std::uint64_t generation = 0;       // 1 for a store never rebuilt; each rebuild adds one
  std::uint64_t unflushed_edits = 0;  // edits sync::Clients could not commit (Store::count_unflushed_edits)
  // Session lock states in use (a lock held, waited for or asked back) and
  // the slots the shards' lock-state tables hold for them (they grow to
  // the most ever in use at once and are reused from then on).
  std::uint64_t lock_states = 0;
  std::uint64_t lock_state_slots = 0;
};

// What Store::check found. A check is an access like any other: a shard
// lock whose holder died is repaired as the next commit would repair it
// (counted in shard_repairs, not a problem). `problems` lists what the
// store cannot fix on its own access path: only Store::recover (or the
// automatic rebuild on the next allocation) clears them.
struct CheckReport {
  std::uint64_t generation = 0;
  std::uint64_t sessions = 0;                  // records walked
  std::uint64_t attributes = 0;                // attribute values whose checksum was verified
  std::uint64_t damaged_sessions = 0;          // record or blob failing its magic, bounds or a checksum
  std::vector<std::string> damaged_ids;        // the first few of them
  std::uint64_t broken_links = 0;              // bucket tables and chain links failing their bounds, magic
                                               // or bucket (the records beyond are unreachable), and loops
  std::uint64_t damaged_lock_queues = 0;       // session lock states whose queue or holder slot is out of range
  std::uint64_t damaged_lock_references = 0;   // sessions whose lock-state reference is out of range, or
                                               // leads to a free slot or another session's
  std::uint64_t damaged_lock_tables = 0;       // shards whose lock-state table is inconsistent (chunks, free list,
                                               // slots neither free nor referenced)
  std::vector<std::string> lock_table_damage;  // the first few findings, one line each
  std::uint64_t lock_states = 0;               // lock states in use (referenced by a session)
  std::uint64_t shard_repairs = 0;             // shard locks this check took over from a dead holder
  std::uint64_t miscounted_shards = 0;         // shard counters that disagree with a recount
  std::uint64_t damaged_spares = 0;            // shard spare blobs claiming more bytes than their block
  std::uint64_t dead_lock_holders = 0;         // session locks held by processes that no longer run
  std::uint64_t dead_waiters = 0;              // lock waiter slots of processes that no longer run
  std::uint64_t dead_process_slots = 0;        // process slots of processes that no longer run
  bool allocator_ok = true;                    // the segment allocator's mutex and free tree are sound
  bool index_ok = true;                        // the segment's named-object index is usable
  bool moved = false;                          // this generation was replaced by a newer one
  std::uint64_t unreferenced_bytes = 0;        // allocated but reachable from no record (a killed
                                               // process's unpublished or unfreed blocks); exact only
                                               // on a quiet store; freed by a rebuild
  std::vector<std::string> problems;           // one line each

  bool clean() const noexcept { return problems.empty(); }
};

// What Store::recover did.
struct RecoveryReport {
  // "none": nothing needed; "repaired": record-level fixes only (shard
  // repairs, dead holders' locks revoked, dead processes' slots freed);
  // "rebuilt": the live records were copied into a fresh generation.
  std::string action = "none";
  std::string reason;  // why it rebuilt (empty otherwise)
  std::uint64_t from_generation = 0;
  std::uint64_t to_generation = 0;
  std::uint64_t shard_repairs = 0;
  std::uint64_t locks_revoked = 0;      // dead holders' locks (and, on a rebuild, every lock)
  std::uint64_t slots_freed = 0;        // waiter and process slots of dead processes
  std::uint64_t sessions_copied = 0;    // rebuild: records verified and copied
  std::uint64_t sessions_dropped = 0;   // rebuild: records that failed verification
  std::uint64_t sessions_relinked = 0;  // rebuild: sound records found outside every chain (a broken
                                        // link cut them off), copied too (counted in sessions_copied)
  std::vector<std::string> dropped_ids;
  std::uint64_t bytes_reclaimed = 0;  // rebuild: used bytes before minus after
};

// What the replication agent (shmsession-agent) is doing.
enum class AgentState : std::uint8_t {
  Stopped = 0,     // no agent runs, or it released its claim
  Connecting = 1,  // dialling the backup
  Handshake = 2,   // connected, comparing change-log positions
  FullResync = 3,  // shipping every session
  Streaming = 4,   // following the change log
};

// "stopped", "connecting", "handshake", "full-resync", "streaming" ("unknown"
// for a value outside the enum).
std::string_view agent_state_name(AgentState state) noexcept;

// Longest texts of an AgentStatus the segment keeps; longer ones are cut
// (never inside a UTF-8 sequence), not refused.
inline constexpr std::size_t kMaxAgentBackupBytes = 63;
inline constexpr std::size_t kMaxAgentErrorBytes = 191;

// The replication agent's status as it last published it (see
// Store::publish_agent_status). A change-log position is as
// ChangeBatch::next_seq: the first sequence not yet covered.
struct AgentStatus {
  std::int32_t pid = 0;  // the agent, or the last one; 0: no agent has ever claimed this store
  bool alive = false;    // filled by agent_status(): that process (pid + start time) still runs and holds the claim
  AgentState state = AgentState::Stopped;
  std::string backup;                   // "host:port" of the backup daemon; cut to kMaxAgentBackupBytes
  std::string last_error;               // last connection error, one line; cut to kMaxAgentErrorBytes
  std::uint64_t started_unix_ms = 0;    // when the agent claimed the store (it claims as it starts)
  std::uint64_t updated_unix_ms = 0;    // last publish (0 when publishing: the store stamps the time)
  std::uint64_t connected_unix_ms = 0;  // current connection established (0: not connected)
  std::uint64_t sent_seq = 0;           // change-log position of the last frame sent
  std::uint64_t acked_seq = 0;          // change-log position the backup acknowledged
  std::uint64_t lag_ms = 0;             // age of the oldest change not yet acknowledged
  std::uint64_t frames_sent = 0;
  std::uint64_t frames_per_s = 0;
  std::uint64_t wire_bytes = 0;   // frame bytes sent, headers and MACs included
  std::uint64_t delta_bytes = 0;  // encoded delta bytes shipped
  std::uint64_t whole_bytes = 0;  // what whole-session replication would have shipped
  std::uint64_t full_resyncs = 0;
  std::uint64_t partial_resyncs = 0;
  std::uint64_t reconnects = 0;
  std::uint64_t resends = 0;  // sessions re-sent in full at the backup's request
};

enum class ChangeKind : std::uint8_t {
  Created = 1,
  Committed = 2,
  Removed = 3,
  Expired = 4,
};

std::string_view change_kind_name(ChangeKind kind) noexcept;

struct ChangeEntry {
  std::uint64_t seq = 0;
  std::uint64_t version = 0;  // session version after the change
  ChangeKind kind = ChangeKind::Committed;
  std::string session_id;
};

struct ChangeBatch {
  std::vector<ChangeEntry> entries;  // ascending seq, no gaps
  std::uint64_t next_seq = 0;        // where to continue reading
  // The ring no longer holds the requested sequence: entries were lost to
  // overflow and the follower must fall back to a full scan of the store.
  bool fell_behind = false;
};

}  // namespace shmsession
