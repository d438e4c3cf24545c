#include "shm/detail/segment_file.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <type_traits>

#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/managed_mapped_file.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include "shm/detail/process_identity.hpp"

namespace shmsession::shm::detail {

namespace {

std::string describe_ipc_error(const bip::interprocess_exception& e) {
  return std::string(e.what()) + " (" + shmsession::errno_text(e.get_native_error()) + ")";
}

constexpr std::string_view kDraftInfix = "~creating.";

// Takes the draft's pages in [offset, offset + size) from tmpfs now (see
// CreateOptions::reserve). Throws: Io (not enough memory in /dev/shm or the
// memory cgroup).
void reserve_pages(const std::string& draft, const std::string& shm_name, std::uint64_t offset, std::uint64_t size) {
  int fd = ::open(segment_path(draft).c_str(), O_RDWR | O_CLOEXEC);
  int err = fd < 0 ? errno : 0;
  if (fd >= 0) {
    do err = ::posix_fallocate(fd, static_cast<off_t>(offset), static_cast<off_t>(size));
    while (err == EINTR);
    ::close(fd);
  }
  if (err != 0)
    throw Error(Errc::Io, "cannot reserve " + std::to_string(size) + " bytes of memory for store '" + shm_name +
                              "' in /dev/shm: " + shmsession::errno_text(err) +
                              " (create it smaller, or without reserving its memory)");
}

// Punches [offset, offset + size) out of the draft's file: those bytes then
// read as zeros, and take memory again only once touched. False if the file
// system cannot (the caller then writes the zeros).
bool punch_pages(const std::string& draft, std::uint64_t offset, std::uint64_t size) noexcept {
  int fd = ::open(segment_path(draft).c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  int rc = 0;
  do
    rc = ::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                     static_cast<off_t>(size));
  while (rc != 0 && errno == EINTR);
  ::close(fd);
  return rc == 0;
}

// Whether a /proc/<pid>/maps line maps the file (dev, ino) or, by its path,
// one of the store's drafts: "start-end perms offset major:minor inode path".
bool maps_segment(std::string_view line, dev_t dev, ino_t ino, std::string_view draft_prefix) {
  std::size_t field = 0, pos = 0;
  std::string_view fields[6];
  while (field < 6 && pos < line.size()) {
    while (pos < line.size() && line[pos] == ' ') ++pos;
    std::size_t end = field == 5 ? line.size() : line.find(' ', pos);
    if (end == std::string_view::npos) end = line.size();
    fields[field++] = line.substr(pos, end - pos);
    pos = end;
  }
  if (field < 5) return false;
  if (field == 6 && fields[5].substr(0, draft_prefix.size()) == draft_prefix) return true;
  unsigned major = 0, minor = 0;
  std::uint64_t inode = 0;
  std::string_view device = fields[3];
  std::size_t colon = device.find(':');
  if (colon == std::string_view::npos) return false;
  if (std::from_chars(device.data(), device.data() + colon, major, 16).ec != std::errc{} ||
      std::from_chars(device.data() + colon + 1, device.data() + device.size(), minor, 16).ec != std::errc{} ||
      std::from_chars(fields[4].data(), fields[4].data() + fields[4].size(), inode).ec != std::errc{})
    return false;
  return inode == ino && major == ::major(dev) && minor == ::minor(dev);
}

std::string read_small_file(const std::string& path) {
  std::string out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[64 << 10];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR);)
    if (n > 0) out.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return out;
}

}  // namespace

std::string segment_path(const std::string& shm_name) { return "/dev/shm/" + shm_name; }

std::string draft_name(const std::string& shm_name) {
  static std::atomic<std::uint64_t> drafts{0};
  const ProcessIdentity self = self_identity();
  return shm_name + std::string(kDraftInfix) + std::to_string(self.pid) + "." + std::to_string(self.start_time) + "." +
         std::to_string(drafts.fetch_add(1, std::memory_order_relaxed));
}

// (A dead builder's draft would hold its reserved memory until a reboot.)
void remove_abandoned_drafts(const std::string& shm_name) noexcept {
  const std::string prefix = shm_name + std::string(kDraftInfix);
  DIR* dir = ::opendir("/dev/shm");
  if (dir == nullptr) return;
  while (const dirent* entry = ::readdir(dir)) {
    std::string_view file(entry->d_name);
    if (file.substr(0, prefix.size()) != prefix) continue;
    std::string_view rest = file.substr(prefix.size());
    pid_t pid = 0;
    std::uint64_t start_time = 0;
    auto [dot, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), pid);
    if (ec != std::errc{} || dot == rest.data() + rest.size() || *dot != '.') continue;
    if (std::from_chars(dot + 1, rest.data() + rest.size(), start_time).ec != std::errc{}) continue;
    if (!process_alive(pid, start_time)) bip::shared_memory_object::remove(std::string(file).c_str());
  }
  ::closedir(dir);
}

