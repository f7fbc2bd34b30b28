// The ZIP reader behind associated files. The layout, from the end of the file backwards:
//   [local header + data]...  central directory  [ZIP64 end record + locator]  end record
// The end record says where the central directory starts, either as an absolute file position
// (Python's zipfile appending to a model writes these) or relative to the archive's first byte
// (an archive built separately and concatenated). Like unzip, we tell the two apart by comparing
// where the directory really is with where the record says it is.
#include "zip_archive.h"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <limits>
#include <unordered_set>

#include "litelens/error.h"

namespace litelens::detail {
namespace {

constexpr std::uint32_t kEndSignature = 0x06054b50;       // PK\5\6
constexpr std::uint32_t kZip64EndSignature = 0x06064b50;  // PK\6\6
constexpr std::uint32_t kZip64LocatorSignature = 0x07064b50;  // PK\6\7
constexpr std::uint32_t kCentralSignature = 0x02014b50;   // PK\1\2
constexpr std::uint32_t kLocalSignature = 0x04034b50;     // PK\3\4
constexpr std::uint64_t kEndSize = 22;
constexpr std::uint64_t kZip64LocatorSize = 20;
constexpr std::uint64_t kZip64EndSize = 56;
constexpr std::uint64_t kCentralSize = 46;
constexpr std::uint64_t kLocalSize = 30;
constexpr std::uint64_t kMaxComment = 0xFFFF;
// Far more members than any model carries; a directory claiming more is treated as hostile.
constexpr std::uint64_t kMaxMembers = 1u << 20;

std::uint16_t u16(const std::byte* p) {
  return static_cast<std::uint16_t>(std::to_integer<unsigned>(p[0]) | (std::to_integer<unsigned>(p[1]) << 8));
}
std::uint32_t u32(const std::byte* p) {
  return static_cast<std::uint32_t>(u16(p)) | (static_cast<std::uint32_t>(u16(p + 2)) << 16);
}
std::uint64_t u64(const std::byte* p) {
  return static_cast<std::uint64_t>(u32(p)) | (static_cast<std::uint64_t>(u32(p + 4)) << 32);
}

// A member name for messages: control bytes, quotes and non-ASCII bytes as \xNN, at most 200 bytes.
std::string printable(std::string_view name) {
  std::string out;
  for (unsigned char c : name.substr(0, 200)) {
    if (c < 0x20 || c >= 0x7F || c == '"' || c == '\\') out += fmt::format("\\x{:02x}", c);
    else out += static_cast<char>(c);
  }
  if (name.size() > 200) out += "...";
  return out;
}

class DirectoryReader {
 public:
  DirectoryReader(std::span<const std::byte> file, std::uint64_t region_start, const std::string& label)
      : f_(file), size_(file.size()), region_(std::min<std::uint64_t>(region_start, file.size())), label_(label) {}

