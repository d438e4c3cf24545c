// HostRecords: what one host knows of its ownership of sessions, shared by
// every process of the host (sync/hosts/hosts.md, "Ownership on the
// host"). Kept in a companion store of the session store, named
// "<store>.hosts" (a Boost.Interprocess segment like the store's, with its
// robustness: a record is written by one atomic commit, a process killed
// mid-write leaves the old record), so that the session store's layout and
// the sessions' attributes stay as they are.
//
// It holds the host's configuration (its host id, the Redis seeds, the key
// prefix and the lease), written by the agent's Redis sink when it starts
// and read by every HostGate, and one record per session the host owns or
// owned: the fencing token and which local version of the session matches
// which Redis version.
//
// Session ids: at most kMaxHostSessionIdBytes (the record's id is "s:" and
// the session id), no '{' or '}' (the Redis keys' hash tag).
//
// Thread safety: as a Store (any threads, any processes).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shm/store.hpp"

namespace shmsession::hosts {

inline constexpr std::size_t kMaxHostSessionIdBytes = kMaxSessionIdBytes - 2;

struct HostConfig {
  std::string host;    // this host's id in Redis ([A-Za-z0-9._-]{1,64})
  std::string redis;   // seeds, "HOST:PORT[,HOST:PORT...]"
  std::string prefix;  // of the Redis keys and channels
  std::chrono::milliseconds lease{10000};
  // Idle timeout of a record (s, 0: never): twice the store's default
  // session idle timeout, so that the records of sessions gone from the
  // store (expired, removed while another host owned them) go too. The
  // Redis sink touches the records of the sessions this host owns at each
  // lease renewal, and expires the others.
  std::uint32_t record_idle_s = 0;
};

struct HostRecord {
  enum class State {
    Owned,     // this host owns the session with `token`
    Released,  // this host gave it up after shipping everything
    Lost,      // this host's ownership ended without a release (lease run out,
               // fenced): its local copy may hold changes Redis never took
  };
  State state = State::Owned;
  std::uint64_t token = 0;
  // The local session at `local` held exactly Redis's state at
  // `redis_version` (when the ownership began, or was released).
  std::uint64_t redis_version = 0;
  SessionVersion local{};
};

std::string_view host_record_state_name(HostRecord::State state) noexcept;

class HostRecords {
 public:
  // The record holding the host's configuration; its process lock is
  // held by the running Redis sink.
  static constexpr std::string_view kConfigId = "config";
  static constexpr std::string_view kStatusId = "status";

  // "<store>.hosts".
  static std::string name_for(std::string_view store);
  // The records of `store`, made if absent (the agent's Redis sink), with
  // `config` written. Throws Error(InvalidArgument) when they exist and
  // belong to another host id (its owned sessions would be orphaned: the
  // message says how to go on), or for a bad config.
  static HostRecords open_or_create(std::string_view store, const HostConfig& config,
                                    std::uint64_t size_bytes = std::uint64_t{64} << 20);
  // The records of `store` as the agent made them. Throws Error(NotFound)
  // naming the command that makes them.
  static HostRecords attach(std::string_view store);
  // Removes them (a test's cleanup, an operator's reset); false if absent.
  static bool remove(std::string_view store);

  HostRecords(HostRecords&&) noexcept = default;
  HostRecords& operator=(HostRecords&&) noexcept = default;

  const HostConfig& config() const noexcept { return config_; }
  std::optional<HostRecord> get(std::string_view sid);
  // The version of the session's record (it moves at every put): one
  // look, nothing copied, for a caller that keeps what a record said.
  // `scratch` holds the record's id (kept by the caller: no allocation).
  // Requires: a session id record_id accepts.
  std::optional<SessionVersion> version(std::string_view sid, std::string& scratch) const;
  // Throws Error(InvalidArgument) for a session id the records cannot
  // hold; Error(SegmentFull) when the companion store is full.
  void put(std::string_view sid, const HostRecord& record);
  void erase(std::string_view sid);
  // Keeps a record from expiring (the sink, for the sessions it owns).
  void touch(std::string_view sid);
  // The running Redis sink's figures (name -> decimal), as it last
  // published them (RedisSink, every status interval); empty if none ever
  // did.
  std::vector<std::pair<std::string, std::string>> status() const;
  void publish_status(const std::vector<std::pair<std::string, std::string>>& figures);
  // Every record, outside any lock (records written meanwhile may or may
  // not be visited).
  void for_each(const std::function<void(const std::string& sid, const HostRecord&)>& visit);
  Store& store() noexcept { return store_; }

  // The record's id for a session id. Throws Error(InvalidArgument).
  static std::string record_id(std::string_view sid);
  // Whether the records can hold `sid` (no allocation). Throws
  // Error(InvalidArgument).
  static void validate_session_id(std::string_view sid);

 private:
  HostRecords(Store store, HostConfig config) : store_(std::move(store)), config_(std::move(config)) {}
  static HostConfig read_config(Store& store);

  Store store_;
  HostConfig config_;
};

}  // namespace shmsession::hosts
