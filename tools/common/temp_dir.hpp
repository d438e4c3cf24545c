// A private directory under /tmp for one run (a test, a benchmark), removed
// with everything in it when the TempDir goes away, also when the run
// fails; and reading or writing a whole small file (a server's
// configuration, its log).
//
// Thread safety: a TempDir belongs to the thread that made it; write_file
// is a free function.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <system_error>

namespace shmsession::tools {

class TempDir {
 public:
  // The directory is /tmp/<prefix>.XXXXXX. Throws std::runtime_error if it
  // cannot be made.
  explicit TempDir(const std::string& prefix) {
    std::string name = "/tmp/" + prefix + ".XXXXXX";
    if (::mkdtemp(name.data()) == nullptr) throw std::runtime_error("mkdtemp " + name + " failed");
    path_ = name;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

// The whole file at `path` ("" if it cannot be read): a server's log, a
// pid it wrote.
inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Replaces the file at `path` with `text`. Throws std::runtime_error if it
// cannot be written.
inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out.flush()) throw std::runtime_error("cannot write " + path);
}

}  // namespace shmsession::tools