  std::optional<ZipDirectory> run() {
    const auto end = find_end_record();
    if (!end) return std::nullopt;
    ZipDirectory dir;
    const std::byte* e = at(*end);
    std::uint64_t disk = u16(e + 4), cd_disk = u16(e + 6);
    std::uint64_t entries_here = u16(e + 8), entries = u16(e + 10);
    std::uint64_t cd_size = u32(e + 12), cd_offset = u32(e + 16);
    std::uint64_t cd_end = *end;  // the central directory is followed by this

    const bool wants_zip64 = entries == 0xFFFF || entries_here == 0xFFFF || cd_size == 0xFFFFFFFF ||
                             cd_offset == 0xFFFFFFFF || disk == 0xFFFF || cd_disk == 0xFFFF;
    if (*end >= region_ + kZip64LocatorSize && u32(at(*end - kZip64LocatorSize)) == kZip64LocatorSignature) {
      const std::uint64_t locator = *end - kZip64LocatorSize;
      const std::uint64_t record = find_zip64_record(locator);
      const std::byte* z = at(record);
      disk = u32(z + 16);
      cd_disk = u32(z + 20);
      entries_here = u64(z + 24);
      entries = u64(z + 32);
      cd_size = u64(z + 40);
      cd_offset = u64(z + 48);
      cd_end = record;
      dir.zip64 = true;
    } else if (wants_zip64) {
      fail("the end record asks for a ZIP64 end record, but there is none", *end);
    }

    if (disk != 0 || cd_disk != 0 || entries_here != entries)
      fail("archives split over several disks are not supported", *end);
    if (entries > kMaxMembers)
      fail(fmt::format("the central directory claims {} entries (more than {} is not credible)", entries, kMaxMembers),
           *end);
    if (cd_size > cd_end - region_)
      fail(fmt::format("the central directory claims {} bytes, but only {} bytes precede the end record", cd_size,
                       cd_end - region_),
           *end);
    if (entries > cd_size / kCentralSize)
      fail(fmt::format("the central directory claims {} entries, but {} bytes hold at most {}", entries, cd_size,
                       cd_size / kCentralSize),
           *end);
    const std::uint64_t cd_start = cd_end - cd_size;
    if (cd_offset > cd_start)
      fail(fmt::format("the end record puts the central directory at {}, past where it really starts ({})", cd_offset,
                       cd_start),
           *end);
    dir.offset_base = cd_start - cd_offset;
    dir.central_directory = cd_start;
    dir.archive_start = cd_start;

    read_central_directory(dir, cd_start, cd_end, entries);
    for (const auto& m : dir.members) dir.archive_start = std::min(dir.archive_start, m.header_offset);
    check_overlaps(dir);
    check_file_folder_clashes(dir);
    return dir;
  }

 private:
  [[noreturn]] void fail(std::string message, std::optional<std::uint64_t> offset) const {
    throw Error(ErrorKind::invalid_metadata, label_, "associated-file archive: " + message, offset);
  }
  const std::byte* at(std::uint64_t offset) const { return f_.data() + offset; }

  // The end record is the last 22 bytes plus a comment of up to 64 KiB. Scan backwards for its
  // signature, and accept a candidate only when its comment length reaches exactly the end of
  // the file: random weight bytes rarely satisfy both.
  std::optional<std::uint64_t> find_end_record() const {
    if (size_ < kEndSize || size_ - region_ < kEndSize) return std::nullopt;
    const std::uint64_t last = size_ - kEndSize;
    const std::uint64_t first = std::max<std::uint64_t>(region_, last > kMaxComment ? last - kMaxComment : 0);
    for (std::uint64_t pos = last + 1; pos-- > first;) {
      if (u32(at(pos)) != kEndSignature) continue;
      if (pos + kEndSize + u16(at(pos + 20)) == size_) return pos;
    }
    return std::nullopt;
  }

  // The ZIP64 end record normally sits right before its locator; the locator also records its
  // offset (absolute, or relative to the archive start). Try the adjacent spot first.
  std::uint64_t find_zip64_record(std::uint64_t locator) const {
    const auto good = [&](std::uint64_t pos) {
      return pos >= region_ && pos <= locator && locator - pos >= kZip64EndSize && u32(at(pos)) == kZip64EndSignature;
    };
    if (locator >= kZip64EndSize && good(locator - kZip64EndSize)) return locator - kZip64EndSize;
    const std::uint64_t recorded = u64(at(locator + 8));
    if (good(recorded)) return recorded;
    fail("the ZIP64 locator points to no ZIP64 end record", locator);
  }

