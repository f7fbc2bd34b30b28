#include "mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "litelens/error.h"

namespace litelens::detail {

namespace {
[[noreturn]] void fail(const std::string& path, const char* what, int err) {
  throw Error(ErrorKind::io, path, std::string(what) + ": " + std::strerror(err));
}
}  // namespace

MappedFile::MappedFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, "cannot open", errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail(path, "cannot stat", err);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(ErrorKind::io, path, "not a regular file");
  }
  size_ = static_cast<std::uint64_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      fail(path, "cannot map", err);
    }
    data_ = static_cast<const std::byte*>(p);
    // Reading the metadata must not pull the weights in: without this, the kernel's read-ahead
    // (8 MiB on some disks) loads everything near the FlatBuffer. Model::open gives the weights
    // normal read-ahead back once the checks are done (read_ahead_normally), and readers of a
    // whole range ask for it at once with will_need().
    ::madvise(p, size_, MADV_RANDOM);
  }
  fd_ = fd;
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)),
      fd_(std::exchange(other.fd_, -1)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

MappedFile::~MappedFile() { release(); }

void MappedFile::release() noexcept {
  if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
  if (fd_ >= 0) ::close(fd_);
  data_ = nullptr;
  size_ = 0;
  fd_ = -1;
}

std::uintptr_t page_size() noexcept { return static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE)); }

namespace {

// Each flag change can split the mapping into more kernel areas (VMAs), and a process has a
// limited number of them (vm.max_map_count, 65530 by default): a hostile file with thousands of
// far-apart buffers must not use them up. Areas under 1 MiB are not worth a flag: fault-around
// maps 64 KiB of cached pages per fault anyway.
constexpr std::uint64_t kReadAheadMinimum = std::uint64_t{1} << 20;
constexpr std::size_t kReadAheadAreas = 64;

}  // namespace

// Measured on a 1 GiB tensor read cold, one byte per page (a 2-CPU KVM guest, virtio disk):
// random access 14-15 s (every page a separate synchronous read), normal read-ahead 0.5-2.5 s.
void MappedFile::read_ahead_normally(std::vector<std::pair<std::uint64_t, std::uint64_t>> spans) const {
  const std::uint64_t page = page_size();
  // Byte spans first, merged across the alignment padding between neighbouring buffers, so
  // that a file's weights usually become one area; then shrunk to the whole pages inside them,
  // so that pages shared with metadata keep random access.
  std::erase_if(spans, [&](const auto& s) { return s.first >= s.second || s.second > size_; });
  std::sort(spans.begin(), spans.end());
  std::vector<std::pair<std::uint64_t, std::uint64_t>> areas;  // whole pages
  for (std::size_t i = 0; i < spans.size();) {
    auto [begin, end] = spans[i];
    for (++i; i < spans.size() && spans[i].first < end + page; ++i) end = std::max(end, spans[i].second);
    const std::uint64_t first = (begin + page - 1) / page * page, last = end / page * page;
    if (last > first && last - first >= kReadAheadMinimum) areas.emplace_back(first, last);
  }
  // The largest areas hold the weights worth reading ahead; the rest keep random access.
  const auto larger = [](const auto& a, const auto& b) { return a.second - a.first > b.second - b.first; };
  if (areas.size() > kReadAheadAreas) {
    std::nth_element(areas.begin(), areas.begin() + kReadAheadAreas, areas.end(), larger);
    areas.resize(kReadAheadAreas);
  }
  for (const auto& [first, last] : areas)
    ::madvise(const_cast<std::byte*>(data_) + first, last - first, MADV_NORMAL);  // a hint: errors are harmless
}

void will_need(std::span<const std::byte> bytes) noexcept {
  if (bytes.empty()) return;
  const auto page = page_size();
  const auto begin = reinterpret_cast<std::uintptr_t>(bytes.data()) / page * page;
  const auto end = reinterpret_cast<std::uintptr_t>(bytes.data() + bytes.size());
  ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_WILLNEED);  // a hint: errors are harmless
}

}  // namespace litelens::detail
