#include "shm/detail/blob.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>

#include "shm/detail/names.hpp"
#include "shm/error.hpp"

namespace shmsession::shm::detail {
namespace {

constexpr std::uint64_t round_up8(std::uint64_t n) { return (n + 7) & ~std::uint64_t{7}; }

// Walks the current entries and the batch ops in name order, calling
// keep(entry) for an untouched attribute and put(op) for a written one.
template <typename Keep, typename Put>
void merge_walk(const BlobHeader* current, const PreparedBatch& batch, Keep&& keep, Put&& put) {
  const AttributeEntry* entries = current ? blob_entries(current) : nullptr;
  std::uint32_t n = current ? current->attr_count : 0;
  std::uint32_t i = 0;
  std::size_t j = 0;
  while (i < n || j < batch.ops.size()) {
    int cmp;
    if (i == n) {
      cmp = 1;
    } else if (j == batch.ops.size()) {
      cmp = -1;
    } else {
      cmp = entry_name(current, entries[i]).compare(batch.ops[j].name);
    }
    if (cmp < 0) {
      keep(entries[i++]);
      continue;
    }
    const PreparedOp& op = batch.ops[j++];
    if (cmp == 0) ++i;
    if (!op.remove) put(op);
  }
}

}  // namespace

std::uint64_t value_checksum(std::string_view value) noexcept { return attribute_checksum(value); }

PreparedBatch prepare_batch(const CommitBatch& batch) {
  PreparedBatch prepared;
  prepared.ops.reserve(batch.puts.size() + batch.removes.size());
  for (const AttributeWrite& w : batch.puts) {
    validate_attribute_name(w.name);
    if ((w.flags & ~kAttributeFlagsMask) != 0)
      throw Error(Errc::InvalidArgument, "attribute '" + w.name + "' has flags " + std::to_string(w.flags) +
                                             "; a store keeps only the low 16 bits (kAttributeFlagsMask)");
    if (w.value.size() > kMaxAttributeValueBytes)
      throw Error(Errc::InvalidArgument, "attribute '" + w.name + "' is " + std::to_string(w.value.size()) +
                                             " bytes, more than the limit of " +
                                             std::to_string(kMaxAttributeValueBytes));
    prepared.ops.push_back(
        {w.name, w.value, w.flags, stored_checksum(w.checksum ? *w.checksum : value_checksum(w.value)), false});
  }
  for (const std::string& name : batch.removes) {
    validate_attribute_name(name);
    prepared.ops.push_back({name, {}, 0, 0, true});
  }
  std::sort(prepared.ops.begin(), prepared.ops.end(),
            [](const PreparedOp& a, const PreparedOp& b) { return a.name < b.name; });
  auto dup = std::adjacent_find(prepared.ops.begin(), prepared.ops.end(),
                                [](const PreparedOp& a, const PreparedOp& b) { return a.name == b.name; });
  if (dup != prepared.ops.end())
    throw Error(Errc::InvalidArgument, "attribute '" + std::string(dup->name) + "' appears twice in one commit");
  return prepared;
}

MergePlan plan_merge(const BlobHeader* current, const PreparedBatch& batch) {
  MergePlan plan;
  std::uint64_t bytes = 0;
  merge_walk(
      current, batch,
      [&](const AttributeEntry& e) {
        ++plan.attr_count;
        bytes += e.name_size + e.value_size;
      },
      [&](const PreparedOp& op) {
        ++plan.attr_count;
        bytes += op.name.size() + op.value.size();
        plan.changes = true;
      });
  // A removal changes the session only if the attribute existed.
  std::uint32_t before = current ? current->attr_count : 0;
  std::uint64_t puts = 0;
  for (const PreparedOp& op : batch.ops) puts += op.remove ? 0 : 1;
  if (plan.attr_count != before + puts) plan.changes = true;
  if (plan.attr_count > kMaxAttributesPerSession)
    throw Error(Errc::InvalidArgument, "a session may hold at most " + std::to_string(kMaxAttributesPerSession) +
                                           " attributes; this commit would leave " + std::to_string(plan.attr_count));
  plan.size = round_up8(sizeof(BlobHeader) + std::uint64_t{plan.attr_count} * sizeof(AttributeEntry) + bytes);
  if (plan.size >= (std::uint64_t{1} << 32))  // entries and the header hold 32-bit offsets and sizes
    throw Error(Errc::InvalidArgument,
                "a session may hold at most 4 GiB; this commit would make it " + std::to_string(plan.size) + " bytes");
  return plan;
}

void build_blob(void* memory, std::uint64_t capacity, const MergePlan& plan, const BlobHeader* current,
                const PreparedBatch& batch, std::uint64_t version, std::uint64_t commit_seq) {
  auto* b = static_cast<BlobHeader*>(memory);
  char* base = static_cast<char*>(memory);
  auto* entries = reinterpret_cast<AttributeEntry*>(b + 1);
  std::uint64_t cursor = sizeof(BlobHeader) + std::uint64_t{plan.attr_count} * sizeof(AttributeEntry);
  std::uint32_t n = 0;
  // Sizes fit their fields: plan_merge keeps the blob < 4 GiB, names are
  // at most 255 bytes and flags 16 bits (prepare_batch, or a blob that
  // passed blob_fits).
  auto append = [&](std::string_view name, std::string_view value, std::uint64_t v, std::uint32_t sum,
                    std::uint32_t flags) {
    AttributeEntry& e = entries[n++];
    e = AttributeEntry{};
    e.name_size = static_cast<std::uint8_t>(name.size());
    std::memcpy(base + cursor, name.data(), name.size());
    cursor += name.size();
    e.value_offset = static_cast<std::uint32_t>(cursor);
    e.value_size = static_cast<std::uint32_t>(value.size());
    if (!value.empty()) std::memcpy(base + cursor, value.data(), value.size());
    cursor += value.size();
    e.version = v;
    e.checksum = sum;
    e.flags = static_cast<std::uint16_t>(flags);
  };
  merge_walk(
      current, batch,
      [&](const AttributeEntry& e) {
        append(entry_name(current, e), entry_value(current, e), e.version, e.checksum, e.flags);
      },
      [&](const PreparedOp& op) { append(op.name, op.value, version, op.checksum, op.flags); });
  b->attr_count = n;
  b->version = version;
  b->size = static_cast<std::uint32_t>(plan.size);
  b->commit_seq = commit_seq;
  b->capacity =
      static_cast<std::uint32_t>(std::min<std::uint64_t>(capacity, std::numeric_limits<std::uint32_t>::max()));
  b->magic = kBlobMagic;
}

const AttributeEntry* find_entry(const BlobHeader* b, std::string_view name) noexcept {
  const AttributeEntry* first = blob_entries(b);
  const AttributeEntry* last = first + b->attr_count;
  const AttributeEntry* it = std::lower_bound(
      first, last, name, [b](const AttributeEntry& e, std::string_view n) { return entry_name(b, e) < n; });
  return (it != last && entry_name(b, *it) == name) ? it : nullptr;
}

void copy_attributes(const BlobHeader* b, const SegmentBounds& bounds, std::string_view id,
                     std::span<const std::string_view> names, std::vector<Attribute>& out,
                     std::span<const KnownAttribute> known) {
  if (b != nullptr && !blob_fits(b, bounds))
    throw Error(Errc::Corrupt, "session '" + std::string(id) +
                                   "' is damaged in the segment (its attribute table fails its bounds); "
                                   "run 'shmctl check'");
  std::size_t n = 0;
  auto held = [&](std::string_view name, std::uint64_t version) {
    auto it = std::lower_bound(known.begin(), known.end(), name,
                               [](const KnownAttribute& k, std::string_view n) { return k.name < n; });
    return it != known.end() && it->name == name && it->version == version;
  };
  auto emit = [&](const AttributeEntry& e) {
    const std::string_view name = entry_name(b, e);
    const bool omit = !known.empty() && held(name, e.version);
    const std::string_view value = omit ? std::string_view() : entry_value(b, e);
    if (!omit && stored_checksum(value_checksum(value)) != e.checksum)
      throw Error(Errc::Corrupt, "attribute '" + std::string(name) + "' of session '" + std::string(id) +
                                     "' fails its checksum (the segment is damaged); run 'shmctl check'");
    if (n == out.size()) out.emplace_back();
    Attribute& a = out[n++];
    a.name.assign(name);
    a.value.assign(value);
    a.version = e.version;
    a.flags = e.flags;
    a.value_omitted = omit;
  };
  if (b != nullptr) {
    if (names.empty()) {
      const AttributeEntry* entries = blob_entries(b);
      for (std::uint32_t i = 0; i < b->attr_count; ++i) emit(entries[i]);
    } else {
      for (std::string_view name : names)
        if (const AttributeEntry* e = find_entry(b, name)) emit(*e);
      std::sort(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n),
                [](const Attribute& x, const Attribute& y) { return x.name < y.name; });
    }
  }
  out.resize(n);
}

