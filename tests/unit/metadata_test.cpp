// Model metadata (TFLITE_METADATA, CONVERSION_METADATA, the small entries) and associated files
// (the ZIP archive after the FlatBuffer): round trips, real models, and a corruption matrix of
// broken metadata buffers and hostile archives (metadata_cases.h, shared with the corruption
// matrix). The archives come from a small ZIP writer with its own CRC-32 (fuzz/model_zoo.h), so
// the reader is checked against an independent implementation.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "conversion_metadata_generated.h"
#include "litelens/metadata.h"
#include "litelens/model.h"
#include "metadata_cases.h"
#include "metadata_generated.h"
#include "model_builder.h"
#include "model_zoo.h"

namespace fs = std::filesystem;
namespace meta = tflite_metadata;
namespace conv = tflite_conversion;
using litelens::Error;
using litelens::ErrorKind;
using litelens::Model;
using litelens::testing::ModelBuilder;

namespace {

// ---- helpers -----------------------------------------------------------------------------------

std::vector<std::uint8_t> u8(const std::string& s) { return {s.begin(), s.end()}; }

std::string text(std::span<const std::byte> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

// The ZIP writer (with its own bitwise CRC-32, independent of zlib) and the sample metadata are
// shared with the corruption matrix: fuzz/model_zoo.h; the broken cases: metadata_cases.h.
using litelens::hardening::deflate_block_entry;
using litelens::hardening::file_ref;
using litelens::hardening::deflated_animals;
using litelens::hardening::get32;
using litelens::hardening::make_zip;
using litelens::hardening::model_with_zip;
using litelens::hardening::unit;
using litelens::hardening::set16;
using litelens::hardening::set32;
using litelens::hardening::set64;
using litelens::hardening::stored_entry;
using litelens::hardening::with_archive;
using litelens::hardening::Zip;
using litelens::hardening::ZipEntry;
using litelens::hardening::ZipOptions;

std::uint32_t crc32_ref(const std::vector<std::uint8_t>& data) { return litelens::hardening::zip_crc32(data); }

const std::string& kAnimals = litelens::hardening::animals_text();

std::vector<std::byte> plain_model() { return litelens::testing::conv_model().finish(); }

template <class F>
void expect_error(F&& f, ErrorKind kind, const std::string& fragment) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    EXPECT_NE(e.message().find(fragment), std::string::npos) << "message: " << e.message() << "\nwanted: " << fragment;
    return;
  }
  ADD_FAILURE() << "expected an Error containing: " << fragment;
}

// Per-process scratch space (ctest runs tests in parallel processes), removed at exit.
fs::path scratch_root() {
  return fs::temp_directory_path() / "litelens-tests" / ("metadata-" + std::to_string(::getpid()));
}

class ScratchCleanup : public ::testing::Environment {
 public:
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(scratch_root(), ec);
  }
};
[[maybe_unused]] auto* const g_scratch_cleanup = ::testing::AddGlobalTestEnvironment(new ScratchCleanup);

fs::path fresh_dir(const std::string& name) {
  const auto dir = scratch_root() / name;
  fs::remove_all(dir);
  return dir;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) out.push_back(fs::relative(e.path(), dir).string());
  std::sort(out.begin(), out.end());
  return out;
}

// ---- metadata buffers ---------------------------------------------------------------------------

std::vector<std::uint8_t> pack(const meta::ModelMetadataT& m) { return litelens::hardening::pack_model_metadata(m); }

// Uses every table, union member and enum of the metadata schema.
meta::ModelMetadataT full_metadata() { return litelens::hardening::sample_model_metadata(); }

std::vector<std::byte> model_with_metadata(const std::vector<std::uint8_t>& metadata,
                                           const std::string& name = "TFLITE_METADATA") {
  auto b = litelens::testing::conv_model();
  b.add_metadata("min_runtime_version", u8(std::string("1.14.0") + std::string(10, '\0')));
  b.add_metadata(name, metadata);
  return b.finish();
}

std::vector<std::uint8_t> conversion_bytes() { return litelens::hardening::sample_conversion_metadata(); }

// ---- the CLI ----------------------------------------------------------------------------------

struct CliResult {
  int status = -1;
  std::string out;
  std::string err;
};

CliResult run_cli(const std::string& args) {
  const auto dir = fresh_dir("cli-output");
  fs::create_directories(dir);
  const std::string cmd = std::string("'") + LITELENS_CLI_PATH + "' " + args + " >'" + (dir / "out").string() +
                          "' 2>'" + (dir / "err").string() + "'";
  const int raw = std::system(cmd.c_str());
  CliResult r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  r.out = read_file(dir / "out");
  r.err = read_file(dir / "err");
  return r;
}

}  // namespace

// =================================================================================================
// TFLITE_METADATA

