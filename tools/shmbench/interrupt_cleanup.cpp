#include "tools/shmbench/interrupt_cleanup.hpp"

#include <signal.h>
#include <sys/mman.h>

#include <array>
#include <atomic>
#include <cstring>

namespace shmsession::bench {

namespace {

enum class SlotKind : int { Free = 0, Segment = 1, Process = 2 };

struct CleanupSlot {
  std::atomic<int> kind{0};  // published after the payload is written
  pid_t pid = -1;
  char name[256] = {};
};

constexpr int kSlots = 8;
std::array<CleanupSlot, kSlots> g_slots;
constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};

static_assert(std::atomic<int>::is_always_lock_free, "read from a signal handler");

extern "C" void on_interrupt(int signal_number) {
  for (auto& slot : g_slots) {
    const int kind = slot.kind.load(std::memory_order_acquire);
    if (kind == static_cast<int>(SlotKind::Segment)) ::shm_unlink(slot.name);
    if (kind == static_cast<int>(SlotKind::Process)) ::kill(slot.pid, SIGTERM);
  }
  ::signal(signal_number, SIG_DFL);
  ::raise(signal_number);
}

int claim_slot(SlotKind kind, pid_t pid, std::string_view name) {
  if (name.size() >= sizeof(CleanupSlot::name)) return -1;
  for (int i = 0; i < kSlots; ++i) {
    CleanupSlot& slot = g_slots[i];
    if (slot.kind.load(std::memory_order_relaxed) != static_cast<int>(SlotKind::Free)) continue;
    slot.pid = pid;
    std::memcpy(slot.name, name.data(), name.size());
    slot.name[name.size()] = '\0';
    slot.kind.store(static_cast<int>(kind), std::memory_order_release);
    return i;
  }
  return -1;
}

}  // namespace

void install_interrupt_cleanup() {
  struct sigaction action {};
  action.sa_handler = &on_interrupt;
  sigemptyset(&action.sa_mask);
  for (int signal_number : kSignals) sigaddset(&action.sa_mask, signal_number);
  for (int signal_number : kSignals) ::sigaction(signal_number, &action, nullptr);
}

int register_segment_cleanup(std::string_view shm_object_name) {
  return claim_slot(SlotKind::Segment, -1, shm_object_name);
}

int register_process_cleanup(pid_t pid) { return claim_slot(SlotKind::Process, pid, {}); }

void unregister_cleanup(int slot) noexcept {
  if (slot >= 0 && slot < kSlots) g_slots[slot].kind.store(static_cast<int>(SlotKind::Free), std::memory_order_release);
}

}  // namespace shmsession::bench
