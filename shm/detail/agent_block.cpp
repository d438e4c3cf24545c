#include "shm/detail/agent_block.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <string_view>
#include <thread>

#include "shm/detail/clock.hpp"
#include "shm/detail/test_hooks.hpp"
#include "shm/error.hpp"

namespace shmsession::shm::detail {
namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;

// The figures copied one to one between an AgentStatus and a copy.
struct Figure {
  std::atomic<std::uint64_t> AgentStatusCopy::*word;
  std::uint64_t AgentStatus::*field;
};
constexpr Figure kFigures[] = {
    {&AgentStatusCopy::updated_unix_ms, &AgentStatus::updated_unix_ms},
    {&AgentStatusCopy::connected_unix_ms, &AgentStatus::connected_unix_ms},
    {&AgentStatusCopy::sent_seq, &AgentStatus::sent_seq},
    {&AgentStatusCopy::acked_seq, &AgentStatus::acked_seq},
    {&AgentStatusCopy::lag_ms, &AgentStatus::lag_ms},
    {&AgentStatusCopy::frames_sent, &AgentStatus::frames_sent},
    {&AgentStatusCopy::frames_per_s, &AgentStatus::frames_per_s},
    {&AgentStatusCopy::wire_bytes, &AgentStatus::wire_bytes},
    {&AgentStatusCopy::delta_bytes, &AgentStatus::delta_bytes},
    {&AgentStatusCopy::whole_bytes, &AgentStatus::whole_bytes},
    {&AgentStatusCopy::full_resyncs, &AgentStatus::full_resyncs},
    {&AgentStatusCopy::partial_resyncs, &AgentStatus::partial_resyncs},
    {&AgentStatusCopy::reconnects, &AgentStatus::reconnects},
    {&AgentStatusCopy::resends, &AgentStatus::resends},
};
constexpr std::size_t kFigureCount = std::size(kFigures);

// `text` cut to at most `limit` bytes, backing off (at most 3 bytes, the
// longest UTF-8 tail) rather than splitting a UTF-8 sequence.
std::string_view cut_text(std::string_view text, std::size_t limit) noexcept {
  if (text.size() <= limit) return text;
  std::size_t n = limit;
  auto continuation = [&](std::size_t i) { return (static_cast<unsigned char>(text[i]) & 0xc0) == 0x80; };
  for (int back = 0; back < 3 && n > 0 && continuation(n); ++back) --n;
  if (continuation(n)) n = limit;  // not UTF-8 at all: cut at the limit
  return text.substr(0, n);
}

// Stores `text` (at most N * 8 - 1 bytes) as length byte + bytes; only the
// words it needs.
template <std::size_t N>
void store_text(std::atomic<std::uint64_t> (&words)[N], std::string_view text) noexcept {
  std::array<unsigned char, N * 8> bytes{};
  bytes[0] = static_cast<unsigned char>(text.size());
  std::memcpy(bytes.data() + 1, text.data(), text.size());
  for (std::size_t i = 0; i * 8 < text.size() + 1; ++i) {
    std::uint64_t word;
    std::memcpy(&word, bytes.data() + i * 8, 8);
    words[i].store(word, kRelaxed);
  }
}

// The words of a text as the reader found them; trusted only once the
// copy's generation is confirmed.
template <std::size_t N>
void load_text(const std::atomic<std::uint64_t> (&words)[N], std::array<unsigned char, N * 8>& bytes) noexcept {
  std::uint64_t first = words[0].load(kRelaxed);
  std::memcpy(bytes.data(), &first, 8);
  const std::size_t length = std::min<std::size_t>(bytes[0], N * 8 - 1);
  for (std::size_t i = 1; i * 8 < length + 1; ++i) {
    std::uint64_t word = words[i].load(kRelaxed);
    std::memcpy(bytes.data() + i * 8, &word, 8);
  }
}

template <std::size_t N>
std::string decode_text(const std::array<unsigned char, N>& bytes) {
  const std::size_t length = std::min<std::size_t>(bytes[0], N - 1);
  return std::string(reinterpret_cast<const char*>(bytes.data()) + 1, length);
}

// One copy's words, taken between the two generation loads.
struct RawCopy {
  std::int32_t pid;
  std::uint32_t claimed;
  std::uint64_t start_time;
  std::uint32_t state;
  std::uint32_t shipped_per_s;
  std::uint64_t started_unix_ms;
  std::uint64_t figures[kFigureCount];
  std::array<unsigned char, kAgentBackupWords * 8> backup;
  std::array<unsigned char, kAgentErrorWords * 8> last_error;
};

void load_words(const AgentStatusCopy& copy, RawCopy& raw) noexcept {
  raw.pid = copy.pid.load(kRelaxed);
  raw.claimed = copy.claimed.load(kRelaxed);
  raw.start_time = copy.start_time.load(kRelaxed);
  raw.state = copy.state.load(kRelaxed);
  raw.shipped_per_s = copy.shipped_per_s.load(kRelaxed);
  raw.started_unix_ms = copy.started_unix_ms.load(kRelaxed);
  for (std::size_t i = 0; i < kFigureCount; ++i) raw.figures[i] = (copy.*kFigures[i].word).load(kRelaxed);
  load_text(copy.backup, raw.backup);
  load_text(copy.last_error, raw.last_error);
}

}  // namespace

