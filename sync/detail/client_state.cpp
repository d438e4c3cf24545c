#include "sync/detail/client_state.hpp"

#include <algorithm>

#include "sync/detail/foreign_errors.hpp"

namespace shmsession::sync::detail {

namespace {

// The buffer a commit encodes into: this thread's, reused by each of its
// commits, so the encoding writes memory already in cache. It never
// becomes a benchmark (commit copies the bytes out): handed over,
// as it was before, it made every benchmark as large as the biggest value
// encoded before it (4.8 KiB kept for a 1.4 KiB cart), and every encoding
// wrote into the cold buffer of another session. A buffer larger than
// kMostBufferKept is let go.
constexpr std::size_t kMostBufferKept = std::size_t{64} << 10;
thread_local std::string encode_buffer;

std::string take_encode_buffer(std::size_t size_hint) {
  std::string buffer = std::move(encode_buffer);
  encode_buffer = std::string();
  buffer.clear();
  if (buffer.capacity() < size_hint) buffer.reserve(size_hint);
  return buffer;
}

void keep_encode_buffer(std::string& buffer) noexcept {
  if (buffer.capacity() <= kMostBufferKept) encode_buffer.swap(buffer);
}

// The slot keeps the committed bytes in a block of about their size: the
// previous benchmark's when it fits them without much to spare (a value
// committed again at its size), else one of their own, allocated before
// the commit (ClientState::Pending::block) so that nothing after a
// successful commit can fail.
bool block_fits(std::size_t capacity, std::size_t size) noexcept {
  return capacity >= size && capacity <= size + size / 4 + 64;
}

}  // namespace

struct ClientState::Pending {
  static constexpr std::size_t kNoPut = ~std::size_t{0};
  Slot* slot;
  std::size_t put;  // index in the batch's puts, whose bytes become the benchmark; kNoPut: a removal
  std::optional<graph::ObjectGraph> graph;
  std::uint32_t flags = 0;
  bool removed = false;
  std::uint64_t hash = 0;  // of the put's bytes
  // Empty, or an exact block for the new benchmark when the old one's does
  // not fit it (block_fits).
  std::string block;
};

std::optional<LockToken> ClientState::token() const {
  const std::uint64_t value = token_.load(std::memory_order_acquire);
  if (value == 0) return std::nullopt;
  return LockToken{value};
}

void ClientState::set_token(std::optional<LockToken> token) {
  const std::uint64_t value = token ? token->value : 0;
  if (value != token_.load(std::memory_order_relaxed)) quiet_epoch = 0;  // before the new token shows
  token_.store(value, std::memory_order_release);
}

std::vector<ClientState::NamedSlot>::iterator ClientState::find_slot(std::string_view name) {
  return std::lower_bound(slots_.begin(), slots_.end(), name,
                          [](const NamedSlot& s, std::string_view n) { return s.name < n; });
}

Slot& ClientState::slot(std::string_view name) {
  std::lock_guard<std::mutex> g(slots_mutex_);
  auto it = find_slot(name);
  if (it == slots_.end() || it->name != name) {
    auto made = std::make_unique<Slot>();
    made->name = std::string(name);
    const std::string_view own = made->name;
    it = slots_.insert(it, NamedSlot{own, std::move(made)});
  }
  return *it->slot;
}

Slot* ClientState::existing_slot(std::string_view name) {
  std::lock_guard<std::mutex> g(slots_mutex_);
  auto it = find_slot(name);
  return it == slots_.end() || it->name != name ? nullptr : it->slot.get();
}

bool ClientState::has_pending() const {
  std::lock_guard<std::mutex> g(slots_mutex_);
  return std::any_of(slots_.begin(), slots_.end(), [](const NamedSlot& s) { return s.slot->tracked.load(); });
}

std::vector<std::string> ClientState::pending_names() const {
  std::lock_guard<std::mutex> g(slots_mutex_);
  std::vector<std::string> names;
  for (const auto& [name, s] : slots_)
    if (s->tracked.load()) names.emplace_back(name);
  return names;
}

void ClientState::discard_pending() {
  std::lock_guard<std::mutex> commit_guard(commit_mutex_);
  std::vector<Slot*> tracked;
  {
    std::lock_guard<std::mutex> g(slots_mutex_);
    for (auto& [name, s] : slots_)
      if (s->tracked.load()) tracked.push_back(s.get());
  }
  for (Slot* s : tracked) {  // ascending names
    std::unique_lock<oneapi::tbb::rw_mutex> w(s->lock);
    s->object.reset();  // decoded again from the benchmark on the next access
    s->ops = nullptr;
    s->removed = false;
    s->tracked = false;
  }
}

std::size_t ClientState::footprint() const {
  constexpr std::size_t kSession = 512;  // the state, its mutexes, map node, LRU node, id
  constexpr std::size_t kSlot = 192;     // a Slot and its map node
  std::lock_guard<std::mutex> g(slots_mutex_);
  std::size_t bytes = kSession + id_.capacity();
  for (const auto& [name, s] : slots_) {
    bytes += kSlot + s->name.capacity() + s->benchmark_bytes.capacity();
    if (s->object) bytes += s->benchmark_bytes.size();  // the decoded object, counted as its encoded size
    if (s->benchmark_graph) bytes += s->benchmark_graph->node_count() * 64;
  }
  return bytes;
}

RefreshOutcome ClientState::refresh(Store& store, LockToken token) {
  std::lock_guard<std::mutex> commit_guard(commit_mutex_);
  RefreshOutcome outcome;
  // What the copy holds: in_primary and benchmark_version change only under
  // commit_mutex_, which this thread holds.
  if (!known_current_) {
    known_.clear();
    std::lock_guard<std::mutex> g(slots_mutex_);
    for (auto& [name, s] : slots_)
      if (s->in_primary) known_.push_back({name, s->benchmark_version});
    known_current_ = true;
  }
  SessionSnapshot& snap = scratch_;
  if (!store.read_moved(id_, token, seen_, known_, snap))
    throw Error(Errc::NotFound, "session '" + id_ + "' does not exist");
  if (SessionVersion{snap.version, snap.incarnation} == seen_) return outcome;  // the benchmark is current
  outcome.moved = true;
  outcome.first = seen_ == kNeverSeen;
  known_current_ = false;
  const bool reborn = snap.incarnation != seen_.incarnation;
  std::vector<std::pair<std::string_view, Slot*>> all;
  for (const Attribute& a : snap.attributes) slot(a.name);
  {
    std::lock_guard<std::mutex> g(slots_mutex_);
    for (auto& [name, s] : slots_) all.emplace_back(name, s.get());
  }
  for (auto& [name, s] : all) {  // ascending names: the documented lock order
    // Mutable: a value copied is moved into the benchmark, so the reused
    // snapshot keeps no second copy of it.
    auto it = std::lower_bound(snap.attributes.begin(), snap.attributes.end(), name,
                               [](const Attribute& x, std::string_view n) { return x.name < n; });
    Attribute* a = it != snap.attributes.end() && it->name == name ? &*it : nullptr;
    if (a != nullptr && a->value_omitted) continue;  // the copy holds this version
    std::unique_lock<oneapi::tbb::rw_mutex> w(s->lock);
    if (a != nullptr && !reborn && s->in_primary && s->benchmark_version == a->version) continue;
    if (a == nullptr && !s->in_primary && !reborn) continue;  // local only, not yet committed
    s->object.reset();
    s->ops = nullptr;
    s->benchmark_graph.reset();
    s->in_primary = a != nullptr;
    s->benchmark_bytes = a ? std::move(a->value) : std::string();
    s->benchmark_hashed = false;
    s->benchmark_version = a ? a->version : 0;
    s->flags = a ? a->flags : 0;
    s->removed = false;
    if (s->tracked.load()) outcome.dropped.emplace_back(name);  // the primary moved under a pending change: it wins
    s->tracked = false;
  }
  seen_ = {snap.version, snap.incarnation};
  return outcome;
}

void ClientState::materialize(Slot& s, std::string_view name, const TypeOps& ops) {
  if (s.object) {
    if (s.ops != &ops)
      throw Error(Errc::InvalidArgument,
                  "attribute '" + std::string(name) + "' holds a " + s.ops->name + ", not a " + ops.name);
    return;
  }
  if (!s.in_primary || s.removed)
    throw Error(Errc::NotFound, "session '" + id_ + "' has no attribute '" + std::string(name) + "'");
  if (tag_of(s.benchmark_bytes, name) != ops.tag)
    throw Error(Errc::InvalidArgument, "attribute '" + std::string(name) + "' holds another type than " + ops.name);
  s.object = ops.decode(s.benchmark_bytes);
  s.ops = &ops;
}

const graph::ObjectGraph& ClientState::benchmark_graph(Slot& s) {
  if (!s.benchmark_graph) {
    // The benchmark's bytes are the value before the edits (the object was
    // decoded from them or they were encoded from it), so its graph is
    // built from them only now that a comparison needs it.
    const std::shared_ptr<void> before = s.ops->decode(s.benchmark_bytes);
    s.benchmark_graph = with_store_errors([&] { return s.ops->build_graph(before.get()); });
  }
  return *s.benchmark_graph;
}

// Bytes first: equal bytes are an equal value under either comparison, and
// for a value whose every type has a graph no coarser than its bytes
// (graph::kGraphCoarserThanBytes) different bytes are a different graph, so
// only values holding keyed containers, floats or text-saved types need
// graphs to decide, and then the benchmark's is kept for the next commit.
void ClientState::examine(std::string_view name, Slot& s, CommitBatch& batch, PendingList& pending) {
  if (s.removed) {
    if (s.in_primary) {
      batch.remove(std::string(name));
      pending.push_back({&s, Pending::kNoPut, std::nullopt, 0, true});
    }
    return;
  }
  if (!s.object) return;
  const std::uint32_t flags = s.ops->immutable ? kAttributeImmutable : 0;
  const bool compared = !s.ops->immutable && s.in_primary;
  EncodedValue value = s.ops->encode(s.object.get(), take_encode_buffer(s.benchmark_bytes.size()));
  const std::uint64_t hash = attribute_checksum(value.bytes);
  // Another hash: other bytes for certain. The same (or none known yet):
  // the bytes decide.
  if (compared && !(s.benchmark_hashed && hash != s.benchmark_hash) && value.bytes == s.benchmark_bytes) {
    s.benchmark_hash = hash;  // an edit that changed nothing
    s.benchmark_hashed = true;
    keep_encode_buffer(value.bytes);
    return;
  }
  std::optional<graph::ObjectGraph> g;
  const bool by_graph = compared && !value.bytes_decide && comparison_ == Comparison::ObjectGraph && !s.ops->binary &&
                        tag_of(s.benchmark_bytes, name) == s.ops->tag;
  if (by_graph) {
    g = with_store_errors([&] { return s.ops->build_graph(s.object.get()); });
    if (graph::equivalent(*g, benchmark_graph(s))) {  // other bytes, the same value
      keep_encode_buffer(value.bytes);
      return;
    }
  }
  std::string block;
  if (!block_fits(s.benchmark_bytes.capacity(), value.bytes.size())) block.reserve(value.bytes.size());
  pending.push_back({&s, batch.puts.size(), std::move(g), flags, false, hash, std::move(block)});
  batch.put(std::string(name), std::move(value.bytes), flags, hash);  // copied into the benchmark once committed
}

// After a commit: the attributes it put are held at `version` now. known_
// is brought up to date in place (every request of a sticky session
// commits, and a rebuild walks every slot); a put of an attribute it did
// not list, or a removal, has it rebuilt at the next refresh.
void ClientState::note_known(const CommitBatch& batch, std::uint64_t version) {
  if (!known_current_ || batch.empty()) return;
  if (!batch.removes.empty()) {
    known_current_ = false;
    return;
  }
  for (const AttributeWrite& w : batch.puts) {
    auto it = std::lower_bound(known_.begin(), known_.end(), w.name,
                               [](const KnownAttribute& k, std::string_view n) { return k.name < n; });
    if (it == known_.end() || it->name != w.name) {
      known_current_ = false;
      return;
    }
    it->version = version;
  }
}

CommitOutcome ClientState::commit(Store& store, LockToken token) {
  std::lock_guard<std::mutex> commit_guard(commit_mutex_);
  // A request edits an attribute or a few: inline, no allocation per commit.
  // The names are the slots' own (Slot::name): a slot lives as long as the
  // state, and commit_mutex_ keeps it from being reset meanwhile.
  boost::container::small_vector<std::pair<std::string_view, Slot*>, 4> tracked;
  {
    std::lock_guard<std::mutex> g(slots_mutex_);
    for (auto& [name, s] : slots_)
      if (s->tracked.load()) tracked.emplace_back(name, s.get());
  }
  boost::container::small_vector<std::unique_lock<oneapi::tbb::rw_mutex>, 4> locks;  // ascending names
  for (auto& [name, s] : tracked) locks.emplace_back(s->lock);
  CommitBatch batch;
  PendingList pending;
  for (auto& [name, s] : tracked) examine(name, *s, batch, pending);
  CommitOutcome outcome{seen_.version, {}, tracked.size()};
  const std::uint64_t before = seen_.version;
  if (!batch.empty()) outcome.version = store.commit(id_, token, batch);
  note_known(batch, outcome.version);
  for (Pending& p : pending) {
    p.slot->in_primary = !p.removed;
    if (p.put == Pending::kNoPut) {
      p.slot->benchmark_bytes = std::string();
      p.slot->benchmark_hashed = false;
    } else {
      // Copies within capacity (examine reserved p.block where the
      // benchmark's does not fit): no allocation here.
      const std::string& bytes = batch.puts[p.put].value;
      if (block_fits(p.slot->benchmark_bytes.capacity(), bytes.size())) {
        p.slot->benchmark_bytes.assign(bytes);
      } else {
        p.block.assign(bytes);
        p.slot->benchmark_bytes.swap(p.block);
      }
      keep_encode_buffer(batch.puts[p.put].value);
      p.slot->benchmark_hash = p.hash;
      p.slot->benchmark_hashed = true;
    }
    p.slot->benchmark_graph = std::move(p.graph);
    p.slot->benchmark_version = outcome.version;
    p.slot->flags = p.flags;
    p.slot->removed = false;
  }
  for (const std::string& n : batch.removes) outcome.written.push_back(n);
  for (const AttributeWrite& w : batch.puts) outcome.written.push_back(w.name);
  for (auto& [name, s] : tracked) s->tracked = false;
  // Only if no other writer committed in between is the whole copy current;
  // otherwise the next refresh reloads what moved (attribute versions tell).
  if (outcome.version == before + 1 || batch.empty()) seen_.version = outcome.version;
  return outcome;
}

}  // namespace shmsession::sync::detail
