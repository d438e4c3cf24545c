// StandbyLink: the backup daemon's side of one connection, without the
// socket. It takes the bytes a peer sent and says what to send back and
// whether to close, so the whole protocol (handshake, full and partial
// resync, resend requests, restore, every bad-input path) is testable
// without a network. BackupServer (backup_server.hpp) moves the bytes.
//
// A connection is one of two kinds, fixed by its first frame:
//  - an agent (Hello): deltas are applied to the standby through a
//    StandbyApplier; the standby's replication position is stored in the
//    segment after each applied frame and only then acknowledged;
//  - a restore client (RestoreRequest): the standby is streamed back as a
//    snapshot (Welcome, SnapshotBegin, SnapshotSession..., SnapshotEnd).
//
// Epochs (shm/replica.hpp): an agent whose store has an older epoch than
// the standby, or any agent once the standby was promoted, is refused
// after a Welcome that says so; an admitted agent raises the standby's
// epoch to its own. A standby promoted while a link applies refuses the
// next frame (Errc::Fenced), which ends the link.
//
// Any bad frame (wrong key, garbage, a frame over the cap, a frame out of
// protocol, a delta for a store the standby does not follow) ends the link:
// the reason is one line, an Error frame tells the peer, and the standby
// keeps what it had (a frame is applied whole or not at all).
//
// Thread safety: one thread per link. Cross-process safety: the standby is
// an ordinary Store; app servers may attach it and read at any time.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "shm/store.hpp"
#include "sync/backup/detail/replication_item.hpp"
#include "sync/backup/detail/standby_applier.hpp"
#include "sync/wire/detail/frame.hpp"
#include "sync/wire/detail/payloads.hpp"

namespace shmsession::sync::detail {

class StandbyLink {
 public:
  enum class Role { Unknown, Agent, Restore };

  struct Output {
    std::string bytes;             // to send, in order
    bool close = false;            // close once `bytes` is sent
    std::string reason;            // why it closes (one line), for the log
    std::vector<std::string> log;  // other events worth a log line
  };

  StandbyLink(Store& standby, const wire::KeyRing& keys, wire::FrameLimits limits = {});

  // Feeds bytes received from the peer; never throws for anything the peer
  // sent (that becomes close + reason). Throws: std::bad_alloc only.
  Output feed(std::string_view bytes);

  // Restore: the next part of the snapshot, about `max_bytes` of frames;
  // empty once the snapshot has been sent (restore_done() then true).
  std::string next_restore_chunk(std::size_t max_bytes);
  bool restore_pending() const noexcept { return role_ == Role::Restore && restore_next_ <= restore_ids_.size(); }

  Role role() const noexcept { return role_; }
  bool closed() const noexcept { return closed_; }
  // The id of the pre-shared key the peer connected with, once its opening
  // was read.
  std::optional<wire::KeyId> key_in_use() const noexcept { return codec_.key_in_use(); }
  // The store id the agent announced (zeros before a Hello).
  const wire::detail::StoreId& agent_store() const noexcept { return agent_store_; }
  std::uint64_t frames_applied() const noexcept { return frames_applied_; }
  std::uint64_t position() const noexcept { return position_; }

 private:
  void handle(const wire::detail::Frame& frame, Output& out);
  void on_hello(const wire::detail::Frame& frame, Output& out);
  void refuse_agent(const wire::detail::Hello& hello, Output& out);
  void on_restore_request(const wire::detail::Frame& frame, Output& out);
  void on_item(const wire::detail::Frame& frame, Output& out);
  void on_snapshot_begin(const wire::detail::Frame& frame, Output& out);
  void on_snapshot_end(const wire::detail::Frame& frame, Output& out);
  void on_heartbeat(const wire::detail::Frame& frame, Output& out);
  void advance(std::uint64_t seq);
  void send(const wire::detail::Frame& frame, Output& out);
  void fail(const std::string& reason, Output& out);

  Store& standby_;
  wire::detail::FrameCodec codec_;
  ItemDecoder items_in_;   // the agent's session payloads
  ItemEncoder items_out_;  // those sent to a restore client
  StandbyApplier applier_;
  Role role_ = Role::Unknown;
  bool closed_ = false;
  wire::detail::StoreId agent_store_{};
  // The standby reflects the agent's store up to position_ (all changes
  // below it); valid_ once a partial resync continues from a stored
  // position, or a full resync ended.
  bool valid_ = false;
  bool in_snapshot_ = false;
  std::uint64_t snapshot_seq_ = 0;
  std::uint64_t position_ = 0;
  std::uint64_t last_seq_ = 0;  // highest item seq applied
  std::uint64_t acked_ = 0;     // last position acknowledged; 0 during a full resync
  // Sessions the standby could not apply exactly, asked for in full: the
  // position does not move until every one has arrived.
  std::set<std::string> pending_;
  std::uint64_t frames_applied_ = 0;
  // Restore.
  std::vector<std::string> restore_ids_;
  std::size_t restore_next_ = 0;  // == size(): SnapshotEnd next; size() + 1: done
  std::uint64_t restore_seq_ = 0;
};

}  // namespace shmsession::sync::detail
