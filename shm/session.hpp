// Plain value types exchanged with a Store: what a caller writes (a
// CommitBatch), what it reads back (a SessionSnapshot) and what an operator
// sees (SessionInfo, StoreInfo, StoreStats). The other roles' values live
// with them: ChangeEntry in shm/change_feed.hpp, AgentStatus in
// shm/agent_seat.hpp, ReplicaPosition in shm/replica.hpp, CheckReport and
// RecoveryReport in shm/recovery.hpp. They own their bytes: nothing here
// points into shared memory, so they outlive the Store and may cross
// threads freely.
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
  std::uint32_t change_lanes = 0;
  std::uint32_t default_idle_timeout_s = 0;
  std::uint32_t lock_lease_ms = 0;
  std::uint32_t max_lock_queue = 0;

  std::string store_id_hex() const;
};

// A store id as 32 lowercase hex digits, as shmctl prints it.
std::string hex_store_id(const std::array<std::uint8_t, 16>& id);

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
  std::uint64_t bound_waits = 0;      // writes that waited for the agent (Store::set_replication_bound)
  std::uint64_t bound_refusals = 0;   // writes refused with ReplicaBehind
  // Session lock states in use (a lock held, waited for or asked back) and
  // the slots the shards' lock-state tables hold for them (they grow to
  // the most ever in use at once and are reused from then on).
  std::uint64_t lock_states = 0;
  std::uint64_t lock_state_slots = 0;
};

}  // namespace shmsession
