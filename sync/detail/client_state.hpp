// ClientState: one process's copy of one session (the seeds' "client
// state"): the attributes as C++ objects, each beside its benchmark (the
// bytes, and lazily the object graph, of the version last synchronized with
// the primary state), and whether a thread accessed it mutably since.
//
// Thread safety: any number of request threads of the process may use one
// ClientState. `slots_mutex_` guards the slot map's structure (slots are
// never destroyed while the state lives, so references stay valid); each
// slot's `lock` is the thread-level reader/writer lock of that attribute.
// Lock order: `commit_mutex_`, then slot locks in ascending attribute name,
// never `slots_mutex_` while waiting for a slot lock.
#pragma once

#include <atomic>
#include <chrono>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <oneapi/tbb/rw_mutex.h>
#include <boost/container/small_vector.hpp>

#include "graph/object_graph.hpp"
#include "shm/store.hpp"
#include "sync/attribute_codec.hpp"
#include "sync/commit_outcome.hpp"

namespace shmsession::sync::detail {

struct Slot {
  std::string name;  // set once, before the slot is listed
  oneapi::tbb::rw_mutex lock;
  // The local value; null until first accessed (decoded lazily).
  std::shared_ptr<void> object;
  const TypeOps* ops = nullptr;  // type of `object`
  // Benchmark: the primary state's value at the last synchronization.
  bool in_primary = false;
  std::string benchmark_bytes;
  // XXH3 of benchmark_bytes once known (from the commit that wrote them):
  // an edit whose bytes hash otherwise changed, with no need to read the
  // benchmark (cold by the next request) to find the first difference.
  std::uint64_t benchmark_hash = 0;
  bool benchmark_hashed = false;
  // Built only when a commit needs it (ClientState::examine), then kept
  // until the benchmark changes.
  std::optional<graph::ObjectGraph> benchmark_graph;
  std::uint64_t benchmark_version = 0;  // the attribute's version in the primary state
  std::uint32_t flags = 0;
  // Local changes pending the next commit.
  bool removed = false;
  std::atomic<bool> tracked{false};  // mutably accessed since the last commit
};

using sync::CommitOutcome;

struct RefreshOutcome {
  bool moved = false;                // the primary had moved since the copy was current
  bool first = false;                // there was no copy yet (moved too)
  std::vector<std::string> dropped;  // pending edits dropped (see ClientState::refresh)
};

class ClientState {
 public:
  ClientState(std::string id, Comparison comparison, bool check_order)
      : check_order(check_order), id_(std::move(id)), comparison_(comparison) {}

  const std::string& id() const noexcept { return id_; }
  std::optional<LockToken> token() const;
  void set_token(std::optional<LockToken> token);

  // Reloads the attributes whose primary version moved (all of them after a
  // remove-and-recreate), if the session version moved, copying only those
  // values out of the store (Store::read_moved). Says whether it moved and
  // which pending local edits it had to drop (the primary moved under them:
  // the lock was lost). Throws: as Store.
  RefreshOutcome refresh(Store& store, LockToken token);
  // The slot of `name`, created empty if absent.
  Slot& slot(std::string_view name);
  // The slot of `name` if it holds a value (local or primary), else nullptr.
  Slot* existing_slot(std::string_view name);
  // Decodes the slot's value as `ops`' type if not done yet (write lock held).
  // Throws: Error(InvalidArgument) for another type, Error(Corrupt).
  void materialize(Slot& slot, std::string_view name, const TypeOps& ops);

  // Compares every mutably accessed attribute with its benchmark and commits
  // the modified ones in one atomic commit. Throws: StaleToken, SegmentFull...
  CommitOutcome commit(Store& store, LockToken token);
  bool has_pending() const;
  // Names of the attributes with pending edits.
  std::vector<std::string> pending_names() const;
  // Forgets every pending edit: the slots go back to their benchmark.
  void discard_pending();
  // Bytes this copy takes, roughly: see ClientStats::bytes.
  std::size_t footprint() const;

  const bool check_order;  // ClientOptions::check_handle_order