  void read_central_directory(ZipDirectory& dir, std::uint64_t cd_start, std::uint64_t cd_end, std::uint64_t entries) {
    std::unordered_set<std::string> names;
    std::uint64_t pos = cd_start;
    dir.members.reserve(static_cast<std::size_t>(entries));
    for (std::uint64_t i = 0; i < entries; ++i) {
      if (cd_end - pos < kCentralSize || u32(at(pos)) != kCentralSignature)
        fail(fmt::format("central directory entry {} is missing or truncated", i), pos);
      const std::byte* c = at(pos);
      ZipMember m;
      m.flags = u16(c + 8);
      m.method = u16(c + 10);
      m.crc32 = u32(c + 16);
      m.compressed_size = u32(c + 20);
      m.size = u32(c + 24);
      const std::uint64_t name_len = u16(c + 28), extra_len = u16(c + 30), comment_len = u16(c + 32);
      const std::uint64_t disk = u16(c + 34);
      m.header_offset = u32(c + 42);
      const std::uint64_t total = kCentralSize + name_len + extra_len + comment_len;
      if (cd_end - pos < total) fail(fmt::format("central directory entry {} runs past the directory", i), pos);
      m.name.assign(reinterpret_cast<const char*>(c + kCentralSize), static_cast<std::size_t>(name_len));
      apply_zip64_extra(m, {c + kCentralSize + name_len, static_cast<std::size_t>(extra_len)}, disk, pos);
      if (auto problem = unsafe_name_reason(m.name))
        fail(fmt::format("entry {} has an unsafe name \"{}\": {}", i, printable(m.name), *problem), pos);
      if (!names.insert(m.name).second) fail(fmt::format("the name '{}' appears twice", m.name), pos);
      m.is_directory = m.name.back() == '/';
      if (m.flags & 0x1) fail(fmt::format("'{}' is encrypted", m.name), pos);
      if (m.method == 0 && m.compressed_size != m.size)
        fail(fmt::format("'{}' is stored uncompressed but its sizes differ ({} vs {})", m.name, m.compressed_size, m.size),
             pos);
      check_local_header(dir, m, cd_start);
      dir.members.push_back(std::move(m));
      pos += total;
    }
  }

  // ZIP64 extended information (header id 1): 64-bit values for the fields set to all ones, in
  // the order size, compressed size, header offset, disk.
  void apply_zip64_extra(ZipMember& m, std::span<const std::byte> extra, std::uint64_t disk, std::uint64_t pos) const {
    const bool need_size = m.size == 0xFFFFFFFF, need_csize = m.compressed_size == 0xFFFFFFFF,
               need_offset = m.header_offset == 0xFFFFFFFF, need_disk = disk == 0xFFFF;
    std::size_t i = 0;
    while (i + 4 <= extra.size()) {
      const std::uint16_t id = u16(extra.data() + i), len = u16(extra.data() + i + 2);
      if (i + 4 + len > extra.size()) break;  // a malformed trailing field: other readers ignore it too
      if (id == 1) {
        std::span<const std::byte> v = extra.subspan(i + 4, len);
        std::size_t k = 0;
        const auto take = [&](std::uint64_t& into) {
          if (k + 8 > v.size()) fail(fmt::format("the ZIP64 field of '{}' is too short", m.name), pos);
          into = u64(v.data() + k);
          k += 8;
        };
        if (need_size) take(m.size);
        if (need_csize) take(m.compressed_size);
        if (need_offset) take(m.header_offset);
        if (need_disk) {
          if (k + 4 > v.size()) fail(fmt::format("the ZIP64 field of '{}' is too short", m.name), pos);
          disk = u32(v.data() + k);
        }
        if (disk != 0) fail(fmt::format("'{}' lives on another disk", m.name), pos);
        return;
      }
      i += 4 + len;
    }
    if (need_size || need_csize || need_offset || need_disk)
      fail(fmt::format("'{}' needs a ZIP64 field but has none", m.name), pos);
    if (disk != 0) fail(fmt::format("'{}' lives on another disk", m.name), pos);
  }

