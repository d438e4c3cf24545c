// A segment's file on the tmpfs at /dev/shm (where glibc's shm_open puts
// `/NAME`): building a new segment under a draft name and publishing it,
// and finding the processes that have it mapped.
//
// A segment is built under a draft name only its builder uses (the store's
// name, "~creating.", the builder's pid and start time, a count; '~' never
// appears in a store name) and published under the store's name by
// link(2), which never replaces a name. So a creation that fails, at any
// step, removes only its own draft: never a store another process created
// under the name meanwhile, and never a 1-byte leftover (Boost's mark of a
// failed sizing) under the name.
//
// Thread safety: every function may be called from any thread and from
// many processes at once. A builder killed mid-way leaves its draft, which
// the next create of that name removes (remove_abandoned_drafts).
#pragma once

#include <string>
#include <vector>

#include <boost/interprocess/managed_shared_memory.hpp>

#include "shm/store.hpp"

namespace shmsession::shm::detail {

namespace bip = boost::interprocess;

std::string segment_path(const std::string& shm_name);

// A draft name for a new segment `shm_name`, unique to this call.
std::string draft_name(const std::string& shm_name);

// Removes the drafts of `shm_name` whose builder died.
void remove_abandoned_drafts(const std::string& shm_name) noexcept;

// Creates the draft's file and maps it as a new, empty managed segment into
// `segment`; with o.reserve, takes all its pages from memory first.
// Throws: InvalidArgument (too large), Io (including: the memory cannot be
// reserved). The caller removes the draft if this or anything later fails.
void map_draft(bip::managed_shared_memory& segment, const std::string& draft, const std::string& shm_name,
               const CreateOptions& o);

// Makes the `bytes` at `block` (inside the draft mapped in `segment`) read
// as zeros while touching at most the partial pages at its two ends: the
// whole pages between are punched out of the draft's file and, with
// o.reserve, taken from memory again (fresh tmpfs pages read as zeros). So
// a large zeroed block, such as the change log, costs its pages only once
// written, and maps none into the creator. Falls back to writing the zeros
// where the file system cannot punch. Throws: Io (with o.reserve: the
// memory cannot be reserved again).
void clear_draft_block(bip::managed_shared_memory& segment, const std::string& draft, const std::string& shm_name,
                       const CreateOptions& o, void* block, std::uint64_t bytes);

// Puts the built draft in place under `shm_name` (the draft's name stays
// until the caller removes it). Throws: AlreadyExists, Io.
void publish_draft(const std::string& draft, const std::string& shm_name);

// See Store::attached_processes.
std::vector<AttachedProcess> processes_mapping(const std::string& shm_name);

}  // namespace shmsession::shm::detail
