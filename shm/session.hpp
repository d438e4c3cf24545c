// Plain value types exchanged with a Store: what a caller writes (a
// CommitBatch), what it reads back (a SessionSnapshot), what an operator
// sees (SessionInfo, StoreInfo, StoreStats) and what a follower of the change
// log receives (ChangeEntry). They own their bytes: nothing here points into
// shared memory, so they outlive the Store and may cross threads freely.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace shmsession {

// Attribute flags, stored with each attribute value.
inline constexpr std::uint32_t kAttributeImmutable = 1u << 0;

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
};

// The changes of one atomic commit: puts (insert or replace) and removals.
// A name may appear once in the whole batch.
struct CommitBatch {
  std::vector<AttributeWrite> puts;
  std::vector<std::string> removes;

  CommitBatch& put(std::string name, std::string value, std::uint32_t flags = 0) {
    puts.push_back({std::move(name), std::move(value), flags});
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
};

// A consistent copy of one session version (or of a subset of its
// attributes): every attribute comes from the same version.
struct SessionSnapshot {
  std::string id;
  std::uint64_t version = 0;      // 0 for a new session with nothing committed
  std::uint64_t incarnation = 0;  // differs when a session is removed and created again
  std::uint64_t created_unix_ms = 0;
  std::uint64_t last_access_unix_ms = 0;
  std::uint32_t idle_timeout_s = 0;  // 0: never expires
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
  std::uint64_t payload_bytes = 0;  // sum of attribute value sizes
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
