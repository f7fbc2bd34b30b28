#include "litelens/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "litelens/error.h"

namespace litelens {

namespace {

std::string random_suffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:012x}", rng() & 0xffffffffffffULL);
}

std::filesystem::path folder_of(const std::filesystem::path& target) {
  return target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
}

// The rename is durable only once the folder entry is on disk. Best effort: some file systems
// refuse to open or sync folders, and the data itself is already synced.
void sync_folder(const std::filesystem::path& dir) noexcept {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

// The file a chain of symbolic links at `target` ends in (links in its folders need no care:
// the rename resolves them). A dangling link ends in the path it names, which is then created.
std::filesystem::path resolve_links(const std::filesystem::path& target) {
  std::filesystem::path p = target;
  for (int hops = 0; hops < 40; ++hops) {  // Linux's own limit for a path
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return p;
    std::error_code ec;
    const auto link = std::filesystem::read_symlink(p, ec);
    if (ec)
      throw Error(ErrorKind::output, target.string(), fmt::format("cannot read the link {}: {}", p.string(), ec.message()));
    p = link.is_absolute() ? link : folder_of(p) / link;
  }
  throw Error(ErrorKind::output, target.string(), "cannot follow the link: too many levels of symbolic links");
}

}  // namespace

AtomicFile::AtomicFile(std::filesystem::path target, AtomicFileOptions options)
    : target_(std::move(target)), destination_(options.follow_symlinks ? resolve_links(target_) : target_) {
  // An existing file's attributes are taken before the temporary exists; a file that appears in
  // between is replaced as a new one would be.
  struct stat existing {};
  // lstat when links are not followed: a link that is being replaced lends no attributes (those
  // of the file it names could be anyone's).
  const int found = options.follow_symlinks ? ::stat(destination_.c_str(), &existing)
                                            : ::lstat(destination_.c_str(), &existing);
  const bool keep = options.keep_attributes && found == 0 && S_ISREG(existing.st_mode);
  const auto dir = folder_of(destination_);
  for (int attempt = 0; attempt < 16; ++attempt) {
    temp_ = dir / fmt::format(".{}.tmp-{}", destination_.filename().string(), random_suffix());
    // Private until its final mode is set, so a 0600 file's replacement is never readable by others.
    fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, keep ? 0600 : 0666);
    if (fd_ >= 0) break;
    if (errno != EEXIST) break;
  }
  if (fd_ < 0) {
    const int err = errno;
    temp_.clear();
    failed_ = true;
    throw Error(ErrorKind::output, target_.string(),
                fmt::format("cannot create a file in {}: {}", dir.string(), std::strerror(err)));
  }
  if (!keep) return;
  // Owner first: changing it clears set-user-ID and set-group-ID bits, which fchmod then restores.
  // Unprivileged processes cannot give files away; keep at least the group when allowed.
  struct stat mine {};
  mode_t mode = existing.st_mode & 07777;
  if (::fstat(fd_, &mine) == 0 && (mine.st_uid != existing.st_uid || mine.st_gid != existing.st_gid)) {
    const bool given = ::fchown(fd_, existing.st_uid, existing.st_gid) == 0;
    const bool group_kept = given || ::fchown(fd_, static_cast<uid_t>(-1), existing.st_gid) == 0;
    // A set-ID bit must not pass to an owner (or group) the file did not have.
    if (!given) mode &= ~static_cast<mode_t>(S_ISUID);
    if (!group_kept) mode &= ~static_cast<mode_t>(S_ISGID);
  }
  if (::fchmod(fd_, mode) != 0) fail("cannot set the permissions of the replacement", errno);
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : target_(std::move(other.target_)),
      destination_(std::move(other.destination_)),
      temp_(std::exchange(other.temp_, {})),
      fd_(std::exchange(other.fd_, -1)),
      size_(other.size_),
      committed_(other.committed_),
      failed_(std::exchange(other.failed_, true)),
      flushed_(other.flushed_) {}