TEST(metadata, decodes_every_field) {
  const Model model = Model::from_bytes(model_with_metadata(pack(full_metadata())));
  const auto info = litelens::read_model_metadata(model);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->name, "Bird classifier");
  EXPECT_EQ(info->description, "Finds birds in pictures and sounds.");
  EXPECT_EQ(info->version, "v3");
  EXPECT_EQ(info->author, "litelens tests");
  EXPECT_EQ(info->license, "Apache-2.0");
  EXPECT_EQ(info->min_parser_version, "1.5.0");
  ASSERT_EQ(info->associated_files.size(), 1u);
  EXPECT_EQ(info->associated_files[0].name, "README.txt");
  EXPECT_EQ(info->associated_files[0].type_name, "DESCRIPTIONS");
  EXPECT_EQ(info->associated_files[0].description, "how to use");

  ASSERT_EQ(info->subgraphs.size(), 1u);
  const auto& sg = info->subgraphs[0];
  EXPECT_EQ(sg.name, "main");
  EXPECT_EQ(sg.description, "the only subgraph");
  ASSERT_EQ(sg.inputs.size(), 2u);
  ASSERT_EQ(sg.outputs.size(), 2u);

  const auto& image = sg.inputs[0];
  EXPECT_EQ(image.name, "image");
  EXPECT_EQ(image.description, "an RGB picture");
  EXPECT_EQ(image.dimension_names, (std::vector<std::string>{"batch", "height", "width", "channels"}));
  ASSERT_TRUE(image.content.has_value());
  EXPECT_EQ(image.content->kind, litelens::ContentInfo::Kind::image);
  EXPECT_EQ(image.content->color_space, "RGB");
  EXPECT_EQ(image.content->default_width, 224u);
  EXPECT_EQ(image.content->default_height, 192u);
  ASSERT_TRUE(image.content->range.has_value());
  EXPECT_EQ(image.content->range->min, 1);
  EXPECT_EQ(image.content->range->max, 2);
  ASSERT_EQ(image.process_units.size(), 1u);
  EXPECT_EQ(image.process_units[0].kind, litelens::ProcessUnitInfo::Kind::normalization);
  EXPECT_EQ(image.process_units[0].mean, (std::vector<float>{127.5f}));
  EXPECT_EQ(image.process_units[0].std, (std::vector<float>{127.5f, 64.0f, 32.0f}));
  EXPECT_EQ(image.stats_max, (std::vector<float>{255.0f}));
  EXPECT_EQ(image.stats_min, (std::vector<float>{0.0f}));

  const auto& audio = sg.inputs[1];
  ASSERT_TRUE(audio.content.has_value());
  EXPECT_EQ(audio.content->kind, litelens::ContentInfo::Kind::audio);
  EXPECT_EQ(audio.content->sample_rate, 16000u);
  EXPECT_EQ(audio.content->channels, 2u);
  EXPECT_FALSE(audio.content->range.has_value());
  EXPECT_TRUE(audio.stats_max.empty());

  const auto& scores = sg.outputs[0];
  EXPECT_EQ(scores.content->kind, litelens::ContentInfo::Kind::feature);
  ASSERT_EQ(scores.process_units.size(), 2u);
  EXPECT_EQ(scores.process_units[0].kind, litelens::ProcessUnitInfo::Kind::score_calibration);
  EXPECT_EQ(scores.process_units[0].score_transformation, "INVERSE_LOGISTIC");
  EXPECT_FLOAT_EQ(scores.process_units[0].default_score, 0.25f);
  EXPECT_EQ(scores.process_units[1].kind, litelens::ProcessUnitInfo::Kind::score_thresholding);
  EXPECT_FLOAT_EQ(scores.process_units[1].global_score_threshold, 0.5f);
  ASSERT_EQ(scores.associated_files.size(), 2u);
  EXPECT_EQ(scores.associated_files[0].name, "labels.txt");
  EXPECT_EQ(scores.associated_files[0].type, 2);
  EXPECT_EQ(scores.associated_files[0].type_name, "TENSOR_AXIS_LABELS");
  EXPECT_EQ(scores.associated_files[0].locale, "en");
  EXPECT_EQ(scores.associated_files[0].version, "2");
  EXPECT_EQ(scores.associated_files[1].locale, "fr");

  const auto& boxes = sg.outputs[1];
  EXPECT_EQ(boxes.content->kind, litelens::ContentInfo::Kind::bounding_box);
  EXPECT_EQ(boxes.content->box_index, (std::vector<std::uint32_t>{1, 0, 3, 2}));
  EXPECT_EQ(boxes.content->box_type, "CENTER");
  EXPECT_EQ(boxes.content->coordinate_type, "PIXEL");

  ASSERT_EQ(sg.input_process_units.size(), 1u);
  EXPECT_EQ(sg.input_process_units[0].kind, litelens::ProcessUnitInfo::Kind::bert_tokenizer);
  ASSERT_EQ(sg.input_process_units[0].vocab_files.size(), 1u);
  EXPECT_EQ(sg.input_process_units[0].vocab_files[0].type_name, "VOCABULARY");
  ASSERT_EQ(sg.output_process_units.size(), 2u);
  EXPECT_EQ(sg.output_process_units[0].kind, litelens::ProcessUnitInfo::Kind::sentence_piece_tokenizer);
  ASSERT_EQ(sg.output_process_units[0].sentence_piece_models.size(), 1u);
  EXPECT_EQ(sg.output_process_units[0].sentence_piece_models[0].name, "sp.model");
  EXPECT_EQ(sg.output_process_units[0].vocab_files[0].name, "sp.vocab");
  EXPECT_EQ(sg.output_process_units[1].kind, litelens::ProcessUnitInfo::Kind::regex_tokenizer);
  EXPECT_EQ(sg.output_process_units[1].delim_regex_pattern, "[ ,]+");

  ASSERT_EQ(sg.input_tensor_groups.size(), 1u);
  EXPECT_EQ(sg.input_tensor_groups[0].name, "media");
  ASSERT_EQ(sg.output_tensor_groups.size(), 1u);
  EXPECT_EQ(sg.output_tensor_groups[0].tensor_names, (std::vector<std::string>{"scores", "boxes"}));
  ASSERT_EQ(sg.associated_files.size(), 1u);
  EXPECT_EQ(sg.associated_files[0].type_name, "SCANN_INDEX_FILE");
  ASSERT_EQ(sg.custom_metadata.size(), 1u);
  EXPECT_EQ(sg.custom_metadata[0].name, "vendor.settings");
  EXPECT_EQ(sg.custom_metadata[0].data, (std::vector<std::uint8_t>{1, 2, 3, 250}));

  std::vector<std::string> all;
  for (const auto& f : info->all_associated_files()) all.push_back(f.name);
  EXPECT_EQ(all, (std::vector<std::string>{"README.txt", "index.scann", "vocab.txt", "sp.model", "sp.vocab", "labels.txt",
                                           "labels_fr.txt"}));
}

TEST(metadata, newer_enum_values_and_union_members_are_not_errors) {
  meta::ModelMetadataT m;
  auto sg = std::make_unique<meta::SubGraphMetadataT>();
  auto t = std::make_unique<meta::TensorMetadataT>();
  t->name = "future";
  t->content = std::make_unique<meta::ContentT>();
  t->content->content_properties.type = static_cast<meta::ContentProperties>(9);  // no table
  auto u = std::make_unique<meta::ProcessUnitT>();
  u->options.type = static_cast<meta::ProcessUnitOptions>(77);
  t->process_units.push_back(std::move(u));
  t->associated_files.push_back(file_ref("x.bin", static_cast<meta::AssociatedFileType>(42)));
  sg->input_tensor_metadata.push_back(std::move(t));
  m.subgraph_metadata.push_back(std::move(sg));

  const Model model = Model::from_bytes(model_with_metadata(pack(m)));
  const auto info = litelens::read_model_metadata(model);
  ASSERT_TRUE(info.has_value());
  const auto& t0 = info->subgraphs.at(0).inputs.at(0);
  EXPECT_EQ(t0.content->kind, litelens::ContentInfo::Kind::unknown);
  EXPECT_EQ(t0.content->kind_code, 9);
  EXPECT_EQ(t0.process_units.at(0).kind, litelens::ProcessUnitInfo::Kind::unknown);
  EXPECT_EQ(t0.process_units.at(0).kind_code, 77);
  EXPECT_EQ(t0.associated_files.at(0).type, 42);
  EXPECT_EQ(t0.associated_files.at(0).type_name, "UNKNOWN(42)");
}

TEST(metadata, absent_entries_are_nullopt) {
  const Model model = Model::from_bytes(plain_model());
  EXPECT_FALSE(litelens::read_model_metadata(model).has_value());
  EXPECT_FALSE(litelens::read_conversion_metadata(model).has_value());
  EXPECT_FALSE(litelens::read_min_runtime_version(model).has_value());
  EXPECT_TRUE(litelens::associated_files(model).empty());
}

TEST(metadata, decodes_unaligned_buffers) {
  const auto bytes = pack(full_metadata());
  std::vector<std::byte> shifted(bytes.size() + 1);
  std::memcpy(shifted.data() + 1, bytes.data(), bytes.size());
  const auto info = litelens::decode_model_metadata(std::span(shifted).subspan(1));
  EXPECT_EQ(info.name, "Bird classifier");
  EXPECT_EQ(info.subgraphs.at(0).inputs.at(0).process_units.at(0).std.size(), 3u);
}

