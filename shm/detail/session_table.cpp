#include "shm/detail/session_table.hpp"

#include <xxhash.h>

#include "shm/detail/blob.hpp"
#include "shm/detail/test_hooks.hpp"
#include "shm/session.hpp"

#include <cstring>
#include <new>

namespace shmsession::shm::detail {
namespace {

std::uint64_t bucket_of(const BucketTable* t, std::uint64_t hash) noexcept { return hash & (t->bucket_count - 1); }

}  // namespace

std::uint64_t hash_session_id(std::string_view id) noexcept { return XXH3_64bits(id.data(), id.size()); }

std::uint64_t bucket_table_bytes(std::uint64_t buckets) noexcept {
  return sizeof(BucketTable) + buckets * sizeof(bip::offset_ptr<SessionRecord>);
}

BucketTable* init_bucket_table(void* memory, std::uint64_t buckets, std::uint32_t parity) noexcept {
  auto* t = new (memory) BucketTable{buckets, parity, 0};
  for (std::uint64_t b = 0; b < buckets; ++b) new (&t->heads()[b]) bip::offset_ptr<SessionRecord>(nullptr);
  return t;
}

SessionRecord* find_record(Shard& shard, std::string_view id, std::uint64_t hash) noexcept {
  BucketTable* t = shard.table.get();
  std::uint32_t p = t->parity;
  for (SessionRecord* r = t->heads()[bucket_of(t, hash)].get(); r != nullptr; r = r->next[p].get())
    if (r->hash == hash && record_id(r) == id) return r;
  return nullptr;
}

void link_record(Shard& shard, SessionRecord* record) noexcept {
  BucketTable* t = shard.table.get();
  std::uint32_t p = t->parity;
  auto& head = t->heads()[bucket_of(t, record->hash)];
  record->next[p] = head;
  head = record;  // the publishing store
}

void unlink_record(Shard& shard, SessionRecord* record) noexcept {
  BucketTable* t = shard.table.get();
  std::uint32_t p = t->parity;
  bip::offset_ptr<SessionRecord>* link = &t->heads()[bucket_of(t, record->hash)];
  while (link->get() != nullptr && link->get() != record) link = &link->get()->next[p];
  if (link->get() == record) *link = record->next[p];  // the publishing store
}

bool record_fits(const SessionRecord* r, const SegmentBounds& bounds) noexcept {
  if (!bounds.holds(r)) return false;
  if (r->magic != kRecordMagic || r->id_size == 0 || r->id_size > kMaxSessionIdBytes) return false;
  return bounds.holds(r, sizeof(SessionRecord) + r->id_size);
}

bool table_fits(const BucketTable* t, const SegmentBounds& bounds) noexcept {
  if (!bounds.holds(t)) return false;
  const std::uint64_t n = t->bucket_count;
  if (n == 0 || (n & (n - 1)) != 0 || n > (std::uint64_t{1} << 32) || t->parity > 1) return false;
  return bounds.holds(t, bucket_table_bytes(n));
}

ChainLength measure_chain(SessionRecord* first, std::uint32_t parity, std::uint64_t bucket, std::uint64_t bucket_count,
                          const ShardBounds& where) noexcept {
  auto belongs = [&](const SessionRecord* r) {
    return record_fits(r, where.segment) && (r->hash & (bucket_count - 1)) == bucket &&
           ((r->hash >> 32) & where.shard_mask) == where.shard_index;
  };
  if (first == nullptr) return {};
  if (!belongs(first)) return {0, true, false};
  // Brent: the hare walks the chain; the tortoise waits at the hare's
  // position of the last power of two. Meeting it means a loop of `lam`.
  SessionRecord* tortoise = first;
  SessionRecord* hare = first;
  std::uint64_t index = 0, power = 1, lam = 0;
  for (;;) {
    SessionRecord* next = hare->next[parity].get();
    if (next == nullptr) return {index + 1, false, false};
    if (!belongs(next)) return {index + 1, true, false};
    hare = next;
    ++index;
    ++lam;
    if (hare == tortoise) break;
    if (lam == power) {
      tortoise = hare;
      power *= 2;
      lam = 0;
    }
  }
  // A loop of `lam` records; it starts `mu` records in (every link on the
  // way was checked above).
  tortoise = hare = first;
  for (std::uint64_t i = 0; i < lam; ++i) hare = hare->next[parity].get();
  std::uint64_t mu = 0;
  while (tortoise != hare) {
    tortoise = tortoise->next[parity].get();
    hare = hare->next[parity].get();
    ++mu;
  }
  return {mu + lam, true, true};
}

CheckedFind find_record_checked(Shard& shard, const ShardBounds& where, std::string_view id,
                                std::uint64_t hash) noexcept {
  BucketTable* t = shard.table.get();
  if (!table_fits(t, where.segment)) return {nullptr, true};
  const std::uint32_t p = t->parity;
  const std::uint64_t bucket = bucket_of(t, hash);
  // Brent's loop detection, as in measure_chain, folded into the search.
  SessionRecord* tortoise = nullptr;
  std::uint64_t power = 1, lam = 0;
  for (SessionRecord* r = t->heads()[bucket].get(); r != nullptr; r = r->next[p].get()) {
    if (r == tortoise || !record_fits(r, where.segment) || (r->hash & (t->bucket_count - 1)) != bucket)
      return {nullptr, true};
    if (r->hash == hash && record_id(r) == id) return {r, false};
    if (++lam == power) {
      tortoise = r;
      power *= 2;
      lam = 0;
    }
  }
  return {};
}

bool table_wants_growth(const Shard& shard) noexcept {
  return shard.sessions > shard.table->bucket_count && shard.table->bucket_count < (std::uint64_t{1} << 32);
}

BucketTable* grow_table(Shard& shard, BucketTable* fresh, const ShardBounds& where) noexcept {
  BucketTable* old = shard.table.get();
  if (!table_fits(old, where.segment) || fresh->bucket_count <= old->bucket_count) return nullptr;
  for (std::uint64_t b = 0; b < old->bucket_count; ++b) {  // every link is followed below
    const ChainLength chain = measure_chain(old->heads()[b].get(), old->parity, b, old->bucket_count, where);
    if (chain.cut || chain.cycle) return nullptr;
  }
  fresh->parity = old->parity ^ 1u;
  shard.growing = fresh;
  run_test_hook(HookPoint::kTableGrow);
  std::uint32_t p = old->parity;
  std::uint32_t q = fresh->parity;
  for (std::uint64_t b = 0; b < old->bucket_count; ++b) {
    for (SessionRecord* r = old->heads()[b].get(); r != nullptr; r = r->next[p].get()) {
      auto& head = fresh->heads()[bucket_of(fresh, r->hash)];
      r->next[q] = head;
      head = r;
    }
  }
  shard.table = fresh;  // the publishing store
  shard.growing = nullptr;
  return old;
}

ShardRepair repair_shard_table(Shard& shard, const ShardBounds& where) noexcept {
  ShardRepair repair;
  if (shard.growing && shard.growing.get() != shard.table.get() && table_fits(shard.growing.get(), where.segment))
    repair.abandoned_table = shard.growing.get();
  shard.growing = nullptr;
  BucketTable* t = shard.table.get();
  std::uint64_t sessions = 0, attributes = 0, payload = 0;
  if (!table_fits(t, where.segment)) {
    // Nothing to walk: the counters say so, and check reports the table.
    shard.sessions = shard.attributes = shard.payload_bytes = 0;
    return repair;
  }
  const std::uint32_t p = t->parity;
  for (std::uint64_t b = 0; b < t->bucket_count; ++b) {
    const ChainLength chain = measure_chain(t->heads()[b].get(), p, b, t->bucket_count, where);
    bip::offset_ptr<SessionRecord>* link = &t->heads()[b];
    for (std::uint64_t i = 0; i < chain.records; ++i) {
      SessionRecord* r = link->get();
      BlobHeader* blob = r->blob.get();
      if (blob != nullptr && (!where.segment.holds(blob) || blob->magic != kBlobMagic)) break;  // cut here
      ++sessions;
      if (blob != nullptr) {
        attributes += blob->attr_count;
        // The payload is summed over the entries, so only a table that fits
        // is walked (check counts the same way: it skips what fails).
        if (blob_fits(blob, where.segment)) payload += blob_payload_bytes(blob);
      }
      link = &r->next[p];
    }
    if (link->get() != nullptr) {
      *link = nullptr;  // the rest of the chain cannot be trusted
      ++repair.broken_records;
    }
  }
  shard.sessions = sessions;
  shard.attributes = attributes;
  shard.payload_bytes = payload;
  return repair;
}

}  // namespace shmsession::shm::detail