AgentClaim current_agent_claim(const AgentStatusBlock& block) noexcept {
  const AgentStatusCopy& copy = block.copies[block.published.load(kRelaxed) % 2];
  return {copy.pid.load(kRelaxed), copy.start_time.load(kRelaxed), copy.started_unix_ms.load(kRelaxed),
          copy.claimed.load(kRelaxed) != 0};
}

void write_agent_status(AgentStatusBlock& block, const AgentClaim& claim, const AgentStatus& status) noexcept {
  const std::uint64_t published = block.published.load(kRelaxed);
  AgentStatusCopy& copy = block.copies[(published + 1) % 2];
  // Odd while writing; a writer that died here left it odd already.
  std::uint64_t generation = copy.generation.load(kRelaxed);
  generation += (generation & 1) != 0 ? 2 : 1;
  copy.generation.store(generation, kRelaxed);
  std::atomic_thread_fence(std::memory_order_release);

  copy.pid.store(claim.pid, kRelaxed);
  copy.claimed.store(claim.held ? 1 : 0, kRelaxed);
  copy.start_time.store(claim.start_time, kRelaxed);
  copy.started_unix_ms.store(claim.started_unix_ms, kRelaxed);
  copy.state.store(static_cast<std::uint32_t>(status.state), kRelaxed);
  copy.shipped_per_s.store(static_cast<std::uint32_t>(std::min<std::uint64_t>(
                               status.shipped_per_s, std::numeric_limits<std::uint32_t>::max())),
                           kRelaxed);
  for (const Figure& f : kFigures) (copy.*f.word).store(status.*f.field, kRelaxed);
  run_test_hook(HookPoint::kAgentStatusWrite);
  if (status.updated_unix_ms == 0) copy.updated_unix_ms.store(unix_ms(), kRelaxed);
  store_text(copy.backup, cut_text(status.backup, kMaxAgentBackupBytes));
  store_text(copy.last_error, cut_text(status.last_error, kMaxAgentErrorBytes));

  copy.generation.store(generation + 1, std::memory_order_release);
  block.published.store(published + 1, std::memory_order_release);
}

// Reads of a copy that a live writer can make fail in a row: far more than
// a writer lapping the reader ever does.
constexpr unsigned kMaxReadAttempts = 1u << 20;

// Runs load(copy) on the current copy until it read the copy consistently.
template <class Load>
void read_consistently(const AgentStatusBlock& block, Load&& load) {
  for (unsigned attempt = 1;; ++attempt) {
    const AgentStatusCopy& copy = block.copies[block.published.load(std::memory_order_acquire) % 2];
    const std::uint64_t before = copy.generation.load(std::memory_order_acquire);
    if ((before & 1) == 0) {
      load(copy);
      std::atomic_thread_fence(std::memory_order_acquire);
      if (copy.generation.load(kRelaxed) == before) return;
    }
    // The writer is rewriting this copy, so it has made the other current.
    if (attempt % 64 == 0) std::this_thread::yield();
    // A writer fills the copy that is not current, so the current one stays
    // half-written only if the segment is damaged: say so, never spin.
    if (attempt == kMaxReadAttempts)
      throw Error(Errc::Corrupt,
                  "the replication agent's status in the segment is damaged (its current copy "
                  "stays half-written); 'shmctl recover --rebuild' makes it readable");
  }
}

AgentLag read_agent_lag(const AgentStatusBlock& block) {
  AgentLag lag;
  read_consistently(block, [&](const AgentStatusCopy& copy) {
    lag.claimed = copy.claimed.load(kRelaxed) != 0;
    lag.updated_unix_ms = copy.updated_unix_ms.load(kRelaxed);
    lag.lag_ms = copy.lag_ms.load(kRelaxed);
    lag.acked_seq = copy.acked_seq.load(kRelaxed);
    lag.shipped_per_s = copy.shipped_per_s.load(kRelaxed);
  });
  return lag;
}

AgentRecord read_agent_status(const AgentStatusBlock& block) {
  RawCopy raw;
  read_consistently(block, [&](const AgentStatusCopy& copy) { load_words(copy, raw); });
  AgentRecord record;
  record.claim = {raw.pid, raw.start_time, raw.started_unix_ms, raw.claimed != 0};
  AgentStatus& s = record.status;
  s.pid = raw.pid;
  s.started_unix_ms = raw.started_unix_ms;
  s.state = static_cast<AgentState>(raw.state);
  s.shipped_per_s = raw.shipped_per_s;
  for (std::size_t i = 0; i < kFigureCount; ++i) s.*kFigures[i].field = raw.figures[i];
  s.backup = decode_text(raw.backup);
  s.last_error = decode_text(raw.last_error);
  return record;
}

}  // namespace shmsession::shm::detail