// A small buffer whose tables share one large vector thousands of times must not decode into an
// enormous tree.
TEST(metadata, shared_references_cannot_blow_up_decoding) {
  flatbuffers::FlatBufferBuilder fbb;
  const std::vector<float> big(50000, 1.0f);
  const auto values = fbb.CreateVector(big);
  const auto stats = meta::CreateStats(fbb, values, values);
  const auto tensor = meta::CreateTensorMetadata(fbb, 0, 0, 0, 0, 0, stats);
  const std::vector<flatbuffers::Offset<meta::TensorMetadata>> many(50000, tensor);
  const auto inputs = fbb.CreateVector(many);
  const auto sg = meta::CreateSubGraphMetadata(fbb, 0, 0, inputs);
  const auto sgs = fbb.CreateVector(std::vector<flatbuffers::Offset<meta::SubGraphMetadata>>{sg});
  meta::FinishModelMetadataBuffer(fbb, meta::CreateModelMetadata(fbb, 0, 0, 0, sgs));
  const std::vector<std::uint8_t> bytes(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
  ASSERT_LT(bytes.size(), 1u << 20);  // ~400 KiB that would decode to ~20 GB

  const Model model = Model::from_bytes(model_with_metadata(bytes));
  expect_error([&] { litelens::read_model_metadata(model); }, ErrorKind::invalid_metadata,
               "references the same data so many times");
}

// Broken metadata buffers (metadata_cases.h, also cases of the corruption matrix): each keeps
// the model openable and makes the metadata call fail with a specific message at the entry's
// offset.
TEST(metadata_corruption, broken_buffers_give_specific_errors) {
  const auto cases = litelens::hardening::broken_model_metadata();
  ASSERT_EQ(cases.size(), 8u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const Model model = Model::from_bytes(model_with_metadata(c.bytes));  // opening still works
    try {
      litelens::read_model_metadata(model);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::invalid_metadata);
      EXPECT_NE(e.message().find(c.fragment), std::string::npos) << e.message();
      EXPECT_EQ(e.label(), model.label());
      for (const auto& m : model.metadata())
        if (m.name == "TFLITE_METADATA" && m.data_offset)
          EXPECT_EQ(e.offset(), *m.data_offset + (c.name == "wrong_identifier" ? 4 : 0));
    }
    // The rest of the metadata is still readable.
    ASSERT_TRUE(litelens::read_min_runtime_version(model).has_value());
    EXPECT_EQ(litelens::read_min_runtime_version(model)->version, "1.14.0");
  }
}

// =================================================================================================
// CONVERSION_METADATA and the small entries

TEST(metadata, decodes_conversion_metadata) {
  const Model model = Model::from_bytes(model_with_metadata(conversion_bytes(), "CONVERSION_METADATA"));
  const auto c = litelens::read_conversion_metadata(model);
  ASSERT_TRUE(c.has_value());
  EXPECT_TRUE(c->has_environment);
  EXPECT_EQ(c->tensorflow_version, "2.16.1");
  EXPECT_EQ(c->api_version, 2u);
  EXPECT_EQ(c->model_type, "KERAS_MODEL");
  EXPECT_EQ(c->model_hash, 0x0123456789abcdefULL);
  EXPECT_EQ(c->optimization_modes, (std::vector<std::string>{"PTQ_FULL_INTEGER", "UNKNOWN(4242)"}));
  EXPECT_TRUE(c->allow_custom_ops);
  EXPECT_FALSE(c->enable_select_tf_ops);
  EXPECT_TRUE(c->force_select_tf_ops);
  ASSERT_EQ(c->sparsity_block_sizes.size(), 1u);
  EXPECT_EQ(c->sparsity_block_sizes[0], (std::vector<std::uint32_t>{4, 1}));
}

TEST(metadata_corruption, broken_conversion_metadata) {
  const auto cases = litelens::hardening::broken_conversion_metadata();
  ASSERT_EQ(cases.size(), 5u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const Model model = Model::from_bytes(model_with_metadata(c.bytes, "CONVERSION_METADATA"));
    expect_error([&] { litelens::read_conversion_metadata(model); }, ErrorKind::invalid_metadata, c.fragment);
    EXPECT_EQ(litelens::read_min_runtime_version(model)->version, "1.14.0");
  }
}

TEST(metadata, small_entries) {
  auto b = litelens::testing::conv_model();
  b.add_metadata("min_runtime_version", u8(std::string("2.3.0") + std::string(11, '\0')));
  b.add_metadata("buffer_location", u8("outside flatbuffers"));
  b.add_metadata("reduced_precision_support", u8("fp16accfp32"));
  b.add_metadata("binary", {0x01, 0xff, 0x00});
  const Model model = Model::from_bytes(b.finish());
  const auto v = litelens::read_min_runtime_version(model);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->version, "2.3.0");
  EXPECT_TRUE(v->terminated);
  EXPECT_EQ(litelens::metadata_bytes_text(*model.metadata("buffer_location")), "outside flatbuffers");
  EXPECT_EQ(litelens::metadata_bytes_text(*model.metadata("reduced_precision_support")), "fp16accfp32");
  EXPECT_EQ(litelens::metadata_bytes_text(*model.metadata("binary")), "0x01ff00");

  auto unterminated = litelens::testing::conv_model();
  unterminated.add_metadata("min_runtime_version", u8("1.2.3"));
  const Model model2 = Model::from_bytes(unterminated.finish());
  const auto v2 = litelens::read_min_runtime_version(model2);
  ASSERT_TRUE(v2.has_value());
  EXPECT_EQ(v2->version, "1.2.3");
  EXPECT_FALSE(v2->terminated);
}

// =================================================================================================
// Associated files

TEST(metadata_files, stored_members_round_trip) {
  for (const bool relative : {false, true}) {
    SCOPED_TRACE(relative ? "offsets relative to the archive" : "absolute offsets");
    const auto file = model_with_zip({stored_entry("labels.txt", "sparrow\nrobin\nwren\n"),
                                      stored_entry("vocab/en.txt", "hello\nworld\n"), stored_entry("empty.txt", "")},
                                     {.relative = relative, .comment = "made by litelens tests"});
    const Model model = Model::from_bytes(file);
    const auto files = litelens::associated_files(model);
    ASSERT_EQ(files.size(), 3u);
    EXPECT_EQ(files[0].name, "labels.txt");
    EXPECT_EQ(files[1].name, "vocab/en.txt");
    EXPECT_EQ(files[2].name, "empty.txt");
    EXPECT_EQ(files[0].size, 19u);
    EXPECT_EQ(files[0].compressed_size, 19u);
    EXPECT_EQ(files[0].compression_name, "stored");
    EXPECT_EQ(files[0].crc32, crc32_ref(u8("sparrow\nrobin\nwren\n")));
    EXPECT_GE(files[0].header_offset, model.flatbuffer_size());

    const auto data = litelens::associated_file_data(model, files[0]);
    EXPECT_EQ(text(data), "sparrow\nrobin\nwren\n");
    // Zero-copy: the span points into the model's bytes at the reported offset.
    EXPECT_EQ(data.data(), model.bytes().data() + files[0].offset);
    EXPECT_EQ(text(litelens::associated_file_data(model, files[1])), "hello\nworld\n");
    EXPECT_TRUE(litelens::associated_file_data(model, files[2]).empty());
    EXPECT_EQ(text(litelens::read_associated_file(model, files[1])), "hello\nworld\n");

    const auto found = litelens::find_associated_file(model, "vocab/en.txt");
    ASSERT_TRUE(found.has_value());
    EXPECT_EQ(found->offset, files[1].offset);
    EXPECT_FALSE(litelens::find_associated_file(model, "nope").has_value());

    const auto dir = fresh_dir(relative ? "roundtrip-relative" : "roundtrip-absolute");
    const auto written = litelens::extract_associated_files(model, dir);
    EXPECT_EQ(written.size(), 3u);
    EXPECT_EQ(read_file(dir / "labels.txt"), "sparrow\nrobin\nwren\n");
    EXPECT_EQ(read_file(dir / "vocab" / "en.txt"), "hello\nworld\n");
    EXPECT_EQ(read_file(dir / "empty.txt"), "");
    // Nothing else is left behind (no temporary files).
    EXPECT_EQ(listing(dir), (std::vector<std::string>{"empty.txt", "labels.txt", "vocab", "vocab/en.txt"}));
  }
}