std::uint64_t blob_payload_bytes(const BlobHeader* b) noexcept {
  std::uint64_t total = 0;
  const AttributeEntry* entries = blob_entries(b);
  for (std::uint32_t i = 0; i < b->attr_count; ++i) total += entries[i].value_size;
  return total;
}

bool blob_fits(const BlobHeader* b, const SegmentBounds& bounds) noexcept {
  if (!bounds.holds(b)) return false;
  if (b->magic != kBlobMagic || b->size > bounds.room(b) || b->size > b->capacity) return false;
  if (b->attr_count > kMaxAttributesPerSession) return false;
  const std::uint64_t table_end = sizeof(BlobHeader) + std::uint64_t{b->attr_count} * sizeof(AttributeEntry);
  if (table_end > b->size) return false;
  const AttributeEntry* entries = blob_entries(b);
  for (std::uint32_t i = 0; i < b->attr_count; ++i) {
    const AttributeEntry& e = entries[i];
    // The name lies just before the value, both after the table.
    if (e.value_offset < table_end + std::uint64_t{e.name_size} || e.value_size > b->size ||
        e.value_offset > b->size - e.value_size)
      return false;
  }
  return true;
}

bool blob_is_sound(const BlobHeader* b, const SegmentBounds& bounds) noexcept {
  if (!blob_fits(b, bounds)) return false;
  const AttributeEntry* entries = blob_entries(b);
  for (std::uint32_t i = 0; i < b->attr_count; ++i)
    if (stored_checksum(value_checksum(entry_value(b, entries[i]))) != entries[i].checksum) return false;
  return true;
}

}  // namespace shmsession::shm::detail
