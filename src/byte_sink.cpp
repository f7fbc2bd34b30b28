#include "byte_sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <random>

#include <fmt/format.h>

#include "litelens/error.h"

namespace litelens::detail {

namespace {

std::string random_suffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:012x}", rng() & 0xffffffffffffULL);
}

}  // namespace

void ByteSink::write_zeros(std::size_t n) {
  static const std::array<std::byte, 4096> zeros{};
  while (n > 0) {
    const std::size_t chunk = std::min(n, zeros.size());
    write(std::span(zeros.data(), chunk));
    n -= chunk;
  }
}

void MemorySink::write(std::span<const std::byte> bytes) { data_.insert(data_.end(), bytes.begin(), bytes.end()); }

void MemorySink::patch(std::uint64_t offset, std::span<const std::byte> bytes) {
  std::memcpy(data_.data() + offset, bytes.data(), bytes.size());
}

FileSink::FileSink(std::filesystem::path path) : path_(std::move(path)) {
  const auto dir = path_.has_parent_path() ? path_.parent_path() : std::filesystem::path(".");
  temp_ = dir / fmt::format(".{}.tmp-{}", path_.filename().string(), random_suffix());
  fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("cannot create a file in " + dir.string(), errno);
}

FileSink::~FileSink() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(temp_.c_str());
  }
}

void FileSink::fail(const std::string& what, int err) const {
  throw Error(ErrorKind::output, path_.string(), fmt::format("{}: {}", what, std::strerror(err)));
}

void FileSink::write(std::span<const std::byte> bytes) {
  const std::byte* p = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, std::min<std::size_t>(left, std::size_t{1} << 30));
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("cannot write", errno);
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  position_ += bytes.size();
}

void FileSink::patch(std::uint64_t offset, std::span<const std::byte> bytes) {
  if (::pwrite(fd_, bytes.data(), bytes.size(), static_cast<off_t>(offset)) != static_cast<ssize_t>(bytes.size()))
    fail("cannot write", errno);
}

void FileSink::commit() {
  if (::fsync(fd_) != 0) fail("cannot flush", errno);
  if (::close(fd_) != 0) {
    fd_ = -1;
    ::unlink(temp_.c_str());
    fail("cannot close", errno);
  }
  fd_ = -1;
  if (::rename(temp_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp_.c_str());
    fail("cannot rename into place", err);
  }
}

StagedFolder::StagedFolder(std::filesystem::path path) : path_(std::move(path)) {
  const auto dir = path_.has_parent_path() ? path_.parent_path() : std::filesystem::path(".");
  staging_ = dir / fmt::format(".{}.tmp-{}", path_.filename().string(), random_suffix());
  std::error_code ec;
  if (!std::filesystem::create_directory(staging_, ec))
    throw Error(ErrorKind::output, path_.string(),
                fmt::format("cannot create a folder in {}: {}", dir.string(), ec ? ec.message() : "exists"));
}

StagedFolder::~StagedFolder() {
  if (committed_) return;
  std::error_code ec;
  std::filesystem::remove_all(staging_, ec);
}

void StagedFolder::commit() {
  std::error_code ec;
  std::filesystem::path old;
  if (std::filesystem::exists(path_, ec)) {
    if (!std::filesystem::is_directory(path_, ec))
      throw Error(ErrorKind::output, path_.string(), "exists and is not a folder");
    old = staging_;
    old += ".old";
    std::filesystem::rename(path_, old, ec);
    if (ec) throw Error(ErrorKind::output, path_.string(), "cannot move the existing folder aside: " + ec.message());
  }
  std::filesystem::rename(staging_, path_, ec);
  if (ec) {
    if (!old.empty()) std::filesystem::rename(old, path_, ec);
    throw Error(ErrorKind::output, path_.string(), "cannot rename into place: " + ec.message());
  }
  committed_ = true;
  if (!old.empty()) std::filesystem::remove_all(old, ec);
}

}  // namespace litelens::detail