TEST(metadata_files, zip64_archive) {
  const auto file = model_with_zip({stored_entry("a.txt", "alpha"), stored_entry("b.txt", "beta")}, {.zip64 = true});
  const Model model = Model::from_bytes(file);
  const auto files = litelens::associated_files(model);
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(text(litelens::associated_file_data(model, files[0])), "alpha");
  EXPECT_EQ(text(litelens::associated_file_data(model, files[1])), "beta");
}

TEST(metadata_files, zip64_with_relative_offsets) {
  const auto file =
      model_with_zip({stored_entry("a.txt", "alpha"), stored_entry("b.txt", "beta")}, {.relative = true, .zip64 = true});
  const Model model = Model::from_bytes(file);
  const auto files = litelens::associated_files(model);
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(text(litelens::associated_file_data(model, files[1])), "beta");
}

TEST(metadata_files, metadata_and_archive_together) {
  auto b = litelens::testing::conv_model();
  b.add_metadata("TFLITE_METADATA", pack(full_metadata()));
  auto model_bytes = b.finish();
  const Zip z = make_zip({stored_entry("labels.txt", "a\nb\n"), stored_entry("README.txt", "read me")}, model_bytes.size());
  const Model model = Model::from_bytes(with_archive(std::move(model_bytes), z));
  EXPECT_EQ(litelens::read_model_metadata(model)->name, "Bird classifier");
  EXPECT_EQ(litelens::associated_files(model).size(), 2u);
}

TEST(metadata_files, deflate_members) {
  const auto file = model_with_zip({deflated_animals("animals.txt"), deflate_block_entry("plain.txt", "no compression")});
  const Model model = Model::from_bytes(file);
  const auto files = litelens::associated_files(model);
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0].compression_name, "deflate");
  EXPECT_EQ(files[0].size, kAnimals.size());
  EXPECT_EQ(files[0].compressed_size, 21u);
  EXPECT_FALSE(files[0].is_stored());
  EXPECT_TRUE(files[0].is_supported());
  EXPECT_EQ(text(litelens::read_associated_file(model, files[0])), kAnimals);
  EXPECT_EQ(text(litelens::read_associated_file(model, files[1])), "no compression");
  EXPECT_THROW(litelens::associated_file_data(model, files[0]), std::invalid_argument);

  const auto dir = fresh_dir("deflate");
  litelens::extract_associated_files(model, dir);
  EXPECT_EQ(read_file(dir / "animals.txt"), kAnimals);
  EXPECT_EQ(read_file(dir / "plain.txt"), "no compression");
}

TEST(metadata_files, no_archive_after_plain_trailing_bytes) {
  auto file = plain_model();
  for (int i = 0; i < 100; ++i) file.push_back(static_cast<std::byte>(i * 7));
  const Model model = Model::from_bytes(file);
  EXPECT_TRUE(litelens::associated_files(model).empty());
}

// Hostile appended archives (metadata_cases.h, also cases of the corruption matrix): every case
// must be refused with its own message, while the model itself keeps opening.
TEST(metadata_corruption, hostile_archives_give_specific_errors) {
  const auto cases = litelens::hardening::hostile_archives();
  ASSERT_GE(cases.size(), 36u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const Model model = Model::from_bytes(model_with_zip(c.entries, c.options, c.patch));  // still opens
    expect_error([&] { litelens::associated_files(model); }, ErrorKind::invalid_metadata, c.fragment);
    const auto dir = fresh_dir("hostile");
    expect_error([&] { litelens::extract_associated_files(model, dir); }, ErrorKind::invalid_metadata, c.fragment);
    EXPECT_TRUE(listing(dir).empty()) << "extraction wrote files for a hostile archive";
    EXPECT_FALSE(fs::exists(dir.parent_path() / "evil.txt"));
  }
}

// A member marked as a Unix symlink is written as a plain file holding the link text: extraction
// never creates links.
TEST(metadata_files, symlink_members_are_written_as_plain_files) {
  ZipEntry link = stored_entry("link", "/etc/passwd");
  link.external_attributes = 0120777u << 16;
  const Model model = Model::from_bytes(model_with_zip({link, stored_entry("a.txt", "alpha")}));
  ASSERT_EQ(litelens::associated_files(model).size(), 2u);
  const auto dir = fresh_dir("symlink");
  litelens::extract_associated_files(model, dir);
  EXPECT_FALSE(fs::is_symlink(dir / "link"));
  EXPECT_TRUE(fs::is_regular_file(dir / "link"));
  EXPECT_EQ(read_file(dir / "link"), "/etc/passwd");
}

// Decompression bombs: the declared size bounds what is inflated, and a declared size is never
// an allocation.
TEST(metadata_corruption, decompression_bombs) {
  // The stream itself is sound: declared truthfully, it inflates to 1 MiB of zeros.
  const auto honest = litelens::hardening::zeros_entry("zeros.bin", 4064);
  EXPECT_LT(honest.stored.size(), 7000u);
  const Model model = Model::from_bytes(model_with_zip({honest}));
  const auto files = litelens::associated_files(model);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].size, 1048513u);
  const auto data = litelens::read_associated_file(model, files[0]);
  EXPECT_EQ(data.size(), 1048513u);
  EXPECT_TRUE(std::all_of(data.begin(), data.end(), [](std::byte b) { return b == std::byte{0}; }));
  for (const auto& c : litelens::hardening::bad_member_data()) {
    SCOPED_TRACE(c.name);
    const Model m = Model::from_bytes(model_with_zip(c.entries, c.options, c.patch));
    std::vector<litelens::AssociatedFile> listed;
    EXPECT_NO_THROW(listed = litelens::associated_files(m)) << "the directory itself is fine";
    const auto dir = fresh_dir("member-data");
    expect_error([&] { litelens::extract_associated_files(m, dir); }, ErrorKind::invalid_metadata, c.fragment);
    EXPECT_TRUE(listing(dir).empty());
  }
}

