// Ack logs: what each worker of the kill campaign saw acknowledged, and the
// supervisor's ledger of what the store must therefore still hold.
//
// A worker appends one line per acknowledged operation, after the store
// call returned, with a single write(2) on a plain file opened O_APPEND:
//   "<kind> <session> <version> <checksum, hex>\n"
// kinds: 'C' a session created (version 0), 'O' a commit to one of its own
// sessions, 'L' a commit under a process lock, 'K' a commit through
// sync::Client. A SIGKILL after the ack loses at most the line being
// written, so the ledger ignores a last line without its newline. Each
// worker incarnation writes its own file, so a restarted worker never
// appends after a torn line.
//
// Thread safety: an AckWriter belongs to one thread; an AckLedger to the
// supervisor's thread. Both are plain files: safe across fork().
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace shmsession::test::crash {

class AckWriter {
 public:
  // Throws: std::runtime_error if the file cannot be opened.
  explicit AckWriter(const std::string& path);
  ~AckWriter();
  AckWriter(const AckWriter&) = delete;
  AckWriter& operator=(const AckWriter&) = delete;

  // Appends one record in one write(2). Throws: std::runtime_error.
  void append(char kind, std::string_view session, std::uint64_t version, std::uint64_t checksum);

 private:
  int fd_ = -1;
};

// The newest acknowledged state of one session: the store must hold this
// version or a later one, and at this version exactly this value.
struct Expectation {
  std::uint64_t version = 0;
  std::uint64_t checksum = 0;
  char kind = 'C';
  std::string log;  // the log that acknowledged it, for messages
};

class AckLedger {
 public:
  // Reads the complete lines `path` gained since the last call. `writer_dead`:
  // no more lines will come, so a partial last line is a record the SIGKILL
  // cut: counted in truncated() and dropped.
  void follow(const std::string& path, bool writer_dead);

  const std::map<std::string, Expectation>& expectations() const noexcept { return sessions_; }
  std::uint64_t records() const noexcept { return records_; }
  std::uint64_t truncated() const noexcept { return truncated_; }
  // Malformed lines, and two acks of one session at one version with
  // different values (a commit acknowledged and then overwritten at the
  // same version is a lost commit).
  const std::vector<std::string>& errors() const noexcept { return errors_; }

 private:
  struct Cursor {
    std::uint64_t offset = 0;
    std::string partial;
    bool closed = false;
  };
  void take_line(const std::string& path, std::string_view line);

  std::unordered_map<std::string, Cursor> cursors_;
  std::map<std::string, Expectation> sessions_;
  std::uint64_t records_ = 0;
  std::uint64_t truncated_ = 0;
  std::vector<std::string> errors_;
};

}  // namespace shmsession::test::crash
