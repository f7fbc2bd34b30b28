// litelens/atomic_file.h: write an output file so that it appears complete or not at all.
//
// Every file litelens writes goes through here (or follows the same rules):
// - the bytes go to a temporary file created in the target's own folder (".<name>.tmp-XXXXXX"),
//   so the final rename cannot cross file systems and is atomic;
// - commit() flushes the data to disk (fsync), closes, renames the temporary over the target,
//   and syncs the folder; an existing target is replaced only at that moment;
// - on any failure (missing folder, permission denied, no space left, a file-size limit, a
//   failed rename) the temporary file is removed, the target is left as it was, and
//   litelens::Error(ErrorKind::output, <target path>, "<what failed>: <strerror>") is thrown;
// - a destroyed, uncommitted AtomicFile removes its temporary file (never throws).
//
// Replacing an existing file can keep what belongs to it (AtomicFileOptions, both off by default):
// - follow_symlinks: a target that is a symbolic link (or a chain of them) is resolved, the
//   temporary is created beside the file the link leads to, and that file is replaced: the link
//   stays a link, as when writing through it (a dangling link's target is created);
// - keep_attributes: an existing target's permission bits are given to the replacement (a 0600
//   model stays 0600, whatever the umask), and its owner and group where the process may set them
//   (root, or a group the user belongs to; otherwise silently the user's own). A new file gets
//   0666 minus the umask, as a plain new file does.
//
// Processes that lower RLIMIT_FSIZE should ignore SIGXFSZ, so that writing past the limit fails
// with EFBIG ("File too large") instead of killing the process.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string_view>

namespace litelens {

/// How an existing target is replaced (see the top of this file).
struct AtomicFileOptions {
  bool follow_symlinks = false;  ///< replace the file a symbolic link leads to, not the link
  bool keep_attributes = false;  ///< give the replacement the existing file's mode (and owner, when allowed)
};

class AtomicFile {
 public:
  /// Creates the temporary file beside `target` (permissions 0666 minus the umask, as for a
  /// plain new file, unless options.keep_attributes finds an existing target). Throws
  /// Error(ErrorKind::output) naming `target`.
  explicit AtomicFile(std::filesystem::path target, AtomicFileOptions options = {});
  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&& other) noexcept;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  /// Removes the temporary file unless commit() succeeded.
  ~AtomicFile();

  /// Appends bytes. On failure the temporary file is removed and Error(output) is thrown; the
  /// object is then spent (further calls throw Error(output) as well).
  void write(std::span<const std::byte> bytes);
  void write(std::string_view text);
  /// Appends up to `size` bytes of the file `fd` from `offset`, copied inside the kernel
  /// (copy_file_range, as cp does) instead of through memory. Returns how many were copied: fewer
  /// when the kernel or the file systems cannot (the caller writes the rest with write()).
  /// Output errors (no space, I/O) throw Error(output) as write() does.
  std::uint64_t copy_from(int fd, std::uint64_t offset, std::uint64_t size);
  /// Overwrites bytes already written at `offset` (a header whose checksum is known only at the
  /// end). Throws Error(output) as write() does.
  void write_at(std::uint64_t offset, std::span<const std::byte> bytes);
  /// fsync and close without renaming: the data is on disk, the target still untouched. Lets a
  /// caller prepare several files and rename them only once all succeeded. Idempotent.
  void flush();
  /// flush() if not done yet, rename into place, sync the folder. Throws Error(output) on failure
  /// (the temporary is removed, the target untouched). Calling it twice is misuse
  /// (std::logic_error).
  void commit();

  /// The final path, as given.
  const std::filesystem::path& target() const noexcept { return target_; }
  /// The path the temporary is renamed to: target(), or the file it links to with follow_symlinks.
  const std::filesystem::path& destination() const noexcept { return destination_; }
  /// The temporary file (empty once committed or failed).
  const std::filesystem::path& temp_path() const noexcept { return temp_; }
  /// Bytes written so far.
  std::uint64_t size() const noexcept { return size_; }
  bool committed() const noexcept { return committed_; }

 private:
  [[noreturn]] void fail(std::string_view what, int err);
  void discard() noexcept;

  std::filesystem::path target_;
  std::filesystem::path destination_;
  std::filesystem::path temp_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
  bool committed_ = false;
  bool failed_ = false;
  bool flushed_ = false;
};

}  // namespace litelens
