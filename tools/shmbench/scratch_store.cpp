#include "tools/shmbench/scratch_store.hpp"

#include <unistd.h>

#include "tools/shmbench/interrupt_cleanup.hpp"

namespace shmsession::bench {

namespace {

CreateOptions sized(std::uint64_t size_bytes) {
  CreateOptions options;
  options.size_bytes = size_bytes;
  return options;
}

}  // namespace

ScratchStore::ScratchStore(std::string_view tag, std::uint64_t size_bytes) : ScratchStore(tag, sized(size_bytes)) {}

ScratchStore::ScratchStore(std::string_view tag, const CreateOptions& options)
    : name_("shmbench_" + std::to_string(::getpid()) + "_" + std::string(tag)), owner_(::getpid()) {
  Store::remove(name_);  // a leftover of a crashed run that had our pid
  // Registered before creating: an interrupt during creation leaves nothing.
  cleanup_slot_ = register_segment_cleanup("/" + name_);
  try {
    store_.emplace(Store::create(name_, options));
  } catch (...) {
    Store::remove(name_);
    unregister_cleanup(cleanup_slot_);
    throw;
  }
}

ScratchStore::~ScratchStore() {
  if (::getpid() != owner_) return;
  store_.reset();
  try {
    Store::remove(name_);
  } catch (...) {
    // Nothing useful to do in a destructor; the name is unique to this run.
  }
  unregister_cleanup(cleanup_slot_);
}

}  // namespace shmsession::bench
