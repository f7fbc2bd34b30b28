// Where exporters write: a growing memory buffer or a file that appears only when complete.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "litelens/atomic_file.h"

namespace litelens::detail {

class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual void write(std::span<const std::byte> bytes) = 0;
  /// Overwrites bytes already written (headers whose CRC is known only afterwards).
  virtual void patch(std::uint64_t offset, std::span<const std::byte> bytes) = 0;
  virtual std::uint64_t position() const = 0;
  /// Writes `bytes`, which are the same bytes as `fd`'s file holds at `offset`: a file sink
  /// copies them inside the kernel (copy_file_range) instead of through the memory they are
  /// mapped at. The default writes `bytes`.
  virtual void write_copy(std::span<const std::byte> bytes, int fd, std::uint64_t offset) {
    (void)fd;
    (void)offset;
    write(bytes);
  }

  void write(std::string_view text) { write(std::as_bytes(std::span(text.data(), text.size()))); }
  void write_zeros(std::size_t n);
};

class MemorySink final : public ByteSink {
 public:
  void write(std::span<const std::byte> bytes) override;
  using ByteSink::write;
  void patch(std::uint64_t offset, std::span<const std::byte> bytes) override;
  std::uint64_t position() const override { return data_.size(); }
  std::vector<std::byte> take() { return std::move(data_); }

 private:
  std::vector<std::byte> data_;
};

/// An AtomicFile as a sink: the file appears at `path` only on commit().
class FileSink final : public ByteSink {
 public:
  explicit FileSink(std::filesystem::path path) : file_(std::move(path)) {}
  void write(std::span<const std::byte> bytes) override { file_.write(bytes); }
  using ByteSink::write;
  void patch(std::uint64_t offset, std::span<const std::byte> bytes) override { file_.write_at(offset, bytes); }
  /// Large arrays stored in the model file are copied file to file in the kernel, like cp: writing
  /// them from the model's mapping costs a page fault per page and twice the system time (3.2 GB:
  /// 3.7-5 s against 1.8-2.6 s; BENCHMARKS.md). Whatever the kernel does not copy is written.
  void write_copy(std::span<const std::byte> bytes, int fd, std::uint64_t offset) override {
    const std::uint64_t done = fd >= 0 && bytes.size() >= (std::size_t{1} << 16) ? file_.copy_from(fd, offset, bytes.size()) : 0;
    if (done < bytes.size()) file_.write(bytes.subspan(static_cast<std::size_t>(done)));
  }
  std::uint64_t position() const override { return file_.size(); }
  void commit() { file_.commit(); }

 private:
  AtomicFile file_;
};

/// A folder that appears only when complete: files go into a temporary sibling folder, which
/// commit() renames to `path`. What is at `path` is replaced only when it is an empty folder or
/// an earlier export (litelens manifest.json at the top, otherwise only folders and .npy files);
/// anything else makes the constructor (and commit(), checking again) throw Error(output),
/// leaving it untouched.
class StagedFolder {
 public:
  explicit StagedFolder(std::filesystem::path path);
  ~StagedFolder();
  StagedFolder(const StagedFolder&) = delete;
  StagedFolder& operator=(const StagedFolder&) = delete;
  /// Where to write: inside the temporary folder.
  const std::filesystem::path& staging() const { return staging_; }
  void commit();

 private:
  std::filesystem::path path_;
  std::filesystem::path staging_;
  bool committed_ = false;
};

}  // namespace litelens::detail