TEST(metadata_corruption, bad_member_data) {
  // A flipped data byte: the CRC no longer matches.
  {
    const Model model = Model::from_bytes(
        model_with_zip({stored_entry("a.txt", "intact"), stored_entry("b.txt", "damaged")}, {}, [](Zip& z) {
          z.bytes[z.local[1] + 30 + 5] ^= 0x20;
        }));
    const auto files = litelens::associated_files(model);  // the directory itself is fine
    ASSERT_EQ(files.size(), 2u);
    EXPECT_EQ(text(litelens::associated_file_data(model, files[0])), "intact");
    expect_error([&] { litelens::associated_file_data(model, files[1]); }, ErrorKind::invalid_metadata, "CRC-32");
    expect_error([&] { litelens::read_associated_file(model, files[1]); }, ErrorKind::invalid_metadata, "CRC-32");
    // All or nothing: the good first member is not left behind either.
    const auto dir = fresh_dir("crc");
    expect_error([&] { litelens::extract_associated_files(model, dir); }, ErrorKind::invalid_metadata, "CRC-32");
    EXPECT_TRUE(listing(dir).empty());
  }
  // Corrupt DEFLATE data.
  {
    auto e = deflated_animals("animals.txt");
    e.stored[0] = 0xFF;  // BTYPE=11 is reserved
    const Model model = Model::from_bytes(model_with_zip({e}));
    const auto files = litelens::associated_files(model);
    expect_error([&] { litelens::read_associated_file(model, files.at(0)); }, ErrorKind::invalid_metadata,
                 "DEFLATE data is corrupt");
  }
  // DEFLATE data that inflates to more than declared (a decompression bomb's signature).
  {
    auto e = deflated_animals("animals.txt");
    e.size = 10;
    const Model model = Model::from_bytes(model_with_zip({e}));
    const auto files = litelens::associated_files(model);
    expect_error([&] { litelens::read_associated_file(model, files.at(0)); }, ErrorKind::invalid_metadata,
                 "more than the 10 bytes");
  }
  // DEFLATE data that stops early.
  {
    auto e = deflated_animals("animals.txt");
    e.stored.resize(8);
    const Model model = Model::from_bytes(model_with_zip({e}));
    const auto files = litelens::associated_files(model);
    expect_error([&] { litelens::read_associated_file(model, files.at(0)); }, ErrorKind::invalid_metadata,
                 "ends early");
  }
  // A compression method litelens does not decode (12 = bzip2).
  {
    auto e = stored_entry("b.bz2", "pretend");
    e.method = 12;
    const Model model = Model::from_bytes(model_with_zip({e}));
    const auto files = litelens::associated_files(model);
    ASSERT_EQ(files.size(), 1u);
    EXPECT_EQ(files[0].compression_name, "method 12");
    EXPECT_FALSE(files[0].is_supported());
    expect_error([&] { litelens::read_associated_file(model, files[0]); }, ErrorKind::invalid_metadata,
                 "method 12");
    const auto dir = fresh_dir("bzip2");
    expect_error([&] { litelens::extract_associated_files(model, dir); }, ErrorKind::invalid_metadata, "method 12");
    EXPECT_TRUE(listing(dir).empty());
  }
}

TEST(metadata_files, caller_descriptions_are_bounds_checked) {
  const Model model = Model::from_bytes(model_with_zip({stored_entry("a.txt", "alpha")}));
  auto f = litelens::associated_files(model).at(0);
  f.compressed_size = model.file_size();
  EXPECT_THROW(litelens::associated_file_data(model, f), std::invalid_argument);
  f.compressed_size = 1;
  f.offset = 0;  // inside the FlatBuffer
  EXPECT_THROW(litelens::associated_file_data(model, f), std::invalid_argument);
}

TEST(metadata_files, extraction_output_errors) {
  const Model model = Model::from_bytes(model_with_zip({stored_entry("a.txt", "alpha"), stored_entry("sub/b.txt", "b")}));
  // The output folder is a regular file.
  const auto base = fresh_dir("output-errors");
  fs::create_directories(base);
  { std::ofstream(base / "plain-file") << "x"; }
  expect_error([&] { litelens::extract_associated_files(model, base / "plain-file"); }, ErrorKind::output,
               "cannot create the output folder");
  // A folder where a member's file should go.
  const auto taken = base / "taken";
  fs::create_directories(taken / "a.txt");
  expect_error([&] { litelens::extract_associated_files(model, taken); }, ErrorKind::output, "a folder of that name");
  EXPECT_EQ(listing(taken), (std::vector<std::string>{"a.txt"}));
  // A symlink inside the output folder must not carry writes elsewhere.
  const auto outside = base / "outside";
  const auto linked = base / "linked";
  fs::create_directories(outside);
  fs::create_directories(linked);
  fs::create_directory_symlink(outside, linked / "sub");
  expect_error([&] { litelens::extract_associated_files(model, linked); }, ErrorKind::output,
               "resolves outside the output folder");
  EXPECT_TRUE(listing(outside).empty());
  // Existing files are replaced whole.
  const auto again = base / "again";
  fs::create_directories(again);
  { std::ofstream(again / "a.txt") << "an older, longer version"; }
  litelens::extract_associated_files(model, again);
  EXPECT_EQ(read_file(again / "a.txt"), "alpha");
}

// Random byte changes in the metadata buffer and in the archive: whatever happens, only
// litelens::Error comes out (the sanitizer build checks that nothing reads out of bounds).
TEST(metadata_corruption, random_damage_only_gives_errors) {
  auto b = litelens::testing::conv_model();
  b.add_metadata("TFLITE_METADATA", pack(full_metadata()));
  b.add_metadata("CONVERSION_METADATA", conversion_bytes());
  auto model_bytes = b.finish();
  const Model pristine = Model::from_bytes(model_bytes);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> regions;  // [offset, size) that may change
  for (const auto& e : pristine.metadata())
    if (e.data_offset) regions.emplace_back(*e.data_offset, e.data.size());
  const std::uint64_t archive_at = model_bytes.size();
  const Zip z = make_zip({stored_entry("labels.txt", "sparrow\nrobin\n"), deflated_animals("animals.txt"),
                          stored_entry("dir/vocab.txt", "a b c")},
                         archive_at, {.zip64 = false, .comment = "c"});
  const auto original = with_archive(std::move(model_bytes), z);
  regions.emplace_back(archive_at, z.bytes.size());

  std::uint64_t state = 0x9E3779B97F4A7C15ULL;
  const auto next = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  int errors = 0, clean = 0;
  for (int round = 0; round < 3000; ++round) {
    auto damaged = original;
    const int flips = 1 + static_cast<int>(next() % 4);
    for (int k = 0; k < flips; ++k) {
      const auto& [at, size] = regions[next() % regions.size()];
      const std::uint64_t pos = at + next() % size;
      damaged[pos] = static_cast<std::byte>(next() & 0xFF);
    }
    const Model model = Model::from_bytes(damaged);  // the FlatBuffer itself is untouched
    bool failed = false;
    const auto guarded = [&](const auto& f) {
      try {
        f();
      } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::invalid_metadata) << e.what();
        failed = true;
      }
    };
    guarded([&] { litelens::read_model_metadata(model); });
    guarded([&] { litelens::read_conversion_metadata(model); });
    guarded([&] {
      for (const auto& f : litelens::associated_files(model))
        if (f.is_supported()) litelens::read_associated_file(model, f);
    });
    if (round % 100 == 0) guarded([&] { litelens::extract_associated_files(model, fresh_dir("random")); });
    (failed ? errors : clean)++;
  }
  // Both outcomes occur, so the loop really exercised the checks.
  EXPECT_GT(errors, 100);
  EXPECT_GT(clean, 10);
}

