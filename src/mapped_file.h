// A read-only memory mapping of a whole file and its open descriptor (RAII, move-only). The
// descriptor is kept so that whole-range reads (export's copies and checksums) can go through
// the file itself: it names exactly the mapped file, whatever the path names later.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace litelens::detail {

class MappedFile {
 public:
  /// Maps `path` read-only. Throws litelens::Error(io) naming `path`.
  explicit MappedFile(const std::string& path);
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const std::byte* data() const noexcept { return data_; }
  std::uint64_t size() const noexcept { return size_; }
  /// The mapped file, open read-only (close-on-exec) for as long as this object lives.
  int descriptor() const noexcept { return fd_; }

  /// Gives the file's weights, byte spans [begin, end), the kernel's normal read-ahead back: the
  /// mapping starts as random access, so that reading metadata pulls in no weights. At most 64
  /// areas of 1 MiB or more (merged neighbours) are changed; spans past the end are ignored.
  void read_ahead_normally(std::vector<std::pair<std::uint64_t, std::uint64_t>> spans) const;

 private:
  void release() noexcept;
  const std::byte* data_ = nullptr;
  std::uint64_t size_ = 0;
  int fd_ = -1;
};

/// The OS's memory page size.
std::uintptr_t page_size() noexcept;

/// Asks the OS to read `bytes` (inside a mapping) ahead of use; memory from new[] is fine too.
void will_need(std::span<const std::byte> bytes) noexcept;

}  // namespace litelens::detail