  void check_local_header(const ZipDirectory& dir, ZipMember& m, std::uint64_t cd_start) const {
    const std::uint64_t recorded = m.header_offset;
    if (recorded > cd_start - dir.offset_base)
      fail(fmt::format("'{}' has its local header at {}, beyond the central directory", m.name, recorded),
           dir.central_directory);
    const std::uint64_t lh = dir.offset_base + recorded;
    if (lh < region_)
      fail(fmt::format("'{}' has its local header at {}, inside the model's FlatBuffer", m.name, lh), lh);
    if (cd_start - lh < kLocalSize || u32(at(lh)) != kLocalSignature)
      fail(fmt::format("'{}': no local header at {}", m.name, lh), lh);
    const std::byte* h = at(lh);
    const std::uint16_t flags = u16(h + 6), method = u16(h + 8);
    const std::uint32_t crc = u32(h + 14), csize = u32(h + 18), size = u32(h + 22);
    const std::uint64_t name_len = u16(h + 26), extra_len = u16(h + 28);
    if (cd_start - lh - kLocalSize < name_len + extra_len)
      fail(fmt::format("'{}': the local header runs into the central directory", m.name), lh);
    const std::string_view local_name(reinterpret_cast<const char*>(h + kLocalSize), static_cast<std::size_t>(name_len));
    if (local_name != m.name)
      fail(fmt::format("'{}': the local header names '{}' instead", m.name, printable(local_name)), lh);
    if (method != m.method)
      fail(fmt::format("'{}': the local header says method {}, the central directory {}", m.name, method, m.method), lh);
    // With bit 3 set, the local CRC and sizes are zero and a descriptor after the data holds them.
    if (!(flags & 0x8)) {
      if (crc != m.crc32)
        fail(fmt::format("'{}': the local header's CRC {:08x} differs from the central directory's {:08x}", m.name, crc,
                         m.crc32),
             lh);
      if ((csize != 0xFFFFFFFF && csize != m.compressed_size) || (size != 0xFFFFFFFF && size != m.size))
        fail(fmt::format("'{}': the local header's sizes differ from the central directory's", m.name), lh);
    }
    m.header_offset = lh;
    m.data_offset = lh + kLocalSize + name_len + extra_len;
    if (m.compressed_size > cd_start - m.data_offset)
      fail(fmt::format("'{}' claims {} bytes at {}, running past the central directory (at {})", m.name,
                       m.compressed_size, m.data_offset, cd_start),
           lh);
  }

  // Members must not share bytes: a hostile archive could otherwise point many names at one
  // (possibly huge) stream.
  void check_overlaps(const ZipDirectory& dir) const {
    std::vector<const ZipMember*> order;
    for (const auto& m : dir.members) order.push_back(&m);
    std::sort(order.begin(), order.end(),
              [](const ZipMember* a, const ZipMember* b) { return a->header_offset < b->header_offset; });
    for (std::size_t i = 1; i < order.size(); ++i) {
      const ZipMember& prev = *order[i - 1];
      const ZipMember& next = *order[i];
      if (next.header_offset < prev.data_offset + prev.compressed_size)
        fail(fmt::format("'{}' and '{}' overlap", prev.name, next.name), next.header_offset);
    }
  }

  // "a" as a file and "a/b" inside a folder "a" cannot both be extracted.
  void check_file_folder_clashes(const ZipDirectory& dir) const {
    std::unordered_set<std::string_view> files;
    for (const auto& m : dir.members)
      if (!m.is_directory) files.insert(m.name);
    for (const auto& m : dir.members)
      for (auto slash = m.name.find('/'); slash != std::string::npos && slash + 1 < m.name.size();
           slash = m.name.find('/', slash + 1))
        if (files.count(std::string_view(m.name).substr(0, slash)))
          fail(fmt::format("'{}' is a file, but '{}' needs a folder of that name", m.name.substr(0, slash), m.name),
               m.header_offset);
  }