// A model written by TFLite Support's own tools (tflite-support 0.4.4, Python):
// metadata_writers.image_classifier.MetadataWriter.create_for_inference(model,
// input_norm_mean=[127.5], input_norm_std=[127.5], label_file_paths=["labels.txt"]).populate(),
// applied to a 428-byte RESHAPE model (input "image" [1,4,4,3] float32, output "probability"
// [1,5]). The populator rewrites the FlatBuffer in Python (4-byte alignment only) and appends the
// labels with Python's zipfile, so this checks litelens against the real writer's bytes.
const unsigned char kSupportWriterModel[] = {
    0x1c, 0x00, 0x00, 0x00, 0x54, 0x46, 0x4c, 0x33, 0x00, 0x00, 0x12, 0x00, 0x1c, 0x00, 0x18, 0x00, 0x14, 0x00, 0x10, 0x00,
    0x0c, 0x00, 0x08, 0x00, 0x00, 0x00, 0x04, 0x00, 0x12, 0x00, 0x00, 0x00, 0x18, 0x00, 0x00, 0x00, 0x44, 0x00, 0x00, 0x00,
    0x30, 0x03, 0x00, 0x00, 0x44, 0x03, 0x00, 0x00, 0x64, 0x04, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x0c, 0x00, 0x00, 0x00, 0x08, 0x00, 0x0c, 0x00, 0x08, 0x00, 0x04, 0x00, 0x08, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,
    0x04, 0x00, 0x00, 0x00, 0x0f, 0x00, 0x00, 0x00, 0x54, 0x46, 0x4c, 0x49, 0x54, 0x45, 0x5f, 0x4d, 0x45, 0x54, 0x41, 0x44,
    0x41, 0x54, 0x41, 0x00, 0x03, 0x00, 0x00, 0x00, 0xe8, 0x02, 0x00, 0x00, 0xcc, 0x02, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00,
    0x42, 0xfd, 0xff, 0xff, 0x04, 0x00, 0x00, 0x00, 0xb0, 0x02, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x00, 0x4d, 0x30, 0x30, 0x31,
    0x14, 0x00, 0x14, 0x00, 0x10, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
    0x14, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x18, 0x00, 0x00, 0x00, 0x20, 0x02, 0x00, 0x00, 0x70, 0x02, 0x00, 0x00,
    0x05, 0x00, 0x00, 0x00, 0x31, 0x2e, 0x30, 0x2e, 0x30, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00,
    0x0c, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x04, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00,
    0x14, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x18, 0x00, 0x00, 0x00, 0x00, 0x00, 0x12, 0x00, 0x18, 0x00, 0x14, 0x00,
    0x10, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x08, 0x00, 0x04, 0x00, 0x12, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00,
    0x7c, 0x00, 0x00, 0x00, 0x94, 0x00, 0x00, 0x00, 0xa4, 0x00, 0x00, 0x00, 0xd0, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x10, 0x00, 0x0c, 0x00, 0x08, 0x00, 0x07, 0x00, 0x0a, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x02, 0x08, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x00, 0x00, 0x33, 0x00, 0x00, 0x00, 0x4c, 0x61, 0x62, 0x65,
    0x6c, 0x73, 0x20, 0x66, 0x6f, 0x72, 0x20, 0x63, 0x61, 0x74, 0x65, 0x67, 0x6f, 0x72, 0x69, 0x65, 0x73, 0x20, 0x74, 0x68,
    0x61, 0x74, 0x20, 0x74, 0x68, 0x65, 0x20, 0x6d, 0x6f, 0x64, 0x65, 0x6c, 0x20, 0x63, 0x61, 0x6e, 0x20, 0x72, 0x65, 0x63,
    0x6f, 0x67, 0x6e, 0x69, 0x7a, 0x65, 0x2e, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x6c, 0x61, 0x62, 0x65, 0x6c, 0x73, 0x2e, 0x74,
    0x78, 0x74, 0x00, 0x00, 0x28, 0xff, 0xff, 0xff, 0x08, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x3f, 0x58, 0xff, 0xff, 0xff, 0x0c, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x01, 0x04, 0x00, 0x04, 0x00, 0x04, 0x00, 0x00, 0x00, 0x29, 0x00, 0x00, 0x00, 0x50, 0x72, 0x6f, 0x62,
    0x61, 0x62, 0x69, 0x6c, 0x69, 0x74, 0x69, 0x65, 0x73, 0x20, 0x6f, 0x66, 0x20, 0x74, 0x68, 0x65, 0x20, 0x6c, 0x61, 0x62,
    0x65, 0x6c, 0x73, 0x20, 0x72, 0x65, 0x73, 0x70, 0x65, 0x63, 0x74, 0x69, 0x76, 0x65, 0x6c, 0x79, 0x2e, 0x00, 0x00, 0x00,
    0x0b, 0x00, 0x00, 0x00, 0x70, 0x72, 0x6f, 0x62, 0x61, 0x62, 0x69, 0x6c, 0x69, 0x74, 0x79, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x14, 0x00, 0x00, 0x00, 0x10, 0x00, 0x18, 0x00, 0x14, 0x00, 0x10, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x08, 0x00, 0x04, 0x00,
    0x10, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x70, 0x00, 0x00, 0x00, 0x84, 0x00, 0x00, 0x00,
    0xa4, 0x00, 0x00, 0x00, 0xc8, 0xff, 0xff, 0xff, 0x08, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x80, 0xbf, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x3f, 0x01, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x00,
    0x08, 0x00, 0x0c, 0x00, 0x0b, 0x00, 0x04, 0x00, 0x08, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x08, 0x00, 0x0c, 0x00, 0x08, 0x00, 0x04, 0x00, 0x08, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x42, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x42, 0x08, 0x00, 0x0a, 0x00,
    0x09, 0x00, 0x04, 0x00, 0x08, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x02, 0x06, 0x00, 0x08, 0x00, 0x07, 0x00,
    0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x1d, 0x00, 0x00, 0x00, 0x49, 0x6e, 0x70, 0x75, 0x74, 0x20, 0x69, 0x6d,
    0x61, 0x67, 0x65, 0x20, 0x74, 0x6f, 0x20, 0x62, 0x65, 0x20, 0x63, 0x6c, 0x61, 0x73, 0x73, 0x69, 0x66, 0x69, 0x65, 0x64,
    0x2e, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x69, 0x6d, 0x61, 0x67, 0x65, 0x00, 0x00, 0x00, 0x4f, 0x00, 0x00, 0x00,
    0x49, 0x64, 0x65, 0x6e, 0x74, 0x69, 0x66, 0x79, 0x20, 0x74, 0x68, 0x65, 0x20, 0x6d, 0x6f, 0x73, 0x74, 0x20, 0x70, 0x72,
    0x6f, 0x6d, 0x69, 0x6e, 0x65, 0x6e, 0x74, 0x20, 0x6f, 0x62, 0x6a, 0x65, 0x63, 0x74, 0x20, 0x69, 0x6e, 0x20, 0x74, 0x68,
    0x65, 0x20, 0x69, 0x6d, 0x61, 0x67, 0x65, 0x20, 0x66, 0x72, 0x6f, 0x6d, 0x20, 0x61, 0x20, 0x6b, 0x6e, 0x6f, 0x77, 0x6e,
    0x20, 0x73, 0x65, 0x74, 0x20, 0x6f, 0x66, 0x20, 0x63, 0x61, 0x74, 0x65, 0x67, 0x6f, 0x72, 0x69, 0x65, 0x73, 0x2e, 0x00,
    0x0f, 0x00, 0x00, 0x00, 0x49, 0x6d, 0x61, 0x67, 0x65, 0x43, 0x6c, 0x61, 0x73, 0x73, 0x69, 0x66, 0x69, 0x65, 0x72, 0x00,
    0x00, 0x00, 0x06, 0x00, 0x08, 0x00, 0x04, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x04, 0x00, 0x04, 0x00, 0x04, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00,
    0x6c, 0x69, 0x74, 0x65, 0x6c, 0x65, 0x6e, 0x73, 0x20, 0x66, 0x69, 0x78, 0x74, 0x75, 0x72, 0x65, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0e, 0x00, 0x18, 0x00, 0x14, 0x00, 0x10, 0x00, 0x0c, 0x00,
    0x08, 0x00, 0x04, 0x00, 0x0e, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x00, 0x4c, 0x00, 0x00, 0x00,
    0x50, 0x00, 0x00, 0x00, 0x54, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x6d, 0x61, 0x69, 0x6e, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x08, 0x00, 0x04, 0x00,
    0x0a, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,
    0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x74, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x00, 0x00,
    0x04, 0x00, 0x00, 0x00, 0xa4, 0xff, 0xff, 0xff, 0x08, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x0b, 0x00, 0x00, 0x00,
    0x70, 0x72, 0x6f, 0x62, 0x61, 0x62, 0x69, 0x6c, 0x69, 0x74, 0x79, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x05, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x14, 0x00, 0x10, 0x00, 0x0f, 0x00, 0x08, 0x00, 0x04, 0x00, 0x0c, 0x00, 0x00, 0x00,
    0x10, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x10, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00,
    0x73, 0x68, 0x61, 0x70, 0x65, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x0c, 0x00,
    0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00,
    0x05, 0x00, 0x00, 0x00, 0x69, 0x6d, 0x61, 0x67, 0x65, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x04, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00,
    0x0c, 0x00, 0x0c, 0x00, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x16, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x16, 0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2c, 0xa8, 0x7b, 0x5d, 0x19, 0xc2,
    0x3a, 0x4a, 0x1d, 0x00, 0x00, 0x00, 0x1d, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x6c, 0x61, 0x62, 0x65, 0x6c, 0x73,
    0x2e, 0x74, 0x78, 0x74, 0x73, 0x70, 0x61, 0x72, 0x72, 0x6f, 0x77, 0x0a, 0x72, 0x6f, 0x62, 0x69, 0x6e, 0x0a, 0x77, 0x72,
    0x65, 0x6e, 0x0a, 0x66, 0x69, 0x6e, 0x63, 0x68, 0x0a, 0x6f, 0x77, 0x6c, 0x0a, 0x50, 0x4b, 0x01, 0x02, 0x14, 0x03, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x2c, 0xa8, 0x7b, 0x5d, 0x19, 0xc2, 0x3a, 0x4a, 0x1d, 0x00, 0x00, 0x00, 0x1d, 0x00, 0x00,
    0x00, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x01, 0xb4, 0x04, 0x00, 0x00, 0x6c,
    0x61, 0x62, 0x65, 0x6c, 0x73, 0x2e, 0x74, 0x78, 0x74, 0x50, 0x4b, 0x05, 0x06, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01,
    0x00, 0x38, 0x00, 0x00, 0x00, 0xf9, 0x04, 0x00, 0x00, 0x00, 0x00,
};

