#include "byte_sink.h"

#include <algorithm>
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
