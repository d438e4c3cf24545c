// A session delta: what one commit changed in one session, from the
// benchmark version (base_version) to new_version, as attribute puts, patches
// and removals, each with the checksum of the value it produces. The backup
// agent ships these; a client can write them to the primary state.
//
// encode_delta / decode_delta give a versioned, length-prefixed and
// checksummed frame (diff/delta_format.md). decode_delta takes untrusted
// bytes: it never reads outside them, never allocates more than their size
// (plus a fixed overhead per change), and refuses anything over DeltaLimits
// with CorruptInput naming what is wrong.
//
// Thread safety: all functions are reentrant; distinct objects may be used
// from many threads at once, one object from one thread at a time.
// Cross-process safety: no shared state; frames are plain bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "diff/error.hpp"  // what these functions throw

namespace shmsession::diff {

// XXH3-64 of a value: the same function shm uses for attribute checksums.
std::uint64_t value_checksum(std::string_view value) noexcept;

struct AttributeChange {
  enum class Kind : std::uint8_t { Put = 1, Patch = 2, Remove = 3 };
  std::string name;
  Kind kind = Kind::Put;
  std::string bytes;           // Put: the whole value; Patch: make_patch() output; Remove: empty
  std::uint32_t flags = 0;     // flags of the resulting attribute (0 for Remove)
  std::uint64_t checksum = 0;  // checksum of the resulting value (0 for Remove)

  bool operator==(const AttributeChange&) const = default;
};

struct SessionDelta {
  std::string session_id;
  std::uint64_t base_version = 0;
  std::uint64_t new_version = 0;
  std::vector<AttributeChange> changes;  // one per attribute name

  bool operator==(const SessionDelta&) const = default;
};

// Caps on what a frame may hold; the defaults are shm's own limits.
struct DeltaLimits {
  std::size_t max_frame_bytes = 256u << 20;
  std::size_t max_changes = 65535;
  std::size_t max_value_bytes = 64u << 20;  // a Put value, a patch, and a patch's result
  std::size_t max_name_bytes = 255;
  std::size_t max_id_bytes = 128;
};

// The frame for `delta`; changes are written sorted by name, so
// decode_delta(encode_delta(d)) lists them in that order.
// Throws: RefusedInput when the delta breaks the format or `limits`
// (empty id or name, duplicate name, unknown kind, a Remove with bytes, flags
// or checksum, a size over a cap), so a sender never makes a frame its peer refuses.
std::string encode_delta(const SessionDelta& delta, const DeltaLimits& limits = {});

// The changes of `delta` sorted by name (the order frames carry them),
// after checking the id and each change as encode_delta does.
// Throws: RefusedInput naming what breaks the format or `limits`.
std::vector<const AttributeChange*> checked_changes(const SessionDelta& delta, const DeltaLimits& limits = {});

// Throws: CorruptInput naming what is wrong (bad magic/version, truncated,
// length over a cap, checksum of the frame, a field breaking the format).
SessionDelta decode_delta(std::string_view bytes, const DeltaLimits& limits = {});

// name -> (bytes, flags)
using AttributeMap = std::map<std::string, std::pair<std::string, std::uint32_t>, std::less<>>;

// The change that makes an attribute's value `bytes` with `flags`, from
// `base` (its value before; nullptr: a new attribute): Patch when
// make_patch(*base, bytes) is smaller than the value, else Put.
// Throws: std::bad_alloc only.
AttributeChange make_change(std::string_view name, const std::string* base, std::string_view bytes,
                            std::uint32_t flags);

// Builds a delta from the benchmark's attributes to the new ones; unchanged
// attributes (same bytes and flags) are omitted; for changed ones, Patch when
// make_patch is smaller than the value, else Put.
// Throws: std::bad_alloc only.
SessionDelta make_delta(std::string_view session_id, std::uint64_t base_version, std::uint64_t new_version,
                        const AttributeMap& base, const AttributeMap& target);

// Applies `delta` to `attrs`, which must hold the attributes at
// delta.base_version (the caller checks the version), verifying the checksum
// of every resulting value.
// Throws: CorruptInput on a checksum mismatch, a patch that does not apply,
// a patch or removal of a missing attribute; RefusedInput for a
// delta that breaks the format or `limits` (duplicate name, unknown kind).
// On any exception `attrs` is unchanged (strong guarantee).
void apply_delta(AttributeMap& attrs, const SessionDelta& delta, const DeltaLimits& limits = {});

}  // namespace shmsession::diff