TEST(metadata_files, model_written_by_tflite_support) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(kSupportWriterModel),
                                         sizeof kSupportWriterModel);
  const Model model = Model::from_bytes(bytes, "tflite_support_fixture");
  const auto info = litelens::read_model_metadata(model);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->name, "ImageClassifier");
  EXPECT_EQ(info->min_parser_version, "1.0.0");
  ASSERT_EQ(info->subgraphs.size(), 1u);
  const auto& sg = info->subgraphs[0];
  ASSERT_EQ(sg.inputs.size(), 1u);
  ASSERT_EQ(sg.outputs.size(), 1u);
  EXPECT_EQ(sg.inputs[0].name, "image");
  EXPECT_EQ(sg.inputs[0].content->kind, litelens::ContentInfo::Kind::image);
  EXPECT_EQ(sg.inputs[0].content->color_space, "RGB");
  ASSERT_EQ(sg.inputs[0].process_units.size(), 1u);
  EXPECT_EQ(sg.inputs[0].process_units[0].mean, (std::vector<float>{127.5f}));
  EXPECT_EQ(sg.inputs[0].process_units[0].std, (std::vector<float>{127.5f}));
  EXPECT_EQ(sg.inputs[0].stats_min, (std::vector<float>{-1.0f}));
  EXPECT_EQ(sg.inputs[0].stats_max, (std::vector<float>{1.0f}));
  EXPECT_EQ(sg.outputs[0].name, "probability");
  EXPECT_EQ(sg.outputs[0].content->kind, litelens::ContentInfo::Kind::feature);
  ASSERT_EQ(sg.outputs[0].associated_files.size(), 1u);
  EXPECT_EQ(sg.outputs[0].associated_files[0].name, "labels.txt");
  EXPECT_EQ(sg.outputs[0].associated_files[0].type_name, "TENSOR_AXIS_LABELS");

  EXPECT_LT(model.flatbuffer_size(), model.file_size());
  const auto files = litelens::associated_files(model);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].name, "labels.txt");
  EXPECT_EQ(files[0].compression_name, "stored");
  EXPECT_EQ(files[0].header_offset, 1204u);  // what Python's zipfile reports: an absolute position
  EXPECT_EQ(files[0].crc32, 0x4a3ac219u);
  EXPECT_EQ(text(litelens::associated_file_data(model, files[0])), "sparrow\nrobin\nwren\nfinch\nowl\n");
}

// =================================================================================================
// Real models

