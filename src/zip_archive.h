// Reading the ZIP archive that metadata writers append after a model's FlatBuffer.
//
// Only what associated files need: the end record (and its ZIP64 form), the central directory,
// each local header cross-checked against it, STORED and DEFLATE members. Everything is bounds-
// checked against the file; anything malformed or hostile throws Error(invalid_metadata).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace litelens::detail {

struct ZipMember {
  std::string name;
  std::uint64_t header_offset = 0;    ///< absolute file offset of the local header
  std::uint64_t data_offset = 0;      ///< absolute file offset of the stored bytes
  std::uint64_t compressed_size = 0;  ///< bytes stored in the file
  std::uint64_t size = 0;             ///< bytes once decompressed
  std::uint16_t method = 0;           ///< 0 stored, 8 deflate, others unsupported
  std::uint16_t flags = 0;
  std::uint32_t crc32 = 0;
  bool is_directory = false;          ///< name ends with '/'
};

struct ZipDirectory {
  std::uint64_t archive_start = 0;      ///< first byte of the archive in the file
  std::uint64_t offset_base = 0;        ///< added to recorded offsets: 0 when they are absolute
  std::uint64_t central_directory = 0;  ///< absolute offset of the central directory
  bool zip64 = false;
  std::vector<ZipMember> members;       ///< in central-directory order, directories included
};

/// Looks for an archive ending exactly at the end of `file` whose bytes all lie at or after
/// `region_start` (the end of the FlatBuffer). nullopt when there is none. Throws
/// Error(invalid_metadata, label, ...) when an archive is there but malformed or hostile.
std::optional<ZipDirectory> read_zip_directory(std::span<const std::byte> file, std::uint64_t region_start,
                                               const std::string& label);

/// Why `name` is not a safe relative path to extract to, or nullopt when it is. Rejects
/// absolute paths, drive letters, "..", "." and empty components, backslashes, NUL and other
/// control characters.
std::optional<std::string> unsafe_name_reason(std::string_view name);

/// CRC-32 (the ZIP/zlib polynomial) of `bytes`.
std::uint32_t crc32_of(std::span<const std::byte> bytes);

/// Inflates a raw DEFLATE stream, handing the output to `sink` in chunks. Throws
/// Error(invalid_metadata) when the stream is corrupt or its output is not exactly
/// `expected_size` bytes. Returns the CRC-32 of the output.
std::uint32_t inflate_member(std::span<const std::byte> compressed, std::uint64_t expected_size,
                             const std::function<void(std::span<const std::byte>)>& sink, const std::string& label,
                             const std::string& what, std::uint64_t offset);

/// "stored", "deflate", or "method N".
std::string zip_method_name(std::uint16_t method);

}  // namespace litelens::detail
