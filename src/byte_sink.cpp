#include "byte_sink.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <random>

#include <fmt/format.h>

#include "litelens/error.h"

namespace litelens::detail {

namespace {

std::string random_suffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:012x}", rng() & 0xffffffffffffULL);
}

// The start of every manifest.json an export writes (JsonWriter, compact, "format" first).
constexpr std::string_view kManifestStart = R"({"format":"litelens-export-1")";

bool is_export_manifest(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::string head(kManifestStart.size(), '\0');
  return in.read(head.data(), static_cast<std::streamsize>(head.size())) && head == kManifestStart;
}

// Why the folder export must not replace what is at `path`, or nullopt when it may: nothing is
// there, an empty folder, or a folder an earlier export wrote (its manifest.json at the top and
// otherwise only subfolders and .npy files). Anything else may be someone's data, and replacing
// the folder deletes it.
std::optional<std::string> replace_refusal(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(path, ec);
  if (!fs::exists(st)) return std::nullopt;
  if (fs::is_symlink(st)) return "exists and is a symbolic link; not replaced (remove it or choose another output)";
  if (!fs::is_directory(st)) return "exists and is not a folder";
  bool manifest = false;
  bool empty = true;
  fs::recursive_directory_iterator it(path, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    empty = false;
    const fs::file_status s = it->symlink_status(ec);
    if (ec) break;
    const fs::path name = it->path().filename();
    if (fs::is_directory(s)) continue;
    if (fs::is_regular_file(s) && it.depth() == 0 && name == "manifest.json" && is_export_manifest(it->path())) {
      manifest = true;
      continue;
    }
    if (fs::is_regular_file(s) && name.extension() == ".npy") continue;
    return fmt::format("exists and holds {}, which is not part of a litelens export; not replaced (remove the "
                       "folder or choose another output)",
                       fs::relative(it->path(), path, ec).string());
  }
  if (ec) return fmt::format("exists and cannot be listed ({}); not replaced", ec.message());
  if (!empty && !manifest)
    return "exists and holds no litelens manifest.json, so it is not an earlier export; not replaced (remove the "
           "folder or choose another output)";
  return std::nullopt;
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
  // Refused before anything is written; commit() checks again, in case the folder changed.
  if (auto refusal = replace_refusal(path_)) throw Error(ErrorKind::output, path_.string(), *refusal);
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
  if (auto refusal = replace_refusal(path_)) throw Error(ErrorKind::output, path_.string(), *refusal);
  std::error_code ec;
  std::filesystem::path old;
  if (std::filesystem::exists(std::filesystem::symlink_status(path_, ec))) {
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