TEST(metadata_real_models, every_metadata_entry_decodes) {
  const char* cache = std::getenv("LITELENS_CACHE");
  const char* home = std::getenv("HOME");
  const fs::path dir = (cache && *cache) ? fs::path(cache) / "models"
                                         : fs::path(home ? home : "/root") / ".cache" / "litelens" / "models";
  std::vector<fs::path> paths;
  if (fs::is_directory(dir))
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".tflite") paths.push_back(e.path());
  ASSERT_FALSE(paths.empty()) << "no models in " << dir << " (run scripts/fetch-models.sh; make test does)";
  std::sort(paths.begin(), paths.end());

  int with_entries = 0, with_tflite_metadata = 0, with_archive = 0;
  const std::regex version_pattern(R"(\d+\.\d+(\.\d+)?)");
  for (const auto& p : paths) {
    SCOPED_TRACE(p.filename().string());
    const Model model = Model::open(p);
    const auto entries = model.metadata();
    if (!entries.empty()) ++with_entries;
    for (const auto& e : entries) {
      if (e.name == "min_runtime_version") {
        const auto v = litelens::read_min_runtime_version(model);
        ASSERT_TRUE(v.has_value());
        const std::string raw = text(e.data);
        EXPECT_EQ(v->version, raw.substr(0, raw.find('\0')));
        EXPECT_TRUE(v->terminated);
        EXPECT_TRUE(std::regex_match(v->version, version_pattern)) << v->version;
      } else if (e.name == "TFLITE_METADATA") {
        ++with_tflite_metadata;
        EXPECT_NO_THROW(litelens::read_model_metadata(model));
      } else if (e.name == "CONVERSION_METADATA") {
        EXPECT_NO_THROW(litelens::read_conversion_metadata(model));
      } else if (e.name == "reduced_precision_support" || e.name == "buffer_location") {
        const auto shown = litelens::metadata_bytes_text(e.data);
        EXPECT_NE(shown.rfind("0x", 0), 0u) << "expected text, got " << shown;
      }
    }
    std::vector<litelens::AssociatedFile> files;
    EXPECT_NO_THROW(files = litelens::associated_files(model));
    if (!files.empty()) ++with_archive;
    if (model.file_size() == model.flatbuffer_size()) EXPECT_TRUE(files.empty());
    for (const auto& f : files)
      if (f.is_supported()) EXPECT_NO_THROW(litelens::read_associated_file(model, f));
  }
  // Known content of one pinned model (sha256 in the cache manifest).
  const auto hand = dir / "hand_landmark_full.tflite";
  if (fs::exists(hand)) {
    const Model model = Model::open(hand);
    EXPECT_EQ(litelens::read_min_runtime_version(model)->version, "1.14.0");
    EXPECT_EQ(litelens::metadata_bytes_text(*model.metadata("reduced_precision_support")), "fp16accfp32");
    EXPECT_FALSE(litelens::read_model_metadata(model).has_value());
  }
  RecordProperty("models", static_cast<int>(paths.size()));
  RecordProperty("with_metadata_entries", with_entries);
  RecordProperty("with_tflite_metadata", with_tflite_metadata);
  RecordProperty("with_archive", with_archive);
}

// =================================================================================================
// The CLI

TEST(metadata_cli, info_and_files) {
  auto b = litelens::testing::conv_model();
  b.add_metadata("min_runtime_version", u8(std::string("2.3.0") + std::string(11, '\0')));
  b.add_metadata("TFLITE_METADATA", pack(full_metadata()));
  b.add_metadata("CONVERSION_METADATA", conversion_bytes());
  auto model_bytes = b.finish();
  const Zip z = make_zip({stored_entry("labels.txt", "sparrow\nrobin\n"), deflated_animals("animals.txt")},
                         model_bytes.size());
  const auto path = litelens::testing::write_temp_file("metadata_cli.tflite", with_archive(std::move(model_bytes), z));

  const auto info = run_cli("info '" + path + "'");
  EXPECT_EQ(info.status, 0) << info.err;
  EXPECT_NE(info.out.find("Bird classifier"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("normalize mean [127.5] std [127.5, 64, 32]"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("labels.txt (TENSOR_AXIS_LABELS, locale en, version 2)"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("labels_fr.txt (TENSOR_AXIS_LABELS, locale fr) [not in the archive]"), std::string::npos);
  EXPECT_NE(info.out.find("min_runtime_version        2.3.0"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("KERAS_MODEL"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("animals.txt"), std::string::npos) << info.out;
  // Every tokenizer shows the files it names (the archive holds none of them here).
  EXPECT_NE(info.out.find("input process   BERT tokenizer, vocab [vocab.txt (not in the archive)]\n"),
            std::string::npos) << info.out;
  EXPECT_NE(info.out.find("output process  SentencePiece tokenizer, model [sp.model (not in the archive)], "
                          "vocab [sp.vocab (not in the archive)]\n"),
            std::string::npos) << info.out;
  EXPECT_NE(info.out.find("output process  regex tokenizer /[ ,]+/, vocab [vocab.txt (not in the archive)]\n"),
            std::string::npos) << info.out;

  const auto json = run_cli("info --json '" + path + "'");
  EXPECT_EQ(json.status, 0) << json.err;
  EXPECT_NE(json.out.find("\"model_metadata\""), std::string::npos);
  EXPECT_NE(json.out.find("\"name\": \"Bird classifier\""), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"color_space\": \"RGB\""), std::string::npos);
  EXPECT_NE(json.out.find("\"tensorflow_version\": \"2.16.1\""), std::string::npos);
  EXPECT_NE(json.out.find("\"errors\": []"), std::string::npos);

  const auto files = run_cli("files --json '" + path + "'");
  EXPECT_EQ(files.status, 0) << files.err;
  EXPECT_NE(files.out.find("\"name\": \"labels.txt\""), std::string::npos) << files.out;
  EXPECT_NE(files.out.find("\"compression\": \"deflate\""), std::string::npos) << files.out;

  const auto dir = fresh_dir("cli-extract");
  const auto extract = run_cli("files '" + path + "' --extract '" + dir.string() + "'");
  EXPECT_EQ(extract.status, 0) << extract.err;
  EXPECT_EQ(read_file(dir / "labels.txt"), "sparrow\nrobin\n");
  EXPECT_EQ(read_file(dir / "animals.txt"), kAnimals);
}

TEST(metadata_cli, broken_metadata_is_a_warning_for_info_and_an_error_for_files) {
  auto b = litelens::testing::conv_model();
  b.add_metadata("TFLITE_METADATA", {1, 2, 3, 4, 'M', '0', '0', '2', 9, 9, 9, 9});
  auto model_bytes = b.finish();
  const Zip z = make_zip({stored_entry("../escape.txt", "x")}, model_bytes.size());
  const auto path = litelens::testing::write_temp_file("metadata_cli_broken.tflite", with_archive(std::move(model_bytes), z));

  const auto info = run_cli("info '" + path + "'");
  EXPECT_EQ(info.status, 0) << info.err;
  EXPECT_NE(info.err.find("warning"), std::string::npos) << info.err;
  EXPECT_NE(info.err.find("\"M001\" identifier"), std::string::npos) << info.err;
  EXPECT_NE(info.err.find("'..' component"), std::string::npos) << info.err;
  EXPECT_NE(info.out.find("subgraphs"), std::string::npos);

  const auto json = run_cli("info --json '" + path + "'");
  EXPECT_EQ(json.status, 0) << json.err;
  EXPECT_NE(json.out.find("\"entry\": \"TFLITE_METADATA\""), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"kind\": \"invalid_metadata\""), std::string::npos);

  const auto files = run_cli("files '" + path + "'");
  EXPECT_EQ(files.status, 1);
  EXPECT_NE(files.err.find("[invalid_metadata]"), std::string::npos) << files.err;
  const auto dir = fresh_dir("cli-hostile");
  const auto extract = run_cli("files '" + path + "' --extract '" + dir.string() + "'");
  EXPECT_EQ(extract.status, 1);
  EXPECT_TRUE(listing(dir).empty());
  EXPECT_FALSE(fs::exists(dir.parent_path() / "escape.txt"));
}
