// Damaging a store's segment in place, as a stray write or a failing DIMM
// would: for tests of what the store, the client and the tools do with
// bytes that no longer match their checksums or links.
//
// Thread safety: call while no process writes the store (the bytes are
// changed without any lock). Header-only.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace shmsession::test {

// The bytes of /dev/shm/<store>, mapped shared (writes land in the store).
class MappedSegment {
 public:
  explicit MappedSegment(const std::string& store) {
    const int fd = ::open(("/dev/shm/" + store).c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("cannot open the segment of " + store);
    struct stat st {};
    ::fstat(fd, &st);
    size_ = static_cast<std::size_t>(st.st_size);
    void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) throw std::runtime_error("cannot map the segment of " + store);
    data_ = static_cast<unsigned char*>(p);
  }
  ~MappedSegment() { ::munmap(data_, size_); }
  MappedSegment(const MappedSegment&) = delete;
  MappedSegment& operator=(const MappedSegment&) = delete;

  unsigned char* data() noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }

  // Offsets of every occurrence of `needle`.
  std::vector<std::size_t> find_all(std::string_view needle) const {
    std::vector<std::size_t> at;
    const unsigned char* p = data_;
    const unsigned char* end = data_ + size_;
    while (p < end) {
      void* hit = ::memmem(p, static_cast<std::size_t>(end - p), needle.data(), needle.size());
      if (hit == nullptr) break;
      at.push_back(static_cast<std::size_t>(static_cast<unsigned char*>(hit) - data_));
      p = static_cast<unsigned char*>(hit) + 1;
    }
    return at;
  }

 private:
  unsigned char* data_ = nullptr;
  std::size_t size_ = 0;
};

// Flips the bits of `mask` in byte `at` of every occurrence of `needle` (a
// value distinctive enough to occur only where the store keeps it) in the
// store's segment; returns how many occurrences were changed.
inline std::size_t flip_in_segment(const std::string& store, std::string_view needle, std::size_t at = 0,
                                   unsigned char mask = 0x01) {
  MappedSegment segment(store);
  std::vector<std::size_t> hits = segment.find_all(needle);
  for (std::size_t offset : hits) segment.data()[offset + at] ^= mask;
  return hits.size();
}

// Breaks one chain link of the session table: finds a record (ids of 1 to
// 3 bytes) with a successor and flips bit 54 of its parity-0 link, which
// then points 2^54 bytes away; the records after it are cut off their
// chain. Layout (segment_format.hpp): SessionRecord is 72 bytes, magic
// "SESS" first, id size at 4, the parity-0 link at 48 (an offset_ptr: the
// distance to the next record, 1 for none). Returns false if no record
// has a successor.
inline bool break_a_chain_link(MappedSegment& segment) {
  for (std::size_t at = 0; at + 72 <= segment.size(); at += 8) {
    std::uint32_t magic = 0;
    std::uint16_t id_size = 0;
    std::int64_t link = 0;
    std::memcpy(&magic, segment.data() + at, 4);
    std::memcpy(&id_size, segment.data() + at + 4, 2);
    std::memcpy(&link, segment.data() + at + 48, 8);
    if (magic == 0x53455353u && id_size > 0 && id_size <= 3 && link != 1) {
      segment.data()[at + 48 + 6] ^= 0x40;
      return true;
    }
  }
  return false;
}

}  // namespace shmsession::test
