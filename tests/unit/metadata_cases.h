// Broken metadata buffers and hostile appended archives, shared by metadata_test.cpp (which checks
// each against the library one by one) and corruption_test.cpp (which records each as a named
// case of the corruption matrix, so that tests/corruption/cli_matrix.py runs every command on it).
// The builders (ZIP writer, sample metadata) live in fuzz/model_zoo.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "conversion_metadata_generated.h"
#include "metadata_generated.h"
#include "model_builder.h"
#include "model_zoo.h"

namespace litelens::hardening {

/// `model` (default: the plain conv model) followed by an archive of `entries`, with `patch`
/// applied to the archive bytes.
inline std::vector<std::byte> model_with_zip(const std::vector<ZipEntry>& entries, const ZipOptions& o = {},
                                             const std::function<void(Zip&)>& patch = {},
                                             std::vector<std::byte> model = litelens::testing::conv_model().finish()) {
  Zip z = make_zip(entries, model.size(), o);
  if (patch) patch(z);
  return with_archive(std::move(model), z);
}

/// A raw DEFLATE stream (one block, fixed Huffman codes) that inflates to 1 + 258 × `matches`
/// zero bytes: a literal 0, then matches of length 258 at distance 1 (13 bits each, a ratio of
/// about 160). Written bit by bit here so that no compressor is involved.
inline std::vector<std::uint8_t> zeros_deflate(std::size_t matches) {
  std::vector<std::uint8_t> out;
  std::uint32_t acc = 0;
  int bits = 0;
  const auto put_bits = [&](std::uint32_t value, int n) {  // LSB first, as DEFLATE packs fields
    for (int i = 0; i < n; ++i) {
      acc |= ((value >> i) & 1u) << bits;
      if (++bits == 8) {
        out.push_back(static_cast<std::uint8_t>(acc));
        acc = 0;
        bits = 0;
      }
    }
  };
  const auto put_code = [&](std::uint32_t code, int n) {  // Huffman codes go most significant bit first
    for (int i = n - 1; i >= 0; --i) put_bits((code >> i) & 1u, 1);
  };
  put_bits(1, 1);           // BFINAL
  put_bits(1, 2);           // BTYPE 01: fixed Huffman codes
  put_code(0x30, 8);        // literal 0 (codes 0-143: 0x30 + value, 8 bits)
  for (std::size_t i = 0; i < matches; ++i) {
    put_code(0xC0 + 5, 8);  // length code 285 = 258 bytes (codes 280-287: 0xC0 + n, 8 bits)
    put_code(0, 5);         // distance code 0 = 1 byte back
  }
  put_code(0, 7);           // end of block (code 256: 7 zero bits)
  if (bits) out.push_back(static_cast<std::uint8_t>(acc));
  return out;
}

/// A deflate member holding 1 + 258 × `matches` zeros, declaring `declared` bytes (0: the truth).
inline ZipEntry zeros_entry(std::string name, std::size_t matches, std::uint32_t declared = 0) {
  const std::vector<std::uint8_t> zeros(1 + 258 * matches, 0);
  ZipEntry e;
  e.name = std::move(name);
  e.stored = zeros_deflate(matches);
  e.method = 8;
  e.size = declared ? declared : static_cast<std::uint32_t>(zeros.size());
  e.crc = zip_crc32(zeros);
  return e;
}

/// An archive case: entries, options and a byte patch, and a fragment of the error expected.
struct ArchiveCase {
  std::string name;  ///< file-name safe; the matrix case is "meta_archive_<name>" / "meta_member_<name>"
  std::vector<ZipEntry> entries;
  ZipOptions options;
  std::function<void(Zip&)> patch;
  std::string fragment;
};

/// Archives whose directory is refused: associated_files() (so `info`'s listing, `files` and
/// `files --extract`) throws invalid_metadata with `fragment`.
inline std::vector<ArchiveCase> hostile_archives() {
  const auto two = std::vector<ZipEntry>{stored_entry("a.txt", "first file"), stored_entry("b.txt", "second")};
  ZipEntry symlink_escape = stored_entry("../link", "/etc/passwd");
  symlink_escape.external_attributes = 0120777u << 16;
  return {
      {"parent_escape", {stored_entry("../evil.txt", "x")}, {}, {}, "'..' component"},
      {"nested_parent_escape", {stored_entry("a/../../evil.txt", "x")}, {}, {}, "'..' component"},
      {"absolute_path", {stored_entry("/etc/evil", "x")}, {}, {}, "absolute path"},
      {"backslash", {stored_entry("..\\evil.txt", "x")}, {}, {}, "backslash"},
      {"nul_in_name", {stored_entry(std::string("a\0b.txt", 7), "x")}, {}, {}, "NUL"},
      {"drive_letter", {stored_entry("C:evil.txt", "x")}, {}, {}, "drive letter"},
      {"empty_component", {stored_entry("a//b.txt", "x")}, {}, {}, "empty or '.' component"},
      {"dot_component", {stored_entry("./b.txt", "x")}, {}, {}, "empty or '.' component"},
      {"control_character", {stored_entry("a\nb.txt", "x")}, {}, {}, "control character"},
      {"symlink_escape", {symlink_escape}, {}, {}, "'..' component"},
      {"duplicate_names", {stored_entry("a.txt", "1"), stored_entry("a.txt", "2")}, {}, {}, "appears twice"},
      {"file_and_folder_of_one_name", {stored_entry("a", "1"), stored_entry("a/b.txt", "2")}, {}, {},
       "'a' is a file, but 'a/b.txt' needs a folder"},
      {"size_beyond_the_file", two, {}, [](Zip& z) {
         set32(z.bytes, z.central[1] + 20, 0x7FFFFFF0);
         set32(z.bytes, z.central[1] + 24, 0x7FFFFFF0);
         set32(z.bytes, z.local[1] + 18, 0x7FFFFFF0);
         set32(z.bytes, z.local[1] + 22, 0x7FFFFFF0);
       }, "running past the central directory"},
      {"header_offset_beyond_the_archive", two, {}, [](Zip& z) { set32(z.bytes, z.central[0] + 42, 0x7FFFFFF0); },
       "beyond the central directory"},
      {"header_offset_inside_the_flatbuffer", two, {}, [](Zip& z) { set32(z.bytes, z.central[0] + 42, 8); },
       "inside the model's FlatBuffer"},
      {"overlapping_members", two, {}, [](Zip& z) {
         // a.txt claims 12 more bytes, running into b.txt's local header (sizes agree everywhere).
         const std::uint32_t n = 10 + 12;
         for (std::size_t at : {z.central[0] + 20, z.central[0] + 24, z.local[0] + 18, z.local[0] + 22})
           set32(z.bytes, at, n);
       }, "'a.txt' and 'b.txt' overlap"},
      {"two_names_for_one_member", two, {}, [](Zip& z) {
         // b.txt's directory entry points at a.txt's local header.
         set32(z.bytes, z.central[1] + 42, get32(z.bytes, z.central[0] + 42));
       }, "the local header names 'a.txt'"},
      {"local_method_differs", two, {}, [](Zip& z) { set16(z.bytes, z.local[1] + 8, 8); },
       "the local header says method 8"},
      {"local_crc_differs", two, {}, [](Zip& z) { set32(z.bytes, z.local[0] + 14, 0xDEADBEEF); },
       "local header's CRC"},
      {"local_size_differs", two, {}, [](Zip& z) { set32(z.bytes, z.local[0] + 18, 3); }, "local header's sizes"},
      {"not_a_local_header", two, {}, [](Zip& z) { z.bytes[z.local[1]] = 'X'; }, "no local header"},
      {"stored_sizes_differ", two, {}, [](Zip& z) { set32(z.bytes, z.central[0] + 24, 11); },
       "stored uncompressed but its sizes differ"},
      {"absurd_entry_count", two, {}, [](Zip& z) {
         set16(z.bytes, z.eocd + 8, 0xFFF0);
         set16(z.bytes, z.eocd + 10, 0xFFF0);
       }, "claims 65520 entries"},
      {"directory_larger_than_the_file", two, {}, [](Zip& z) { set32(z.bytes, z.eocd + 12, 0x7FFFFFF0); }, "only"},
      {"directory_offset_past_its_position", two, {}, [](Zip& z) {
         set32(z.bytes, z.eocd + 16, get32(z.bytes, z.eocd + 16) + 64);
       }, "past where it really starts"},
      {"truncated_directory_entry", two, {}, [](Zip& z) { z.bytes[z.central[1]] = 'X'; }, "missing or truncated"},
      {"directory_cut_short", two, {}, [](Zip& z) {
         // The second directory entry is cut out; the end record still counts two.
         z.bytes.erase(z.bytes.begin() + static_cast<std::ptrdiff_t>(z.central[1]),
                       z.bytes.begin() + static_cast<std::ptrdiff_t>(z.eocd));
         z.eocd = z.central[1];
         set32(z.bytes, z.eocd + 12, z.eocd - z.cd);
       }, "2 entries, but"},
      {"split_archive", two, {}, [](Zip& z) { set16(z.bytes, z.eocd + 4, 1); }, "several disks"},
      {"encrypted_member", two, {}, [](Zip& z) {
         set16(z.bytes, z.central[0] + 8, 1);
         set16(z.bytes, z.local[0] + 6, 1);
       }, "is encrypted"},
      {"zip64_end_record_missing", two, {}, [](Zip& z) { set32(z.bytes, z.eocd + 16, 0xFFFFFFFF); },
       "ZIP64 end record"},
      {"zip64_absurd_entry_count", two, {.zip64 = true}, [](Zip& z) {
         set64(z.bytes, z.zip64_record + 24, 1ull << 40);
         set64(z.bytes, z.zip64_record + 32, 1ull << 40);
       }, "not credible"},
      {"zip64_field_missing", two, {.zip64 = true}, [](Zip& z) {
         set16(z.bytes, z.central[0] + 46 + 5, 0x9999);  // the extra field's id, after the name "a.txt"
       }, "needs a ZIP64 field"},
      {"zip64_record_not_found", two, {.zip64 = true}, [](Zip& z) {
         // Neither beside the locator (its signature is damaged) nor where the locator says.
         z.bytes[z.zip64_record] = 'X';
         set64(z.bytes, z.zip64_locator + 8, get32(z.bytes, z.zip64_locator + 8) + 3);
       }, "points to no ZIP64 end record"},
      {"zip64_directory_size_lies", two, {.zip64 = true}, [](Zip& z) {
         set64(z.bytes, z.zip64_record + 40, 1ull << 50);
       }, "bytes precede the end record"},
      {"zip64_directory_offset_lies", two, {.zip64 = true}, [](Zip& z) {
         set64(z.bytes, z.zip64_record + 48, 1ull << 50);
       }, "past where it really starts"},
      {"zip64_member_size_lies", two, {.zip64 = true}, [](Zip& z) {
         // The central directory's ZIP64 field (after the 46-byte entry, "a.txt" and its 4-byte
         // header) claims 2^40 bytes for a.txt, everywhere.
         set64(z.bytes, z.central[0] + 46 + 5 + 4, 1ull << 40);
         set64(z.bytes, z.central[0] + 46 + 5 + 12, 1ull << 40);
         set64(z.bytes, z.local[0] + 30 + 5 + 4, 1ull << 40);
         set64(z.bytes, z.local[0] + 30 + 5 + 12, 1ull << 40);
       }, "running past the central directory"},
  };
}

/// Archives whose directory is fine but whose member data is not: the listing works (`info`,
/// `files`), reading or extracting throws invalid_metadata with `fragment` (`files --extract`).
inline std::vector<ArchiveCase> bad_member_data() {
  ZipEntry corrupt = deflated_animals("animals.txt");
  corrupt.stored[0] = 0xFF;  // BTYPE=11 is reserved
  ZipEntry short_stream = deflated_animals("animals.txt");
  short_stream.stored.resize(8);
  ZipEntry bzip2 = stored_entry("b.bz2", "pretend");
  bzip2.method = 12;
  return {
      {"crc_mismatch", {stored_entry("a.txt", "intact"), stored_entry("b.txt", "damaged")}, {},
       [](Zip& z) { z.bytes[z.local[1] + 30 + 5] ^= 0x20; }, "CRC-32"},
      {"deflate_corrupt", {corrupt}, {}, {}, "DEFLATE data is corrupt"},
      {"deflate_ends_early", {short_stream}, {}, {}, "ends early"},
      {"unsupported_method", {bzip2}, {}, {}, "method 12"},
      // Decompression bombs: about 6 KiB that inflate to 1 MiB, declared as 100 bytes (the
      // inflater stops at byte 101) or as nearly 4 GiB (it stops at the end of the data).
      {"bomb_declared_small", {stored_entry("a.txt", "fine"), zeros_entry("zeros.bin", 4064, 100)}, {}, {},
       "more than the 100 bytes"},
      {"bomb_declared_huge", {zeros_entry("zeros.bin", 4064, 0xFFFFFFF0u)}, {}, {},
       "inflates to 1048513 bytes, but the archive declares 4294967280"},
  };
}

/// A broken buffer for one metadata entry, and a fragment of the error expected.
struct BrokenBuffer {
  std::string name;  ///< file-name safe
  std::vector<std::uint8_t> bytes;
  std::string fragment;
};

/// TFLITE_METADATA buffers that read_model_metadata() refuses.
inline std::vector<BrokenBuffer> broken_model_metadata() {
  const auto good = pack_model_metadata(sample_model_metadata());
  auto truncated = good;
  truncated.resize(good.size() / 2);
  auto bad_root = good;
  set32(bad_root, 0, 0x7FFFFFF0);  // root offset far outside the buffer
  auto bad_identifier = good;
  std::memcpy(bad_identifier.data() + 4, "M002", 4);
  auto self_root = good;
  set32(self_root, 0, 0);  // the root table would start at the offset itself
  // The first vector of 4 elements whose next word looks like a string offset: the 4 dimension
  // names. Its length becomes absurd.
  auto bad_vector = good;
  for (std::size_t i = 8; i + 8 < bad_vector.size(); i += 4)
    if (get32(bad_vector, i) == 4 && get32(bad_vector, i + 4) < 64 && get32(bad_vector, i + 4) % 4 == 0) {
      set32(bad_vector, i, 0x10000000);
      break;
    }
  // A small buffer whose tables share one large vector 50,000 times: ~400 KiB that would decode
  // into ~20 GB.
  flatbuffers::FlatBufferBuilder fbb;
  const std::vector<float> big(50000, 1.0f);
  const auto values = fbb.CreateVector(big);
  const auto stats = tflite_metadata::CreateStats(fbb, values, values);
  const auto tensor = tflite_metadata::CreateTensorMetadata(fbb, 0, 0, 0, 0, 0, stats);
  const auto inputs = fbb.CreateVector(std::vector<flatbuffers::Offset<tflite_metadata::TensorMetadata>>(50000, tensor));
  const auto sg = tflite_metadata::CreateSubGraphMetadata(fbb, 0, 0, inputs);
  const auto sgs = fbb.CreateVector(std::vector<flatbuffers::Offset<tflite_metadata::SubGraphMetadata>>{sg});
  tflite_metadata::FinishModelMetadataBuffer(fbb, tflite_metadata::CreateModelMetadata(fbb, 0, 0, 0, sgs));
  std::vector<std::uint8_t> shared(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
  return {
      {"empty", {}, "TFLITE_METADATA is empty"},
      {"too_short", {1, 2, 3}, "too short for a FlatBuffer"},
      {"wrong_identifier", bad_identifier, "\"M001\" identifier"},
      {"truncated", truncated, "failed FlatBuffers verification"},
      {"root_offset_outside", bad_root, "failed FlatBuffers verification"},
      {"root_offset_self", self_root, "failed FlatBuffers verification"},
      {"vector_length_outside", bad_vector, "failed FlatBuffers verification"},
      {"shared_references", shared, "references the same data so many times"},
  };
}

/// CONVERSION_METADATA buffers that read_conversion_metadata() refuses.
inline std::vector<BrokenBuffer> broken_conversion_metadata() {
  const auto good = sample_conversion_metadata();
  auto truncated = good;
  truncated.resize(good.size() - 12);
  auto bad_root = good;
  set32(bad_root, 0, 0x7FFFFFF0);
  // The optimization modes vector (2 elements, the first PTQ_FULL_INTEGER = 1003).
  auto bad_vector = good;
  bool found = false;
  for (std::size_t i = 4; i + 8 <= bad_vector.size() && !found; i += 4)
    if (get32(bad_vector, i) == 2 && get32(bad_vector, i + 4) == 1003) {
      set32(bad_vector, i, 0x20000000);
      found = true;
    }
  return {
      {"empty", {}, "too short for a FlatBuffer"},
      {"too_short", {7, 7}, "too short for a FlatBuffer"},
      {"truncated", truncated, "CONVERSION_METADATA failed FlatBuffers verification"},
      {"root_offset_outside", bad_root, "CONVERSION_METADATA failed FlatBuffers verification"},
      {"vector_length_outside", found ? bad_vector : std::vector<std::uint8_t>{},
       found ? "CONVERSION_METADATA failed FlatBuffers verification" : "(modes vector not found)"},
  };
}

/// metadata_model() with the given TFLITE_METADATA and CONVERSION_METADATA bytes.
inline litelens::testing::ModelBuilder metadata_model_with(const std::vector<std::uint8_t>& tflite_metadata,
                                                           const std::vector<std::uint8_t>& conversion_metadata) {
  auto b = litelens::testing::conv_model();
  std::vector<std::uint8_t> version(16, 0);
  std::memcpy(version.data(), "2.3.0", 5);
  b.add_metadata("min_runtime_version", version);
  b.add_metadata("TFLITE_METADATA", tflite_metadata);
  b.add_metadata("CONVERSION_METADATA", conversion_metadata);
  return b;
}

}  // namespace litelens::hardening