AtomicFile& AtomicFile::operator=(AtomicFile&& other) noexcept {
  if (this != &other) {
    discard();
    target_ = std::move(other.target_);
    destination_ = std::move(other.destination_);
    temp_ = std::exchange(other.temp_, {});
    fd_ = std::exchange(other.fd_, -1);
    size_ = other.size_;
    committed_ = other.committed_;
    failed_ = std::exchange(other.failed_, true);
    flushed_ = other.flushed_;
  }
  return *this;
}

AtomicFile::~AtomicFile() { discard(); }

void AtomicFile::discard() noexcept {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!temp_.empty()) {
    ::unlink(temp_.c_str());
    temp_.clear();
  }
}

void AtomicFile::fail(std::string_view what, int err) {
  discard();
  failed_ = true;
  throw Error(ErrorKind::output, target_.string(), fmt::format("{}: {}", what, std::strerror(err)));
}

void AtomicFile::write(std::span<const std::byte> bytes) {
  if (committed_ || flushed_) throw std::logic_error("AtomicFile::write after flush() or commit()");
  if (failed_ || fd_ < 0) throw Error(ErrorKind::output, target_.string(), "an earlier write failed");
  const std::byte* p = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, std::min<std::size_t>(left, std::size_t{1} << 30));
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("cannot write", errno);
    }
    if (n == 0) fail("cannot write", ENOSPC);
    p += n;
    left -= static_cast<std::size_t>(n);
    size_ += static_cast<std::uint64_t>(n);
  }
}

void AtomicFile::write(std::string_view text) {
  write(std::as_bytes(std::span<const char>(text.data(), text.size())));
}

std::uint64_t AtomicFile::copy_from(int fd, std::uint64_t offset, std::uint64_t size) {
  if (committed_ || flushed_) throw std::logic_error("AtomicFile::copy_from after flush() or commit()");
  if (failed_ || fd_ < 0) throw Error(ErrorKind::output, target_.string(), "an earlier write failed");
  loff_t in = static_cast<loff_t>(offset);
  std::uint64_t done = 0;
  while (done < size) {
    const ssize_t n = ::copy_file_range(fd, &in, fd_, nullptr, std::min<std::uint64_t>(size - done, std::uint64_t{1} << 30), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOSPC || errno == EDQUOT || errno == EFBIG || errno == EIO) fail("cannot write", errno);
      break;  // not supported here (EXDEV, EINVAL, EOPNOTSUPP, ENOSYS...): the caller writes the rest
    }
    if (n == 0) break;
    done += static_cast<std::uint64_t>(n);
    size_ += static_cast<std::uint64_t>(n);
  }
  return done;
}

void AtomicFile::write_at(std::uint64_t offset, std::span<const std::byte> bytes) {
  if (committed_ || flushed_) throw std::logic_error("AtomicFile::write_at after flush() or commit()");
  if (failed_ || fd_ < 0) throw Error(ErrorKind::output, target_.string(), "an earlier write failed");
  if (offset > size_ || bytes.size() > size_ - offset)
    throw std::logic_error("AtomicFile::write_at past the bytes written so far");
  if (::pwrite(fd_, bytes.data(), bytes.size(), static_cast<off_t>(offset)) != static_cast<ssize_t>(bytes.size()))
    fail("cannot write", errno);
}

void AtomicFile::flush() {
  if (committed_ || flushed_) return;
  if (failed_ || fd_ < 0) throw Error(ErrorKind::output, target_.string(), "an earlier write failed");
  // Data on disk before the name appears; close() can report delayed write errors too.
  if (::fsync(fd_) != 0) fail("cannot flush to disk", errno);
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0) fail("cannot close", errno);
  flushed_ = true;
}

void AtomicFile::commit() {
  if (committed_) throw std::logic_error("AtomicFile::commit() called twice");
  flush();
  if (::rename(temp_.c_str(), destination_.c_str()) != 0) fail("cannot rename into place", errno);
  temp_.clear();
  committed_ = true;
  sync_folder(folder_of(destination_));
}

}  // namespace litelens