  std::atomic<int> active_requests{0};
  std::atomic<bool> release_requested{false};
  // kEpochKnown | Store::release_request_epoch() read before a look at the
  // store found no release request for the lock held; 0 when unknown (a
  // new token clears it). See Client::end_request.
  static constexpr std::uint64_t kEpochKnown = std::uint64_t{1} << 32;
  std::atomic<std::uint64_t> quiet_epoch{0};
  std::mutex open_mutex;  // serializes taking the process lock
  // The adaptive lock policy (Client): what this session's own evidence
  // says (Undecided: nothing yet, the Client's lean decides), and (guarded
  // by open_mutex) the quiet takes of the free lock counted towards going
  // sticky, how many are needed, and whether it went sticky before (a
  // relapse doubles the need).
  enum class Adaptive : int { Undecided, PerRequest, Sticky };
  std::atomic<Adaptive> adaptive{Adaptive::Undecided};
  int quiet_takes = 0;
  static constexpr int kFirstQuietTakes = 8;
  static constexpr int kMostQuietTakes = 256;
  int quiet_needed = kFirstQuietTakes;
  bool went_sticky = false;
  // In Client::kept_undecided_ (set once per listing, cleared by the sweep
  // that takes it off).
  std::atomic<bool> kept_listed{false};
  // A policy an open() gave for the requests now running (0: none, else
  // 1 + LockPolicy); cleared when the last of them ends.
  std::atomic<int> request_policy{0};
  // Guarded by open_mutex: the error of the last failed flush, thrown by
  // the next open.
  std::optional<Error> flush_error;
  // Guarded by Client::states_mutex_.
  std::uint64_t opens = 0;
  std::uint64_t last_used_ms = 0;  // shm::detail::client_ms()
  std::size_t counted_bytes = 0;   // this state's share of Client::bytes_
  bool kept = false;               // in Client::states_
  bool in_lru = false;
  std::list<std::shared_ptr<ClientState>>::iterator lru_pos;

 private:
  struct Pending;
  using PendingList = boost::container::small_vector<Pending, 4>;  // a commit's, inline
  // The slot's benchmark graph, built from the benchmark bytes if not kept
  // (write lock held). Throws: Error(Corrupt), as decoding.
  const graph::ObjectGraph& benchmark_graph(Slot& slot);
  void examine(std::string_view name, Slot& slot, CommitBatch& batch, PendingList& pending);
  void note_known(const CommitBatch& batch, std::uint64_t version);

  const std::string id_;
  const Comparison comparison_;
  mutable std::mutex slots_mutex_;
  // Ascending names, a binary search away: a session holds few attributes,
  // and one array (beside the slots it finds) is fewer cache lines than a
  // tree's nodes. `name` views the slot's own name, which stays put (the
  // Slot is on the heap and never removed), as do the views handed out.
  struct NamedSlot {
    std::string_view name;
    std::unique_ptr<Slot> slot;
  };
  std::vector<NamedSlot> slots_;
  std::vector<NamedSlot>::iterator find_slot(std::string_view name);
  // The process lock's token, 0 when none (tokens start at 1): an atomic
  // rather than under slots_mutex_, as every request reads it several
  // times. Set only under open_mutex.
  std::atomic<std::uint64_t> token_{0};
  static constexpr SessionVersion kNeverSeen{~std::uint64_t{0}, 0};
  SessionVersion seen_ = kNeverSeen;  // primary version of the benchmark
  std::mutex commit_mutex_;
  // refresh's buffers, kept to spare allocations (commit_mutex_ held).
  // known_ lists what the copy holds, sorted by name (names viewing
  // slots_' keys, which live as long as the state); a commit updates it in
  // place (note_known), and it is rebuilt only after a refresh moved the
  // copy or a commit added or removed an attribute (known_current_
  // false), so that the open of a copy that did not move walks no slot.
  std::vector<KnownAttribute> known_;
  bool known_current_ = false;
  SessionSnapshot scratch_;
};

}  // namespace shmsession::sync::detail