void map_draft(bip::managed_shared_memory& segment, const std::string& draft, const std::string& shm_name,
               const CreateOptions& o) {
  // The same Boost segment layout either way, so the draft built through a
  // file mapping is attached as shared memory below.
  static_assert(std::is_same_v<bip::managed_mapped_file::segment_manager, bip::managed_shared_memory::segment_manager>);
  bip::permissions perm;
  perm.set_permissions(o.mode);
  try {
    // Through a file mapping, which sizes the file with ftruncate: Boost's
    // shared-memory object posix_fallocate()s the whole size itself, so a
    // store could not be created without reserving its memory.
    bip::managed_mapped_file file(bip::create_only, segment_path(draft).c_str(), o.size_bytes, nullptr, perm);
    if (o.reserve) reserve_pages(draft, shm_name, 0, o.size_bytes);
    segment = bip::managed_shared_memory(bip::open_only, draft.c_str());
  } catch (const bip::interprocess_exception& e) {
    if (e.get_error_code() == bip::size_error)
      throw Error(Errc::InvalidArgument, "segment size " + std::to_string(o.size_bytes) + " is too large");
    throw Error(Errc::Io, "cannot create store '" + shm_name + "': " + describe_ipc_error(e));
  }
}

void clear_draft_block(bip::managed_shared_memory& segment, const std::string& draft, const std::string& shm_name,
                       const CreateOptions& o, void* block, std::uint64_t bytes) {
  const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  auto* const start = static_cast<char*>(block);
  // Offsets in the draft's file, which the segment maps from its start.
  const auto begin = static_cast<std::uint64_t>(start - static_cast<char*>(segment.get_address()));
  const std::uint64_t end = begin + bytes;
  const std::uint64_t inner_begin = (begin + page - 1) / page * page;
  const std::uint64_t inner_end = end / page * page;
  if (inner_end > inner_begin && punch_pages(draft, inner_begin, inner_end - inner_begin)) {
    if (o.reserve) reserve_pages(draft, shm_name, inner_begin, inner_end - inner_begin);
    std::memset(start, 0, inner_begin - begin);
    std::memset(start + (inner_end - begin), 0, end - inner_end);
    return;
  }
  std::memset(start, 0, bytes);
}

void publish_draft(const std::string& draft, const std::string& shm_name) {
  if (::link(segment_path(draft).c_str(), segment_path(shm_name).c_str()) == 0) return;
  if (errno == EEXIST) throw Error(Errc::AlreadyExists, "store '" + shm_name + "' already exists");
  throw Error(Errc::Io, "cannot create store '" + shm_name + "': " + shmsession::errno_text(errno));
}

std::vector<AttachedProcess> processes_mapping(const std::string& shm_name) {
  std::vector<AttachedProcess> out;
  struct stat st {};
  if (::stat(segment_path(shm_name).c_str(), &st) != 0) return out;
  const std::string draft_prefix = segment_path(shm_name) + "~";
  const pid_t self = ::getpid();
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) throw Error(Errc::Io, std::string("cannot list /proc: ") + shmsession::errno_text(errno));
  while (const dirent* entry = ::readdir(proc)) {
    pid_t pid = 0;
    std::string_view file(entry->d_name);
    if (std::from_chars(file.data(), file.data() + file.size(), pid).ec != std::errc{} || pid == self) continue;
    const std::string dir = "/proc/" + std::string(file);
    const std::string maps = read_small_file(dir + "/maps");  // empty: gone, a kernel thread, or not ours to read
    bool mapped = false;
    for (std::size_t pos = 0; !mapped && pos < maps.size();) {
      std::size_t end = maps.find('\n', pos);
      if (end == std::string::npos) end = maps.size();
      mapped = maps_segment(std::string_view(maps).substr(pos, end - pos), st.st_dev, st.st_ino, draft_prefix);
      pos = end + 1;
    }
    if (!mapped) continue;
    std::string command = read_small_file(dir + "/comm");
    while (!command.empty() && command.back() == '\n') command.pop_back();
    out.push_back({pid, std::move(command)});
  }
  ::closedir(proc);
  std::sort(out.begin(), out.end(), [](const AttachedProcess& a, const AttachedProcess& b) { return a.pid < b.pid; });
  return out;
}

}  // namespace shmsession::shm::detail
