#include "shm/detail/session_table.hpp"

#include <xxhash.h>

#include "shm/detail/test_hooks.hpp"

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

bool table_wants_growth(const Shard& shard) noexcept {
  return shard.sessions > shard.table->bucket_count && shard.table->bucket_count < (std::uint64_t{1} << 32);
}

BucketTable* grow_table(Shard& shard, BucketTable* fresh) noexcept {
  BucketTable* old = shard.table.get();
  if (fresh->bucket_count <= old->bucket_count) return nullptr;
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

ShardRepair repair_shard_table(Shard& shard) noexcept {
  ShardRepair repair;
  if (shard.growing && shard.growing.get() != shard.table.get()) repair.abandoned_table = shard.growing.get();
  shard.growing = nullptr;
  BucketTable* t = shard.table.get();
  std::uint32_t p = t->parity;
  std::uint64_t sessions = 0, attributes = 0, payload = 0;
  for (std::uint64_t b = 0; b < t->bucket_count; ++b) {
    bip::offset_ptr<SessionRecord>* link = &t->heads()[b];
    while (SessionRecord* r = link->get()) {
      BlobHeader* blob = r->blob.get();
      if (r->magic != kRecordMagic || (blob != nullptr && blob->magic != kBlobMagic)) {
        *link = nullptr;  // the rest of the chain cannot be trusted
        ++repair.broken_records;
        break;
      }
      ++sessions;
      if (blob != nullptr) {
        attributes += blob->attr_count;
        payload += blob->payload_bytes;
      }
      link = &r->next[p];
    }
  }
  shard.sessions = sessions;
  shard.attributes = attributes;
  shard.payload_bytes = payload;
  return repair;
}

}  // namespace shmsession::shm::detail