  std::span<const std::byte> f_;
  std::uint64_t size_;
  std::uint64_t region_;
  const std::string& label_;
};

}  // namespace

std::optional<ZipDirectory> read_zip_directory(std::span<const std::byte> file, std::uint64_t region_start,
                                               const std::string& label) {
  return DirectoryReader(file, region_start, label).run();
}

std::optional<std::string> unsafe_name_reason(std::string_view name) {
  if (name.empty()) return "the name is empty";
  for (unsigned char c : name) {
    if (c == 0) return "it contains a NUL byte";
    if (c < 0x20 || c == 0x7F) return "it contains a control character";
    if (c == '\\') return "it contains a backslash";
  }
  if (name.front() == '/') return "it is an absolute path";
  if (name.size() >= 2 && name[1] == ':' && std::isalpha(static_cast<unsigned char>(name[0])))
    return "it starts with a drive letter";
  std::string_view rest = name;
  if (rest.back() == '/') rest.remove_suffix(1);  // a directory entry
  while (true) {
    const auto slash = rest.find('/');
    const std::string_view part = rest.substr(0, slash);
    if (part == "..") return "it has a '..' component that escapes the output folder";
    if (part == "." || part.empty()) return "it has an empty or '.' component";
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  return std::nullopt;
}

std::uint32_t crc32_of(std::span<const std::byte> bytes) {
  uLong crc = crc32(0L, Z_NULL, 0);
  const auto* p = reinterpret_cast<const Bytef*>(bytes.data());
  std::size_t left = bytes.size();
  while (left > 0) {
    const auto chunk = static_cast<uInt>(std::min<std::size_t>(left, 1u << 30));
    crc = crc32(crc, p, chunk);
    p += chunk;
    left -= chunk;
  }
  return static_cast<std::uint32_t>(crc);
}

std::uint32_t inflate_member(std::span<const std::byte> compressed, std::uint64_t expected_size,
                             const std::function<void(std::span<const std::byte>)>& sink, const std::string& label,
                             const std::string& what, std::uint64_t offset) {
  const auto fail = [&](const std::string& message) -> void {
    throw Error(ErrorKind::invalid_metadata, label, fmt::format("associated file '{}': {}", what, message), offset);
  };
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) fail("cannot start the decompressor");
  struct Guard {
    z_stream* z;
    ~Guard() { inflateEnd(z); }
  } guard{&zs};
  std::vector<std::byte> out(64 * 1024);
  std::uint64_t produced = 0;
  uLong crc = crc32(0L, Z_NULL, 0);
  const auto* in = reinterpret_cast<const Bytef*>(compressed.data());
  std::size_t in_left = compressed.size();
  int status = Z_OK;
  while (status != Z_STREAM_END) {
    if (zs.avail_in == 0 && in_left > 0) {
      const auto chunk = static_cast<uInt>(std::min<std::size_t>(in_left, 1u << 30));
      zs.next_in = const_cast<Bytef*>(in);
      zs.avail_in = chunk;
      in += chunk;
      in_left -= chunk;
    }
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    status = inflate(&zs, Z_NO_FLUSH);
    if (status == Z_NEED_DICT || status == Z_DATA_ERROR || status == Z_MEM_ERROR)
      fail(fmt::format("the DEFLATE data is corrupt ({})", zs.msg ? zs.msg : "inflate error"));
    const std::size_t got = out.size() - zs.avail_out;
    if (status == Z_BUF_ERROR && got == 0)
      fail("the DEFLATE data ends early");
    if (got > expected_size - produced)
      fail(fmt::format("it inflates to more than the {} bytes the archive declares", expected_size));
    produced += got;
    crc = crc32(crc, reinterpret_cast<const Bytef*>(out.data()), static_cast<uInt>(got));
    if (got) sink({out.data(), got});
  }
  if (produced != expected_size)
    fail(fmt::format("it inflates to {} bytes, but the archive declares {}", produced, expected_size));
  return static_cast<std::uint32_t>(crc);
}

std::string zip_method_name(std::uint16_t method) {
  switch (method) {
    case 0: return "stored";
    case 8: return "deflate";
    default: return fmt::format("method {}", method);
  }
}

}  // namespace litelens::detail
