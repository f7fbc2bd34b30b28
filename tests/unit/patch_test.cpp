// litelens::patch: values and quantization written back, everything else preserved.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include <fmt/format.h>

#include "litelens/array.h"
#include "litelens/decode.h"
#include "litelens/export.h"
#include "litelens/layer.h"
#include "litelens/metadata.h"
#include "litelens/patch.h"
#include "model_builder.h"
#include "patch_internal.h"
#include "test_arrays.h"

namespace {

namespace fs = std::filesystem;
using namespace litelens;
using litelens::testing::array_of;
using litelens::testing::ModelBuilder;
using litelens::testing::to_bytes;

template <class T>
std::vector<T> values_of(std::span<const std::byte> bytes) {
  std::vector<T> out(bytes.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));
  return out;
}

std::vector<float> filter_values(float offset) {
  std::vector<float> v(4 * 3 * 3 * 3);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) * 0.25f + offset;
  return v;
}

ValueUpdate update(std::string selector, Array values) {
  ValueUpdate u;
  u.selector = std::move(selector);
  u.values = std::move(values);
  return u;
}

// The conv model plus a metadata entry and a signature.
ModelBuilder rich_conv_model() {
  ModelBuilder b = litelens::testing::conv_model();
  b.add_metadata("min_runtime_version", {'1', '.', '1', '4', 0});
  b.add_signature("serving_default", 0, {{"x", 0}}, {{"y", 3}});
  return b;
}

std::vector<std::byte> patch(const std::vector<std::byte>& model_bytes, PatchSpec spec, PatchOptions options = {},
                             PatchReport* report = nullptr) {
  const Model m = Model::from_bytes(model_bytes);
  return patch_to_memory(m, spec, options, report);
}

template <class F>
void expect_patch_error(F&& f, PatchError::Kind kind, const std::string& fragment) {
  try {
    f();
  } catch (const PatchError& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << "message: " << e.what() << "\nwanted: " << fragment;
    return;
  }
  ADD_FAILURE() << "expected a PatchError containing: " << fragment;
}

fs::path scratch() {
  const auto dir = fs::temp_directory_path() / "litelens-tests" / ("patch-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

void write_file(const fs::path& p, std::span<const std::byte> bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::vector<std::byte> read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(c.size());
  if (!c.empty()) std::memcpy(out.data(), c.data(), c.size());
  return out;
}

// ---- a tiny ZIP writer (stored entries) --------------------------------------------------------

void put16(std::vector<std::byte>& v, std::uint64_t x) {
  for (int i = 0; i < 2; ++i) v.push_back(static_cast<std::byte>((x >> (8 * i)) & 0xff));
}
void put32(std::vector<std::byte>& v, std::uint64_t x) {
  for (int i = 0; i < 4; ++i) v.push_back(static_cast<std::byte>((x >> (8 * i)) & 0xff));
}

// Appends an archive of `files` to `model`, with offsets absolute (as Python's zipfile writes
// when appending to a model) or relative to the archive start.
void put64(std::vector<std::byte>& v, std::uint64_t x) {
  for (int i = 0; i < 8; ++i) v.push_back(static_cast<std::byte>((x >> (8 * i)) & 0xff));
}

// With `zip64`, every size and offset goes through the ZIP64 extra fields and end records.
std::vector<std::byte> with_zip(std::vector<std::byte> model, const std::vector<std::pair<std::string, std::string>>& files,
                                bool absolute, bool zip64 = false) {
  const std::uint64_t base = model.size();
  const std::uint64_t shift = absolute ? base : 0;
  std::vector<std::byte> z;
  std::vector<std::uint64_t> local;
  std::vector<std::uint32_t> crcs;
  for (const auto& [name, content] : files) {
    local.push_back(z.size());
    const auto crc = static_cast<std::uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(content.data()), content.size()));
    crcs.push_back(crc);
    put32(z, 0x04034b50);
    put16(z, 20);
    put16(z, 0);
    put16(z, 0);
    put16(z, 0);
    put16(z, 0x21);
    put32(z, crc);
    put32(z, zip64 ? 0xFFFFFFFF : content.size());
    put32(z, zip64 ? 0xFFFFFFFF : content.size());
    put16(z, name.size());
    put16(z, zip64 ? 20 : 0);
    for (char c : name) z.push_back(static_cast<std::byte>(c));
    if (zip64) {
      put16(z, 1);
      put16(z, 16);
      put64(z, content.size());
      put64(z, content.size());
    }
    for (char c : content) z.push_back(static_cast<std::byte>(c));
  }
  const std::uint64_t cd = z.size();
  for (std::size_t i = 0; i < files.size(); ++i) {
    const auto& [name, content] = files[i];
    put32(z, 0x02014b50);
    put16(z, 20);
    put16(z, 20);
    put16(z, 0);
    put16(z, 0);
    put16(z, 0);
    put16(z, 0x21);
    put32(z, crcs[i]);
    put32(z, zip64 ? 0xFFFFFFFF : content.size());
    put32(z, zip64 ? 0xFFFFFFFF : content.size());
    put16(z, name.size());
    put16(z, zip64 ? 28 : 0);
    put16(z, 0);
    put16(z, 0);
    put16(z, 0);
    put32(z, 0);
    put32(z, zip64 ? 0xFFFFFFFF : shift + local[i]);
    for (char c : name) z.push_back(static_cast<std::byte>(c));
    if (zip64) {
      put16(z, 1);
      put16(z, 24);
      put64(z, content.size());
      put64(z, content.size());
      put64(z, shift + local[i]);
    }
  }
  const std::uint64_t cd_size = z.size() - cd;
  if (zip64) {
    const std::uint64_t record = z.size();
    put32(z, 0x06064b50);
    put64(z, 44);
    put16(z, 45);
    put16(z, 45);
    put32(z, 0);
    put32(z, 0);
    put64(z, files.size());
    put64(z, files.size());
    put64(z, cd_size);
    put64(z, shift + cd);
    put32(z, 0x07064b50);
    put32(z, 0);
    put64(z, shift + record);
    put32(z, 1);
  }
  put32(z, 0x06054b50);
  put16(z, 0);
  put16(z, 0);
  put16(z, zip64 ? 0xFFFF : files.size());
  put16(z, zip64 ? 0xFFFF : files.size());
  put32(z, zip64 ? 0xFFFFFFFF : cd_size);
  put32(z, zip64 ? 0xFFFFFFFF : shift + cd);
  put16(z, 0);
  model.insert(model.end(), z.begin(), z.end());
  return model;
}

// A model whose CONV_2D filter is an fp16 constant behind DEQUANTIZE (as fp16 converters write).
ModelBuilder fp16_conv_model() {
  ModelBuilder b;
  const int sg = b.add_subgraph("main");
  b.add_tensor(sg, "input", {1, 8, 8, 3});
  std::vector<std::uint16_t> half(4 * 3 * 3 * 3);
  for (std::size_t i = 0; i < half.size(); ++i) half[i] = float_to_float16_bits(static_cast<float>(i) * 0.125f - 3.0f);
  b.add_constant(sg, "conv/filter_fp16", {4, 3, 3, 3}, tflite::TensorType_FLOAT16, to_bytes(half));  // 1
  b.add_tensor(sg, "conv/filter", {4, 3, 3, 3});                                                      // 2
  b.add_constant(sg, "conv/bias", {4}, tflite::TensorType_FLOAT32, to_bytes(std::vector<float>{1, 2, 3, 4}));  // 3
  b.add_tensor(sg, "conv/output", {1, 3, 3, 4});                                                      // 4
  const int deq = b.add_opcode(tflite::BuiltinOperator_DEQUANTIZE);
  const int conv = b.add_opcode(tflite::BuiltinOperator_CONV_2D);
  b.add_operator(sg, deq, {1}, {2});
  const int op = b.add_operator(sg, conv, {0, 2, 3}, {4});
  tflite::Conv2DOptionsT options;
  options.padding = tflite::Padding_VALID;
  options.stride_w = 2;
  options.stride_h = 2;
  b.op(sg, op).builtin_options.Set(std::move(options));
  b.subgraph(sg).inputs = {0};
  b.subgraph(sg).outputs = {4};
  return b;
}

// A FULLY_CONNECTED model with int8 per-channel weights and an int32 bias.
ModelBuilder int8_fc_model() {
  ModelBuilder b;
  const int sg = b.add_subgraph("main");
  b.add_tensor(sg, "x", {1, 4}, tflite::TensorType_INT8);
  std::vector<std::int8_t> w = {1, 2, 3, 4, -1, -2, -3, -4, 10, 20, 30, 40};
  b.add_constant(sg, "fc/weights", {3, 4}, tflite::TensorType_INT8, to_bytes(w));
  b.add_constant(sg, "fc/bias", {3}, tflite::TensorType_INT32, to_bytes(std::vector<std::int32_t>{7, -8, 9}));
  b.add_tensor(sg, "fc/out", {1, 3}, tflite::TensorType_INT8);
  auto q = std::make_unique<tflite::QuantizationParametersT>();
  q->scale = {0.5f, 0.25f, 0.125f};
  q->zero_point = {0, 0, 0};
  q->quantized_dimension = 0;
  b.tensor(sg, 1).quantization = std::move(q);
  const int fc = b.add_opcode(tflite::BuiltinOperator_FULLY_CONNECTED);
  b.add_operator(sg, fc, {0, 1, 2}, {3});
  b.subgraph(sg).inputs = {0};
  b.subgraph(sg).outputs = {3};
  return b;
}

// A DEPTHWISE_CONV_2D with C=2 channels and depth multiplier 3: filter [1,3,3,6].
ModelBuilder depthwise_model() {
  ModelBuilder b;
  const int sg = b.add_subgraph("main");
  b.add_tensor(sg, "input", {1, 8, 8, 2});
  std::vector<float> f(1 * 3 * 3 * 6);
  for (std::size_t i = 0; i < f.size(); ++i) f[i] = static_cast<float>(i) - 20.0f;
  b.add_constant(sg, "dw/filter", {1, 3, 3, 6}, tflite::TensorType_FLOAT32, to_bytes(f));
  b.add_constant(sg, "dw/bias", {6}, tflite::TensorType_FLOAT32, to_bytes(std::vector<float>{1, 2, 3, 4, 5, 6}));
  b.add_tensor(sg, "dw/output", {1, 6, 6, 6});
  const int code = b.add_opcode(tflite::BuiltinOperator_DEPTHWISE_CONV_2D);
  const int op = b.add_operator(sg, code, {0, 1, 2}, {3});
  tflite::DepthwiseConv2DOptionsT options;
  options.padding = tflite::Padding_VALID;
  options.stride_w = 1;
  options.stride_h = 1;
  options.depth_multiplier = 3;
  b.op(sg, op).builtin_options.Set(std::move(options));
  b.subgraph(sg).inputs = {0};
  b.subgraph(sg).outputs = {3};
  return b;
}

void expect_all_constants_aligned(const Model& m) {
  for (const Subgraph sg : m.subgraphs())
    for (const Tensor t : sg.tensors())
      if (t.is_constant()) EXPECT_EQ(*t.data_offset() % 16, 0u) << "tensor " << t.index() << " '" << t.name() << "'";
}

// ---- values ----------------------------------------------------------------------------------------

TEST(patch_test, new_values_are_read_back_and_everything_else_is_identical) {
  const auto original = rich_conv_model().finish();
  const Model in = Model::from_bytes(original);
  const auto fresh = filter_values(7.0f);
  PatchReport report;
  const auto out_bytes = patch(original, {{update("conv/filter", array_of(DType::float32, {4, 3, 3, 3}, fresh))}}, {}, &report);
  const Model out = Model::from_bytes(out_bytes);
  EXPECT_EQ(values_of<float>(out.subgraph(0).tensor(1).data()), fresh);
  // Untouched: the bias, metadata, signatures, description, options.
  EXPECT_TRUE(std::ranges::equal(in.subgraph(0).tensor(2).data(), out.subgraph(0).tensor(2).data()));
  ASSERT_EQ(out.metadata().size(), 1u);
  EXPECT_EQ(out.metadata()[0].name, "min_runtime_version");
  EXPECT_TRUE(std::ranges::equal(in.metadata()[0].data, out.metadata()[0].data));
  ASSERT_EQ(out.signatures().size(), 1u);
  EXPECT_EQ(out.signatures()[0].key, "serving_default");
  EXPECT_EQ(out.signatures()[0].outputs[0].tensor, 3);
  EXPECT_EQ(out.description(), in.description());
  EXPECT_EQ(out.subgraph(0).op(0).options().find("stride_w")->as_int(), 2);
  ASSERT_EQ(report.tensors.size(), 1u);
  EXPECT_EQ(report.tensors[0].tensor, 1);
  EXPECT_EQ(report.tensors[0].conversion, "copied");
  EXPECT_FALSE(report.tensors[0].split);
  EXPECT_TRUE(report.warnings.empty());
  expect_all_constants_aligned(out);
}

TEST(patch_test, identity_patch_changes_no_tensor_bytes) {
  const auto original = rich_conv_model().finish();
  const Model in = Model::from_bytes(original);
  const Array same = decode(in, in.subgraph(0).tensor(1));
  PatchReport report;
  const auto out_bytes = patch(original, {{update("#1", Array::own(same.dtype(), same.shape(),
                                                                    {same.bytes().begin(), same.bytes().end()}))}},
                               {}, &report);
  const Model out = Model::from_bytes(out_bytes);
  for (const Tensor t : in.subgraph(0).tensors())
    EXPECT_TRUE(std::ranges::equal(t.data(), out.subgraph(0).tensor(t.index()).data()));
  EXPECT_TRUE(report.tensors[0].unchanged);
}

// Tolerated oddities survive a patch unchanged: a NaN scale (as a damaged file may hold) and a
// shared zero point on another tensor are compared as written, not as floats, and the output's
// warnings are the input's (the seed-7132043315184277869 failure of the CLI matrix).
TEST(patch_test, oddities_on_other_tensors_survive_unchanged) {
  ModelBuilder b = rich_conv_model();
  auto q = std::make_unique<tflite::QuantizationParametersT>();
  q->scale = {0.5f, std::nanf(""), 0.25f};
  q->zero_point = {3};
  q->quantized_dimension = 1;  // the output [1,3,3,4]: 3 slices along dimension 1
  b.tensor(0, 3).quantization = std::move(q);
  const auto original = b.finish();
  const Model in = Model::from_bytes(original);
  ASSERT_EQ(in.warnings().size(), 1u);
  EXPECT_EQ(in.warnings()[0].code, "zero_point_count");
  EXPECT_EQ(in.warnings()[0].tensor, 3);
  const Array filter = decode(in, in.subgraph(0).tensor(1));
  std::vector<float> changed = filter_values(1.0f);
  const auto out_bytes = patch(original, {{update("#1", array_of(DType::float32, filter.shape(), changed))}});
  const Model out = Model::from_bytes(out_bytes);
  ASSERT_EQ(out.warnings().size(), 1u);
  EXPECT_EQ(out.warnings()[0].message, in.warnings()[0].message);
  const auto qa = in.subgraph(0).tensor(3).quantization(), qb = out.subgraph(0).tensor(3).quantization();
  ASSERT_TRUE(qa && qb);
  EXPECT_TRUE(same_as_written(*qa, *qb));
  EXPECT_TRUE(std::isnan(qb->scale[1]));
}

// --set-quant replaces a quantization oddity with clean parameters: that warning goes, and only it.
TEST(patch_test, set_quant_replaces_a_quantization_oddity) {
  ModelBuilder b = rich_conv_model();
  auto q = std::make_unique<tflite::QuantizationParametersT>();
  q->scale = {0.5f, 0.25f, 0.125f, 1.0f, 2.0f};  // 5 scales for 4 slices: extra_scales
  q->zero_point = {0, 0, 0, 0, 0};
  b.tensor(0, 1).type = tflite::TensorType_INT8;
  b.buffer(1).data.resize(4 * 3 * 3 * 3);
  b.tensor(0, 1).quantization = std::move(q);
  b.tensor(0, 0).shape_signature = {-1, 8, 8};  // shape_signature_rank, on another tensor
  const auto original = b.finish();
  const Model in = Model::from_bytes(original);
  ASSERT_EQ(in.warnings().size(), 2u);
  PatchSpec spec;
  spec.quantization.push_back(parse_quant_spec("#1", "scale:0.5,0.5,0.5,0.5;zero_point:0;axis:0"));
  const Model out = Model::from_bytes(patch(original, spec));
  ASSERT_EQ(out.warnings().size(), 1u);
  EXPECT_EQ(out.warnings()[0].code, "shape_signature_rank");
}

TEST(patch_test, selectors_name_index_and_layer_key) {
  const auto original = fp16_conv_model().finish();
  const Model m = Model::from_bytes(original);
  const auto by_key = resolve_selector(m, "sg0.op1.CONV_2D/filter");
  EXPECT_EQ(by_key.tensor, 1);
  EXPECT_EQ(by_key.selected_tensor, 2);
  EXPECT_EQ(by_key.via, std::vector<std::string>{"DEQUANTIZE"});
  EXPECT_TRUE(by_key.layer.has_value());
  const auto by_name = resolve_selector(m, "conv/filter");  // the DEQUANTIZE output, followed back
  EXPECT_EQ(by_name.tensor, 1);
  EXPECT_EQ(by_name.via, std::vector<std::string>{"DEQUANTIZE"});
  EXPECT_EQ(resolve_selector(m, "#3").tensor, 3);
  EXPECT_EQ(resolve_selector(m, "conv/filter_fp16").tensor, 1);
  expect_patch_error([&] { resolve_selector(m, "conv/filtr"); }, PatchError::Kind::unknown_selector, "conv/filter");
  expect_patch_error([&] { resolve_selector(m, "#99"); }, PatchError::Kind::unknown_selector, "#99");
  expect_patch_error([&] { resolve_selector(m, "sg0.op1.CONV_2D/weights"); }, PatchError::Kind::unknown_selector,
                     "no parameter 'weights'");
  expect_patch_error([&] { resolve_selector(m, "sg0.op1.ADD/filter"); }, PatchError::Kind::unknown_selector, "is CONV_2D");
  // The input is fed at run time: selectable, but it has no values.
  const auto input = resolve_selector(m, "input");
  EXPECT_EQ(input.tensor, -1);
  expect_patch_error([&] { patch(original, {{update("input", array_of(DType::float32, {1, 8, 8, 3}, std::vector<float>(192)))}}); },
                     PatchError::Kind::not_constant, "run time");
}

TEST(patch_test, ambiguous_names_need_an_index) {
  ModelBuilder b = litelens::testing::conv_model();
  b.tensor(0, 2).name = "conv/filter";
  const auto bytes = b.finish();
  const Model m = Model::from_bytes(bytes);
  expect_patch_error([&] { resolve_selector(m, "conv/filter"); }, PatchError::Kind::ambiguous_selector, "#N");
}

TEST(patch_test, shape_and_dtype_must_match) {
  const auto original = litelens::testing::conv_model().finish();
  expect_patch_error([&] { patch(original, {{update("conv/bias", array_of(DType::float32, {5}, std::vector<float>(5)))}}); },
                     PatchError::Kind::shape_mismatch, "shape [4]");
  expect_patch_error([&] { patch(original, {{update("conv/bias", array_of(DType::float64, {4}, std::vector<double>(4)))}}); },
                     PatchError::Kind::dtype_mismatch, "float64");
  expect_patch_error([&] { patch(original, {{update("conv/bias", array_of(DType::float32, {1, 4}, std::vector<float>(4)))}}); },
                     PatchError::Kind::shape_mismatch, "[1,4]");
  // One tensor, two selectors: the same values (or the stored ones) are fine, different ones are not.
  PatchSpec twice{{update("conv/bias", array_of(DType::float32, {4}, std::vector<float>(4))),
                   update("#2", array_of(DType::float32, {4}, std::vector<float>(4, 1.0f)))}};
  expect_patch_error([&] { patch(original, twice); }, PatchError::Kind::duplicate, "other new values");
  twice.values[1] = update("#2", array_of(DType::float32, {4}, std::vector<float>{1, 2, 3, 4}));  // as stored
  PatchReport report;
  const Model out = Model::from_bytes(patch(original, twice, {}, &report));
  EXPECT_EQ(values_of<float>(out.subgraph(0).tensor(2).data()), std::vector<float>(4));
  ASSERT_EQ(report.tensors.size(), 1u);
  EXPECT_EQ(report.tensors[0].selector, "conv/bias, #2");
}

TEST(patch_test, float_values_for_quantized_tensors_need_quantize) {
  const auto original = int8_fc_model().finish();
  const std::vector<float> x = {0.25f, -0.25f, 0.75f, 1000.f,   // channel 0, scale 0.5
                                0.125f, -0.375f, 0.f, -1000.f,  // channel 1, scale 0.25
                                0.0625f, 1.f, -0.0625f, 15.9f}; // channel 2, scale 0.125
  const Array values = array_of(DType::float32, {3, 4}, x);
  expect_patch_error([&] { patch(original, {{update("fc/weights", values)}}); }, PatchError::Kind::dtype_mismatch,
                     "--quantize");
  PatchOptions o;
  o.quantize = true;
  PatchReport report;
  const Model out = Model::from_bytes(patch(original, {{update("fc/weights", values)}}, o, &report));
  // round(x / scale) half away from zero, clamped to [-128, 127].
  const std::vector<std::int8_t> expected = {1, -1, 2, 127, 1, -2, 0, -128, 1, 8, -1, 127};
  EXPECT_EQ(values_of<std::int8_t>(out.subgraph(0).tensor(1).data()), expected);
  EXPECT_EQ(report.tensors[0].clamped, 2u);  // 1000 and -1000; 15.9 / 0.125 rounds to 127
  EXPECT_EQ(report.tensors[0].conversion, "quantized per axis 0");
  ASSERT_EQ(report.warnings.size(), 1u);
  EXPECT_NE(report.warnings[0].find("clamped"), std::string::npos);
  // int8 values are stored as they are.
  const std::vector<std::int8_t> raw = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, -1, -2};
  const Model out2 = Model::from_bytes(patch(original, {{update("fc/weights", array_of(DType::int8, {3, 4}, raw))}}));
  EXPECT_EQ(values_of<std::int8_t>(out2.subgraph(0).tensor(1).data()), raw);
  // NaN cannot be quantized.
  auto nan = x;
  nan[5] = std::nanf("");
  expect_patch_error([&] { patch(original, {{update("fc/weights", array_of(DType::float32, {3, 4}, nan))}}, o); },
                     PatchError::Kind::value_out_of_range, "NaN");
}

TEST(patch_test, quantize_uses_zero_points_and_the_type_range) {
  ModelBuilder b;
  const int sg = b.add_subgraph();
  b.add_constant(sg, "u8", {4}, tflite::TensorType_UINT8, {0, 128, 200, 255});
  auto q = std::make_unique<tflite::QuantizationParametersT>();
  q->scale = {0.5f};
  q->zero_point = {128};
  b.tensor(sg, 0).quantization = std::move(q);
  const auto original = b.finish();
  PatchOptions o;
  o.quantize = true;
  const Model out = Model::from_bytes(
      patch(original, {{update("u8", array_of(DType::float32, {4}, std::vector<float>{-1.25f, 0.f, 63.5f, 64.f}))}}, o));
  // -1.25/0.5 = -2.5 -> -3 (half away from zero) -> 125; 63.5 -> 127 -> 255; 64 -> 128 -> 256 -> clamped 255.
  EXPECT_EQ(values_of<std::uint8_t>(out.subgraph(0).tensor(0).data()), (std::vector<std::uint8_t>{125, 128, 255, 255}));
}

TEST(patch_test, fp16_constant_through_dequantize_is_narrowed) {
  const auto original = fp16_conv_model().finish();
  const auto fresh = filter_values(0.1f);
  PatchReport report;
  const Model out = Model::from_bytes(
      patch(original, {{update("sg0.op1.CONV_2D/filter", array_of(DType::float32, {4, 3, 3, 3}, fresh))}}, {}, &report));
  std::vector<std::byte> want(fresh.size() * 2);
  narrow_to_float16(fresh, want);
  EXPECT_TRUE(std::ranges::equal(out.subgraph(0).tensor(1).data(), want));
  EXPECT_EQ(out.subgraph(0).tensor(1).dtype(), DType::float16);
  EXPECT_EQ(report.tensors[0].conversion, "narrowed to float16");
  EXPECT_EQ(report.tensors[0].via, std::vector<std::string>{"DEQUANTIZE"});
  EXPECT_FALSE(out.subgraph(0).tensor(2).is_constant());
}

TEST(patch_test, int4_values_are_packed_and_range_checked) {
  ModelBuilder b;
  const int sg = b.add_subgraph();
  b.add_constant(sg, "w4", {5}, tflite::TensorType_INT4, {0x21, 0xF3, 0x08});
  auto q = std::make_unique<tflite::QuantizationParametersT>();
  q->scale = {0.5f};
  q->zero_point = {0};
  b.tensor(sg, 0).quantization = std::move(q);
  const auto original = b.finish();
  const Model out = Model::from_bytes(
      patch(original, {{update("w4", array_of(DType::int8, {5}, std::vector<std::int8_t>{2, 1, 4, 3, -8}))}}));
  EXPECT_EQ(values_of<std::uint8_t>(out.subgraph(0).tensor(0).data()), (std::vector<std::uint8_t>{0x12, 0x34, 0x08}));
  expect_patch_error([&] { patch(original, {{update("w4", array_of(DType::int8, {5}, std::vector<std::int8_t>{9, 0, 0, 0, 0}))}}); },
                     PatchError::Kind::value_out_of_range, "[-8, 7]");
  PatchOptions o;
  o.quantize = true;
  const Model out2 = Model::from_bytes(
      patch(original, {{update("w4", array_of(DType::float32, {5}, std::vector<float>{1.f, -0.5f, 100.f, 0.25f, -4.f}))}}, o));
  // 2, -1, 7 (clamped), 1 (0.5 rounds away), -8
  const Array back = decode(out2, out2.subgraph(0).tensor(0));
  EXPECT_EQ(values_of<std::int8_t>(back.bytes()), (std::vector<std::int8_t>{2, -1, 7, 1, -8}));
}

TEST(patch_test, sparse_constants_keep_their_pattern) {
  ModelBuilder b;
  const int sg = b.add_subgraph();
  // [2,3] CSR: row 0 has column 1, row 1 has columns 0 and 2 -> dense [[0,1,0],[2,0,3]].
  b.add_constant(sg, "sparse", {2, 3}, tflite::TensorType_FLOAT32, to_bytes(std::vector<float>{1, 2, 3}));
  auto sp = std::make_unique<tflite::SparsityParametersT>();
  sp->traversal_order = {0, 1};
  auto d0 = std::make_unique<tflite::DimensionMetadataT>();
  d0->format = tflite::DimensionType_DENSE;
  d0->dense_size = 2;
  auto d1 = std::make_unique<tflite::DimensionMetadataT>();
  d1->format = tflite::DimensionType_SPARSE_CSR;
  tflite::Int32VectorT seg, idx;
  seg.values = {0, 1, 3};
  idx.values = {1, 0, 2};
  d1->array_segments.Set(std::move(seg));
  d1->array_indices.Set(std::move(idx));
  sp->dim_metadata.push_back(std::move(d0));
  sp->dim_metadata.push_back(std::move(d1));
  b.tensor(sg, 0).sparsity = std::move(sp);
  const auto original = b.finish();
  const Model out = Model::from_bytes(
      patch(original, {{update("sparse", array_of(DType::float32, {2, 3}, std::vector<float>{0, 10, 0, 20, 0, 0}))}}));
  EXPECT_EQ(values_of<float>(out.subgraph(0).tensor(0).data()), (std::vector<float>{10, 20, 0}));
  EXPECT_TRUE(out.subgraph(0).tensor(0).is_sparse());
  expect_patch_error(
      [&] { patch(original, {{update("sparse", array_of(DType::float32, {2, 3}, std::vector<float>{5, 1, 0, 2, 0, 3}))}}); },
      PatchError::Kind::sparsity_mismatch, "flat index 0");
}

// ---- layout of the file ----------------------------------------------------------------------------

TEST(patch_test, buffers_after_the_flatbuffer_stay_there) {
  ModelBuilder b = rich_conv_model();
  b.store_outside(1);  // filter
  b.store_outside(2);  // bias
  const auto original = b.finish();
  const Model in = Model::from_bytes(original);
  ASSERT_GE(*in.subgraph(0).tensor(1).data_offset(), in.flatbuffer_size());
  const auto fresh = filter_values(-2.0f);
  PatchReport report;
  const auto bytes = patch(original, {{update("conv/filter", array_of(DType::float32, {4, 3, 3, 3}, fresh))}}, {}, &report);
  const Model out = Model::from_bytes(bytes);
  EXPECT_EQ(values_of<float>(out.subgraph(0).tensor(1).data()), fresh);
  EXPECT_TRUE(std::ranges::equal(in.subgraph(0).tensor(2).data(), out.subgraph(0).tensor(2).data()));
  for (int t : {1, 2}) EXPECT_GE(*out.subgraph(0).tensor(t).data_offset(), out.flatbuffer_size());
  EXPECT_EQ(report.outside_payloads, 2u);
  EXPECT_TRUE(std::ranges::equal(in.metadata()[0].data, out.metadata()[0].data));
  expect_all_constants_aligned(out);
  // The result patches again (offsets are real, not placeholders).
  const auto again = patch(bytes, {{update("conv/bias", array_of(DType::float32, {4}, std::vector<float>{9, 9, 9, 9}))}});
  const Model out2 = Model::from_bytes(again);
  EXPECT_EQ(values_of<float>(out2.subgraph(0).tensor(1).data()), fresh);
  EXPECT_EQ(values_of<float>(out2.subgraph(0).tensor(2).data()), (std::vector<float>{9, 9, 9, 9}));
}

TEST(patch_test, custom_options_after_the_flatbuffer_are_kept) {
  // A custom op whose options payload lives after the FlatBuffer (large_custom_options_*).
  ModelBuilder b = litelens::testing::conv_model();
  b.store_outside(1);
  const int code = b.add_opcode(tflite::BuiltinOperator_CUSTOM, "MyOp");
  b.add_tensor(0, "custom/out", {1, 3, 3, 4});
  const int op = b.add_operator(0, code, {3}, {4});
  const std::vector<std::uint8_t> payload = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3};
  b.op(0, op).large_custom_options_offset = 1;
  b.op(0, op).large_custom_options_size = payload.size();
  auto staged = b.finish();
  const std::size_t at = staged.size() + 16;
  tflite::ModelT m;
  tflite::GetModel(staged.data())->UnPackTo(&m);
  m.subgraphs[0]->operators[op]->large_custom_options_offset = at;
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(tflite::Model::Pack(fbb, &m), tflite::ModelIdentifier());
  std::vector<std::byte> original(reinterpret_cast<const std::byte*>(fbb.GetBufferPointer()),
                                  reinterpret_cast<const std::byte*>(fbb.GetBufferPointer()) + fbb.GetSize());
  ASSERT_LE(original.size(), staged.size());
  original.insert(original.end(), staged.begin() + static_cast<std::ptrdiff_t>(original.size()), staged.end());
  original.resize(at, std::byte{0});
  for (auto v : payload) original.push_back(static_cast<std::byte>(v));
  const Model in = Model::from_bytes(original);
  ASSERT_EQ(in.subgraph(0).op(op).custom_options().size(), payload.size());
  const auto fresh = filter_values(5.0f);
  const Model out = Model::from_bytes(
      patch(original, {{update("conv/filter", array_of(DType::float32, {4, 3, 3, 3}, fresh))}}));
  EXPECT_EQ(values_of<float>(out.subgraph(0).tensor(1).data()), fresh);
  EXPECT_TRUE(std::ranges::equal(out.subgraph(0).op(op).custom_options(), in.subgraph(0).op(op).custom_options()));
  const auto custom_at = static_cast<std::uint64_t>(out.subgraph(0).op(op).custom_options().data() - out.bytes().data());
  EXPECT_GE(custom_at, out.flatbuffer_size());
  EXPECT_EQ(custom_at % 16, 0u);
}

TEST(patch_test, deduplicated_outside_payloads_stay_shared) {
  ModelBuilder b = litelens::testing::conv_model();
  const auto bias = b.buffer(2).data;
  const int dup = b.add_buffer(bias);  // a second buffer with the same bytes
  b.add_tensor(0, "bias_copy", {4}, tflite::TensorType_FLOAT32, dup);
  b.store_outside(1);
  b.store_outside(2);
  b.store_outside(dup);
  auto original = b.finish();
  // Point the duplicate at the first payload, as the converter's deduplication does.
  tflite::ModelT staged;
  tflite::GetModel(original.data())->UnPackTo(&staged);
  staged.buffers[dup]->offset = staged.buffers[2]->offset;
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(tflite::Model::Pack(fbb, &staged), tflite::ModelIdentifier());
  std::vector<std::byte> rebuilt(reinterpret_cast<const std::byte*>(fbb.GetBufferPointer()),
                                 reinterpret_cast<const std::byte*>(fbb.GetBufferPointer()) + fbb.GetSize());
  rebuilt.insert(rebuilt.end(), original.begin() + static_cast<std::ptrdiff_t>(rebuilt.size()), original.end());
  const Model in = Model::from_bytes(rebuilt);
  ASSERT_EQ(in.subgraph(0).tensor(2).data_offset(), in.subgraph(0).tensor(4).data_offset());
  PatchReport report;
  const Model out = Model::from_bytes(
      patch(rebuilt, {{update("conv/filter", array_of(DType::float32, {4, 3, 3, 3}, filter_values(1.0f)))}}, {}, &report));
  EXPECT_EQ(out.subgraph(0).tensor(2).data_offset(), out.subgraph(0).tensor(4).data_offset());
  EXPECT_EQ(report.outside_payloads, 2u);
}

TEST(patch_test, a_shared_buffer_is_split_when_one_user_changes) {
  ModelBuilder b = litelens::testing::conv_model();
  b.add_tensor(0, "bias_alias", {4}, tflite::TensorType_FLOAT32, 2);  // tensor 4 shares the bias buffer
  const auto original = b.finish();
  const Model in = Model::from_bytes(original);
  PatchReport report;
  const Model out = Model::from_bytes(
      patch(original, {{update("conv/bias", array_of(DType::float32, {4}, std::vector<float>{5, 6, 7, 8}))}}, {}, &report));
  EXPECT_EQ(values_of<float>(out.subgraph(0).tensor(2).data()), (std::vector<float>{5, 6, 7, 8}));
  EXPECT_TRUE(std::ranges::equal(in.subgraph(0).tensor(4).data(), out.subgraph(0).tensor(4).data()));
  EXPECT_NE(out.subgraph(0).tensor(2).buffer(), out.subgraph(0).tensor(4).buffer());
  EXPECT_EQ(out.subgraph(0).tensor(4).buffer(), 2u);
  EXPECT_EQ(out.buffer_count(), in.buffer_count() + 1);
  ASSERT_EQ(report.tensors.size(), 1u);
  EXPECT_TRUE(report.tensors[0].split);
  ASSERT_EQ(report.warnings.size(), 1u);
  EXPECT_NE(report.warnings[0].find("split"), std::string::npos) << report.warnings[0];
  EXPECT_NE(report.warnings[0].find("bias_alias"), std::string::npos) << report.warnings[0];

  // Both users given the same new values: no split.
  PatchReport same;
  const Array v = array_of(DType::float32, {4}, std::vector<float>{5, 6, 7, 8});
  const Model out2 = Model::from_bytes(patch(original, {{update("conv/bias", v), update("bias_alias", v)}}, {}, &same));
  EXPECT_EQ(out2.subgraph(0).tensor(2).buffer(), out2.subgraph(0).tensor(4).buffer());
  EXPECT_TRUE(same.warnings.empty());
  EXPECT_EQ(out2.buffer_count(), in.buffer_count());
}

TEST(patch_test, the_associated_file_archive_is_carried_over) {
  for (const auto& [absolute, zip64] : {std::pair{true, false}, std::pair{false, false}, std::pair{true, true},
                                        std::pair{false, true}}) {
    SCOPED_TRACE(fmt::format("{} offsets{}", absolute ? "absolute" : "relative", zip64 ? ", ZIP64" : ""));
    const auto original =
        with_zip(rich_conv_model().finish(), {{"labels.txt", "cat\ndog\n"}, {"vocab.txt", "a b c"}}, absolute, zip64);
    const Model in = Model::from_bytes(original);
    ASSERT_EQ(associated_files(in).size(), 2u);
    // A bigger FlatBuffer (new quantization parameters) moves the archive.
    PatchSpec spec;
    spec.quantization.push_back(parse_quant_spec("conv/output", "scale:0.5;zero_point:3"));
    PatchReport report;
    const auto bytes = patch(original, spec, {}, &report);
    const Model out = Model::from_bytes(bytes);
    EXPECT_TRUE(report.archive);
    EXPECT_EQ(report.archive_offsets_rewritten, absolute);
    const auto files = associated_files(out);
    ASSERT_EQ(files.size(), 2u);
    EXPECT_EQ(files[0].name, "labels.txt");
    const auto data = associated_file_data(out, files[0]);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(data.data()), data.size()), "cat\ndog\n");
    const auto data2 = associated_file_data(out, files[1]);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(data2.data()), data2.size()), "a b c");
    EXPECT_EQ(out.subgraph(0).tensor(3).quantization()->zero_point, std::vector<std::int64_t>{3});
  }
}

TEST(patch_test, archive_after_outside_buffers) {
  ModelBuilder b = rich_conv_model();
  b.store_outside(1);
  const auto original = with_zip(b.finish(), {{"labels.txt", "x"}}, true);
  const Model in = Model::from_bytes(original);
  ASSERT_EQ(associated_files(in).size(), 1u);
  const Model out = Model::from_bytes(
      patch(original, {{update("conv/filter", array_of(DType::float32, {4, 3, 3, 3}, filter_values(3.0f)))}}));
  EXPECT_EQ(values_of<float>(out.subgraph(0).tensor(1).data()), filter_values(3.0f));
  const auto files = associated_files(out);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(read_associated_file(out, files[0]).size(), 1u);
}

TEST(patch_test, keras_layout_values_are_permuted_back) {
  const auto original = depthwise_model().finish();
  const Model m = Model::from_bytes(original);
  // Keras keeps a depthwise filter as [H, W, C, M]: element (h, w, c, m) is stored at [0, h, w, c*M + m].
  std::vector<float> keras(3 * 3 * 2 * 3);
  for (std::size_t i = 0; i < keras.size(); ++i) keras[i] = static_cast<float>(i) * 0.5f;
  ValueUpdate u = update("sg0.op0.DEPTHWISE_CONV_2D/filter", array_of(DType::float32, {3, 3, 2, 3}, keras));
  u.layout = Framework::keras;
  const Model out = Model::from_bytes(patch(original, {{u}}));
  // The keras layout is the stored one reshaped: the same flat order.
  EXPECT_EQ(values_of<float>(out.subgraph(0).tensor(1).data()), keras);
  u.values = array_of(DType::float32, {3, 3, 6, 1}, keras);
  expect_patch_error([&] { patch(original, {{u}}); }, PatchError::Kind::shape_mismatch, "keras layout");
  ValueUpdate by_name = update("dw/filter", array_of(DType::float32, {3, 3, 2, 3}, keras));
  by_name.layout = Framework::keras;
  expect_patch_error([&] { patch(original, {{by_name}}); }, PatchError::Kind::unsupported, "layer key");
  // Conv filters: torch OIHW <- OHWI.
  const auto conv = litelens::testing::conv_model().finish();
  std::vector<float> oihw(4 * 3 * 3 * 3);
  for (std::size_t i = 0; i < oihw.size(); ++i) oihw[i] = static_cast<float>(i);
  ValueUpdate t = update("sg0.op0.CONV_2D/filter", array_of(DType::float32, {4, 3, 3, 3}, oihw));
  t.layout = Framework::torch;
  const Model out2 = Model::from_bytes(patch(conv, {{t}}));
  const auto ohwi = values_of<float>(out2.subgraph(0).tensor(1).data());
  // OHWI[o][h][w][i] == OIHW[o][i][h][w]
  for (int o = 0; o < 4; ++o)
    for (int h = 0; h < 3; ++h)
      for (int w = 0; w < 3; ++w)
        for (int i = 0; i < 3; ++i) EXPECT_EQ(ohwi[((o * 3 + h) * 3 + w) * 3 + i], oihw[((o * 3 + i) * 3 + h) * 3 + w]);
}

TEST(patch_test, unreferenced_trailing_bytes) {
  auto original = rich_conv_model().finish();
  const auto bias = array_of(DType::float32, {4}, std::vector<float>{0, 0, 0, 1});
  // Zero padding after the model: not copied, no warning.
  auto padded = original;
  padded.resize(padded.size() + 64, std::byte{0});
  PatchReport quiet;
  const auto out1 = patch(padded, {{update("conv/bias", bias)}}, {}, &quiet);
  EXPECT_TRUE(quiet.warnings.empty());
  // Other bytes: copied verbatim at the end, with a warning.
  auto tagged = original;
  const std::string tag = "not an archive, but someone's data";
  for (char c : tag) tagged.push_back(static_cast<std::byte>(c));
  PatchReport loud;
  const auto out2 = patch(tagged, {{update("conv/bias", bias)}}, {}, &loud);
  ASSERT_EQ(loud.warnings.size(), 1u);
  EXPECT_NE(loud.warnings[0].find("copied verbatim"), std::string::npos);
  ASSERT_GE(out2.size(), tag.size());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(out2.data() + out2.size() - tag.size()), tag.size()), tag);
}

// The conv model with an extra field (id 10, beyond the known ones) in the Model table.
std::vector<std::byte> model_with_an_unknown_field() {
  const auto base = litelens::testing::conv_model().finish();
  tflite::ModelT m;
  tflite::GetModel(base.data())->UnPackTo(&m);
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<tflite::OperatorCode>> codes;
  for (const auto& c : m.operator_codes) codes.push_back(tflite::CreateOperatorCode(fbb, c.get()));
  std::vector<flatbuffers::Offset<tflite::SubGraph>> sgs;
  for (const auto& sg : m.subgraphs) sgs.push_back(tflite::CreateSubGraph(fbb, sg.get()));
  std::vector<flatbuffers::Offset<tflite::Buffer>> bufs;
  for (const auto& b : m.buffers) bufs.push_back(tflite::CreateBuffer(fbb, b.get()));
  const auto cv = fbb.CreateVector(codes);
  const auto sv = fbb.CreateVector(sgs);
  const auto bv = fbb.CreateVector(bufs);
  tflite::ModelBuilder mb(fbb);
  mb.add_version(3);
  mb.add_operator_codes(cv);
  mb.add_subgraphs(sv);
  mb.add_buffers(bv);
  fbb.AddElement<std::uint32_t>(static_cast<flatbuffers::voffset_t>(4 + 2 * 10), 42, 0);
  fbb.Finish(mb.Finish(), tflite::ModelIdentifier());
  return {reinterpret_cast<const std::byte*>(fbb.GetBufferPointer()),
          reinterpret_cast<const std::byte*>(fbb.GetBufferPointer()) + fbb.GetSize()};
}

TEST(patch_test, fields_unknown_to_the_schema_are_refused) {
  const auto bytes = model_with_an_unknown_field();
  expect_patch_error([&] { patch(bytes, {{update("conv/bias", array_of(DType::float32, {4}, std::vector<float>(4)))}}); },
                     PatchError::Kind::unsupported, "field id 10");
}

// Makes a present field of `table` (a table inside `bytes`) absent by zeroing its vtable slot.
// The vtable must not be shared with a table that should keep the field.
void drop_field(std::vector<std::byte>& bytes, const void* table, flatbuffers::voffset_t field) {
  const auto* vtable = reinterpret_cast<const flatbuffers::Table*>(table)->GetVTable();
  const auto at = static_cast<std::size_t>(vtable - reinterpret_cast<const std::uint8_t*>(bytes.data())) + field;
  ASSERT_NE(bytes.at(at), std::byte{0});
  bytes[at] = bytes[at + 1] = std::byte{0};
}

TEST(patch_test, union_tags_without_their_table_are_written_back_as_they_were) {
  // The verifier accepts a union tag whose table is absent and such models open (the CLI
  // corruption matrix's union_options_without_table, union_custom_without_table). Rewriting them
  // used to crash: the object API unpacks a null member that the generated Pack dereferences.
  ModelBuilder b = litelens::testing::conv_model();
  auto q = std::make_unique<tflite::QuantizationParametersT>();
  q->details.Set(tflite::CustomQuantizationT{});
  q->details.AsCustomQuantization()->custom = {1, 2, 3};
  b.tensor(0, 3).quantization = std::move(q);  // the output: the only tensor with quantization details
  auto sp = std::make_unique<tflite::SparsityParametersT>();
  sp->traversal_order = {0, 1, 2, 3};
  for (int d = 0; d < 4; ++d) {
    auto level = std::make_unique<tflite::DimensionMetadataT>();
    level->format = tflite::DimensionType_DENSE;
    level->dense_size = d == 1 ? 8 : 1;
    if (d == 3) {
      level->format = tflite::DimensionType_SPARSE_CSR;
      level->array_segments.Set(tflite::Int32VectorT{});
      level->array_segments.AsInt32Vector()->values = {0, 1};
      level->array_indices.Set(tflite::Int32VectorT{});
      level->array_indices.AsInt32Vector()->values = {0};
    }
    sp->dim_metadata.push_back(std::move(level));
  }
  b.tensor(0, 0).sparsity = std::move(sp);  // the input: sparsity without data is not checked
  auto bytes = b.finish();
  {
    const auto* root = tflite::GetModel(bytes.data());
    const auto* sg = root->subgraphs()->Get(0);
    drop_field(bytes, sg->operators()->Get(0), tflite::Operator::VT_BUILTIN_OPTIONS);
    drop_field(bytes, sg->tensors()->Get(3)->quantization(), tflite::QuantizationParameters::VT_DETAILS);
    drop_field(bytes, sg->tensors()->Get(0)->sparsity()->dim_metadata()->Get(3), tflite::DimensionMetadata::VT_ARRAY_SEGMENTS);
  }
  const Model in = Model::from_bytes(bytes);
  ASSERT_EQ(in.subgraph(0).tensor(3).quantization()->scheme, Quantization::Scheme::custom);
  const std::vector<float> bias{5, 6, 7, 8};
  const auto out_bytes = patch(bytes, {{update("conv/bias", array_of(DType::float32, {4}, bias))}});
  const Model out = Model::from_bytes(out_bytes);
  EXPECT_EQ(values_of<float>(out.subgraph(0).tensor(2).data()), bias);
  const auto* sg = tflite::GetModel(out_bytes.data())->subgraphs()->Get(0);
  EXPECT_EQ(sg->operators()->Get(0)->builtin_options_type(), tflite::BuiltinOptions_Conv2DOptions);
  EXPECT_EQ(sg->operators()->Get(0)->builtin_options(), nullptr);
  EXPECT_EQ(sg->tensors()->Get(3)->quantization()->details_type(), tflite::QuantizationDetails_CustomQuantization);
  EXPECT_EQ(sg->tensors()->Get(3)->quantization()->details(), nullptr);
  EXPECT_EQ(out.subgraph(0).tensor(3).quantization()->scheme, Quantization::Scheme::custom);
  const auto* level = sg->tensors()->Get(0)->sparsity()->dim_metadata()->Get(3);
  EXPECT_EQ(level->array_segments_type(), tflite::SparseIndexVector_Int32Vector);
  EXPECT_EQ(level->array_segments(), nullptr);
  ASSERT_NE(level->array_indices_as_Int32Vector(), nullptr);
  EXPECT_EQ(level->array_indices_as_Int32Vector()->values()->size(), 1u);
}

TEST(patch_test, outside_data_pointing_into_the_flatbuffer_is_moved_after_it) {
  // A buffer stored by offset may point inside the FlatBuffer (it opens with the warning
  // buffer_inside_flatbuffer). The rewritten FlatBuffer has other bytes there, so its data goes
  // after the new FlatBuffer with the others; the self-check used to call this a litelens bug.
  ModelBuilder b = litelens::testing::conv_model();
  b.store_outside(1);
  b.store_outside(2);
  auto bytes = b.finish();
  {
    const auto* bias = tflite::GetModel(bytes.data())->buffers()->Get(2);
    const auto at = reinterpret_cast<const std::uint8_t*>(reinterpret_cast<const flatbuffers::Table*>(bias)->GetAddressOf(
                        tflite::Buffer::VT_OFFSET)) -
                    reinterpret_cast<const std::uint8_t*>(bytes.data());
    const std::uint64_t inside = 16;
    std::memcpy(bytes.data() + at, &inside, sizeof inside);
  }
  const Model in = Model::from_bytes(bytes);
  ASSERT_LT(*in.subgraph(0).tensor(2).data_offset(), in.flatbuffer_size());
  ASSERT_FALSE(in.warnings().empty());
  const auto fresh = filter_values(3.0f);
  const auto out_bytes = patch(bytes, {{update("conv/filter", array_of(DType::float32, {4, 3, 3, 3}, fresh))}});
  const Model out = Model::from_bytes(out_bytes);
  EXPECT_EQ(values_of<float>(out.subgraph(0).tensor(1).data()), fresh);
  EXPECT_TRUE(std::ranges::equal(in.subgraph(0).tensor(2).data(), out.subgraph(0).tensor(2).data()));
  for (int t : {1, 2}) EXPECT_GE(*out.subgraph(0).tensor(t).data_offset(), out.flatbuffer_size());
  EXPECT_TRUE(out.warnings().empty());
  expect_all_constants_aligned(out);
}

// ---- quantization --------------------------------------------------------------------------------

TEST(patch_test, set_quant_specs) {
  const auto a = parse_quant_spec("w", "scale:0.1,0.2;zero_point:0,1;axis:0");
  EXPECT_EQ(a.scale, (std::vector<float>{0.1f, 0.2f}));
  EXPECT_EQ(a.zero_point, (std::vector<std::int64_t>{0, 1}));
  EXPECT_EQ(a.quantized_dimension, 0);
  const auto j = parse_quant_spec("w", R"({"scale": [0.5], "zero_point": [-3], "quantized_dimension": 1})");
  EXPECT_EQ(j.scale, std::vector<float>{0.5f});
  EXPECT_EQ(j.zero_point, std::vector<std::int64_t>{-3});
  EXPECT_EQ(j.quantized_dimension, 1);
  expect_patch_error([] { parse_quant_spec("w", "zero_point:0"); }, PatchError::Kind::bad_quantization, "no scale");
  expect_patch_error([] { parse_quant_spec("w", "scale:abc"); }, PatchError::Kind::bad_quantization, "not a number");
  expect_patch_error([] { parse_quant_spec("w", "scales:1"); }, PatchError::Kind::bad_quantization, "unknown key");
}

TEST(patch_test, set_quant_replaces_scales_and_can_requantize) {
  const auto original = int8_fc_model().finish();
  PatchSpec spec;
  spec.quantization.push_back(parse_quant_spec("fc/weights", "scale:1,1,1"));
  const Model out = Model::from_bytes(patch(original, spec));
  const auto q = out.subgraph(0).tensor(1).quantization();
  ASSERT_TRUE(q);
  EXPECT_EQ(q->scale, (std::vector<float>{1, 1, 1}));
  EXPECT_EQ(q->zero_point, (std::vector<std::int64_t>{0, 0, 0}));
  // Stored integers unchanged.
  const Model in = Model::from_bytes(original);
  EXPECT_TRUE(std::ranges::equal(in.subgraph(0).tensor(1).data(), out.subgraph(0).tensor(1).data()));
  // New scales plus float values: quantized with the new scales.
  spec.values.push_back(update("fc/weights", array_of(DType::float32, {3, 4}, std::vector<float>(12, 2.6f))));
  PatchOptions o;
  o.quantize = true;
  const Model out2 = Model::from_bytes(patch(original, spec, o));
  EXPECT_EQ(values_of<std::int8_t>(out2.subgraph(0).tensor(1).data()), std::vector<std::int8_t>(12, 3));
  // Errors: count, axis, zero point range.
  PatchSpec bad;
  bad.quantization.push_back(parse_quant_spec("fc/weights", "scale:1,1"));
  expect_patch_error([&] { patch(original, bad); }, PatchError::Kind::bad_quantization, "2 scales");
  bad.quantization[0] = parse_quant_spec("fc/weights", "scale:1;zero_point:300");
  expect_patch_error([&] { patch(original, bad); }, PatchError::Kind::bad_quantization, "outside the int8 range");
  bad.quantization[0] = parse_quant_spec("fc/weights", "scale:0");
  expect_patch_error([&] { patch(original, bad); }, PatchError::Kind::bad_quantization, "positive");
}

// ---- files and safety ------------------------------------------------------------------------------

TEST(patch_test, writes_atomically_and_never_over_the_input_without_in_place) {
  const auto dir = scratch();
  const auto input = dir / "in.tflite";
  const auto original = rich_conv_model().finish();
  write_file(input, original);
  const Model m = Model::open(input);
  const PatchSpec spec{{update("conv/bias", array_of(DType::float32, {4}, std::vector<float>{4, 3, 2, 1}))}};
  expect_patch_error([&] { patch_model(m, spec, input); }, PatchError::Kind::in_place_required, "--in-place");
  EXPECT_EQ(read_file(input), original);
  // Another path: written, input untouched, no temporary left behind.
  const auto output = dir / "out.tflite";
  const auto report = patch_model(m, spec, output);
  EXPECT_EQ(read_file(input), original);
  EXPECT_EQ(fs::file_size(output), report.output_size);
  const Model out = Model::open(output);
  EXPECT_EQ(values_of<float>(out.subgraph(0).tensor(2).data()), (std::vector<float>{4, 3, 2, 1}));
  // In place.
  PatchOptions o;
  o.in_place = true;
  patch_model(m, spec, input, o);
  const Model replaced = Model::open(input);
  EXPECT_EQ(values_of<float>(replaced.subgraph(0).tensor(2).data()), (std::vector<float>{4, 3, 2, 1}));
  // A failing patch leaves nothing behind.
  expect_patch_error([&] { patch_model(m, {{update("nope", array_of(DType::float32, {1}, std::vector<float>{1}))}}, dir / "x.tflite"); },
                     PatchError::Kind::unknown_selector, "nope");
  EXPECT_FALSE(fs::exists(dir / "x.tflite"));
  for (const auto& e : fs::directory_iterator(dir)) EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos);
  fs::remove_all(dir);
}

// A float32 .npy (version 1.0, 128-byte header) of `shape`, written as a Python tuple ("(2, 3)").
std::vector<std::byte> float32_npy(const std::string& shape, bool fortran, const std::vector<float>& data) {
  std::string header = std::string("{'descr': '<f4', 'fortran_order': ") + (fortran ? "True" : "False") +
                       ", 'shape': " + shape + ", }";
  header.append(128 - 10 - header.size() - 1, ' ');
  header.push_back('\n');
  std::string out = "\x93NUMPY";
  out.push_back('\x01');
  out.push_back('\x00');
  out.push_back(static_cast<char>(header.size()));
  out.push_back('\x00');
  out += header;
  out.append(reinterpret_cast<const char*>(data.data()), data.size() * 4);
  std::vector<std::byte> b(out.size());
  std::memcpy(b.data(), out.data(), out.size());
  return b;
}

TEST(patch_test, npy_files_in_c_and_fortran_order) {
  // A 2x3 float32 array, Fortran order: column-major data.
  const auto npy = [](bool fortran, const std::vector<float>& data) { return float32_npy("(2, 3)", fortran, data); };
  const Array c = parse_npy(npy(false, {1, 2, 3, 4, 5, 6}), "c.npy");
  EXPECT_EQ(c.shape(), (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(values_of<float>(c.bytes()), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  const Array f = parse_npy(npy(true, {1, 4, 2, 5, 3, 6}), "f.npy");
  EXPECT_EQ(f.shape(), (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(values_of<float>(f.bytes()), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  auto truncated = npy(false, {1, 2, 3, 4, 5, 6});
  truncated.pop_back();
  expect_patch_error([&] { parse_npy(truncated, "t.npy"); }, PatchError::Kind::bad_values_file, "t.npy");
}

TEST(patch_test, extract_edit_patch_round_trips) {
  const auto dir = scratch();
  struct Case {
    const char* name;
    ExportFormat format;
    DecodeMode mode;
    Framework layout;
    ModelBuilder (*model)();
  };
  const Case cases[] = {
      {"npz stored", ExportFormat::npz, DecodeMode::stored, Framework::tflite, &rich_conv_model},
      {"npz keras", ExportFormat::npz, DecodeMode::stored, Framework::keras, &rich_conv_model},
      {"safetensors torch", ExportFormat::safetensors, DecodeMode::stored, Framework::torch, &rich_conv_model},
      {"npz dequantized fp16", ExportFormat::npz, DecodeMode::dequantized, Framework::keras, &fp16_conv_model},
      {"safetensors dequantized int8", ExportFormat::safetensors, DecodeMode::dequantized, Framework::torch, &int8_fc_model},
      {"npz keras depthwise", ExportFormat::npz, DecodeMode::stored, Framework::keras, &depthwise_model},
      {"safetensors torch depthwise", ExportFormat::safetensors, DecodeMode::stored, Framework::torch, &depthwise_model},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto original = c.model().finish();
    const Model m = Model::from_bytes(original);
    ExportOptions eo;
    eo.format = c.format;
    eo.mode = c.mode;
    eo.layout = c.layout;
    const auto exported = export_to_memory(m, export_items(layers(m)), eo);
    const auto file = dir / (c.format == ExportFormat::npz ? "w.npz" : "w.safetensors");
    write_file(file, exported);
    const auto updates = updates_from_export(m, file);
    ASSERT_FALSE(updates.empty());
    PatchReport report;
    const auto bytes = patch_to_memory(m, {updates}, {}, &report);
    const Model out = Model::from_bytes(bytes);
    for (const Tensor t : m.subgraph(0).tensors())
      EXPECT_TRUE(std::ranges::equal(t.data(), out.subgraph(0).tensor(t.index()).data())) << t.name();
    for (const auto& r : report.tensors) EXPECT_TRUE(r.unchanged) << r.selector << " " << r.conversion;
  }
  fs::remove_all(dir);
}

TEST(patch_test, names_that_are_not_utf8_round_trip_through_an_export) {
  // The manifest is JSON: a byte that is not UTF-8 in a tensor name is written as U+FFFD. The
  // check that the manifest describes this model used to compare the raw name with that and
  // refuse the model's own export (the CLI corruption matrix, a random flip in a name).
  const auto dir = scratch();
  ModelBuilder b = rich_conv_model();
  b.tensor(0, 1).name = "conv/fil\xff" "t\xc3" "er";
  const auto original = b.finish();
  const Model m = Model::from_bytes(original);
  for (const ExportFormat format : {ExportFormat::npz, ExportFormat::safetensors}) {
    ExportOptions eo;
    eo.format = format;
    const auto file = dir / (format == ExportFormat::npz ? "w.npz" : "w.safetensors");
    write_file(file, export_to_memory(m, export_items(layers(m)), eo));
    const auto updates = updates_from_export(m, file);
    ASSERT_EQ(updates.size(), 2u);
    PatchReport report;
    const Model out = Model::from_bytes(patch_to_memory(m, {updates}, {}, &report));
    EXPECT_EQ(out.subgraph(0).tensor(1).name(), m.subgraph(0).tensor(1).name());
    for (const auto& r : report.tensors) EXPECT_TRUE(r.unchanged) << r.selector;
  }
  // The check is as precise as the manifest: names that differ only in their stray bytes read
  // the same; other names do not.
  ModelBuilder other = rich_conv_model();
  other.tensor(0, 1).name = "conv/fil\xfe" "t\xc3" "er";
  const auto other_bytes = other.finish();
  const Model mo = Model::from_bytes(other_bytes);
  EXPECT_NO_THROW(updates_from_export(mo, dir / "w.npz"));
  other.tensor(0, 1).name = "conv/filter";
  const auto renamed = other.finish();
  const Model mr = Model::from_bytes(renamed);
  expect_patch_error([&] { updates_from_export(mr, dir / "w.npz"); }, PatchError::Kind::manifest_mismatch, "another model");
  fs::remove_all(dir);
}

TEST(patch_test, a_manifest_from_another_model_is_refused) {
  const auto dir = scratch();
  const auto a = rich_conv_model().finish();
  const Model ma = Model::from_bytes(a);
  ExportOptions eo;
  write_file(dir / "w.npz", export_to_memory(ma, export_items(layers(ma)), eo));
  ModelBuilder other = litelens::testing::conv_model();
  other.tensor(0, 1).name = "renamed/filter";
  const auto b = other.finish();
  const Model mb = Model::from_bytes(b);
  expect_patch_error([&] { updates_from_export(mb, dir / "w.npz"); }, PatchError::Kind::manifest_mismatch, "another model");
  fs::remove_all(dir);
}

TEST(patch_test, cli_patch_and_in_place_rule) {
  const auto dir = scratch();
  const auto input = dir / "in.tflite";
  write_file(input, rich_conv_model().finish());
  const auto run = [](const std::string& args) {
    const std::string cmd = std::string(LITELENS_CLI_PATH) + " " + args + " >/dev/null 2>&1";
    const int status = std::system(cmd.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  // Export, then patch the export back: the values stay.
  ASSERT_EQ(run("extract " + input.string() + " -o " + (dir / "w.npz").string()), 0);
  EXPECT_EQ(run("patch " + input.string() + " -o " + (dir / "out.tflite").string() + " --from " + (dir / "w.npz").string()), 0);
  EXPECT_TRUE(fs::exists(dir / "out.tflite"));
  // Writing over the input needs --in-place (usage error 2), and an unknown selector is exit 1.
  EXPECT_EQ(run("patch " + input.string() + " -o " + input.string() + " --set-quant conv/output=scale:0.5"), 2);
  EXPECT_EQ(run("patch " + input.string() + " --in-place --set-quant conv/output=scale:0.5"), 0);
  EXPECT_EQ(run("patch " + input.string() + " -o " + (dir / "x.tflite").string() + " --set-quant nope=scale:0.5"), 1);
  EXPECT_EQ(run("diff " + input.string() + " " + (dir / "out.tflite").string() + " --json"), 0);
  const Model patched = Model::open(input);
  EXPECT_EQ(patched.subgraph(0).tensor(3).quantization()->scale, std::vector<float>{0.5f});
  fs::remove_all(dir);
}

// ---- subgraphs, links, permissions, the re-validation gate, exit codes ---------------------------

// Two subgraphs, each x [2] + "shared/w" [2] -> y: one tensor name in both.
ModelBuilder two_subgraph_model() {
  ModelBuilder b;
  const int add = b.add_opcode(tflite::BuiltinOperator_ADD);
  for (int i = 0; i < 2; ++i) {
    const int sg = b.add_subgraph(i == 0 ? "main" : "second");
    b.add_tensor(sg, "x", {2});
    b.add_constant(sg, "shared/w", {2}, tflite::TensorType_FLOAT32,
                   to_bytes(std::vector<float>{1.0f + 10.0f * static_cast<float>(i), 2.0f + 10.0f * static_cast<float>(i)}));
    b.add_tensor(sg, "y", {2});
    b.add_operator(sg, add, {0, 1}, {2});
    b.subgraph(sg).inputs = {0};
    b.subgraph(sg).outputs = {2};
  }
  return b;
}

struct CliRun {
  int status = -1;
  std::string output;  // stdout and stderr
};

CliRun run_cli(const std::string& args) {
  CliRun r;
  const std::string cmd = std::string(LITELENS_CLI_PATH) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int status = ::pclose(p);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// A float32 .npy of shape [n].
std::vector<std::byte> npy_of(const std::vector<float>& v) { return float32_npy(fmt::format("({},)", v.size()), false, v); }

bool temporaries_in(const fs::path& dir) {
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp-") != std::string::npos) return true;
  return false;
}

TEST(patch_test, index_selectors_in_a_later_subgraph_and_names_used_in_two) {
  const auto original = two_subgraph_model().finish();
  const Model m = Model::from_bytes(original);
  // The name is in both subgraphs: refused, naming both and asking for #N.
  try {
    resolve_selector(m, "shared/w");
    ADD_FAILURE() << "an ambiguous name was accepted";
  } catch (const PatchError& e) {
    EXPECT_EQ(e.kind(), PatchError::Kind::ambiguous_selector);
    const std::string what = e.what();
    EXPECT_NE(what.find("used by 2 tensors"), std::string::npos) << what;
    EXPECT_NE(what.find("sg0 #1"), std::string::npos) << what;
    EXPECT_NE(what.find("sg1 #1"), std::string::npos) << what;
    EXPECT_NE(what.find("#N (and --subgraph)"), std::string::npos) << what;
  }
  // Restricted to one subgraph the name is unique.
  EXPECT_EQ(resolve_selector(m, "shared/w", 1).subgraph, 1);
  // #N with a subgraph > 0 reaches that subgraph's tensor, and only it changes.
  const PatchTarget t = resolve_selector(m, "#1", 1);
  EXPECT_EQ(t.subgraph, 1);
  EXPECT_EQ(t.tensor, 1);
  PatchOptions o;
  o.subgraph = 1;
  PatchReport report;
  const Model out = Model::from_bytes(
      patch(original, {{update("#1", array_of(DType::float32, {2}, std::vector<float>{-5, -6}))}}, o, &report));
  EXPECT_EQ(values_of<float>(out.subgraph(1).tensor(1).data()), (std::vector<float>{-5, -6}));
  EXPECT_EQ(values_of<float>(out.subgraph(0).tensor(1).data()), (std::vector<float>{1, 2}));
  ASSERT_EQ(report.tensors.size(), 1u);
  EXPECT_EQ(report.tensors[0].subgraph, 1);
  EXPECT_EQ(report.tensors[0].tensor, 1);
  // Without a subgraph, #N means subgraph 0.
  const Model out0 = Model::from_bytes(patch(original, {{update("#1", array_of(DType::float32, {2}, std::vector<float>{-5, -6}))}}));
  EXPECT_EQ(values_of<float>(out0.subgraph(0).tensor(1).data()), (std::vector<float>{-5, -6}));
  EXPECT_EQ(values_of<float>(out0.subgraph(1).tensor(1).data()), (std::vector<float>{11, 12}));
  // The same through the command line.
  const auto dir = scratch();
  write_file(dir / "two.tflite", original);
  write_file(dir / "w.npy", npy_of({-7, -8}));
  const std::string in = (dir / "two.tflite").string(), npy = (dir / "w.npy").string();
  const CliRun ambiguous = run_cli(fmt::format("patch {} -o {} --set shared/w={}", in, (dir / "a.tflite").string(), npy));
  EXPECT_EQ(ambiguous.status, 2) << ambiguous.output;
  EXPECT_NE(ambiguous.output.find("select one with #N"), std::string::npos) << ambiguous.output;
  EXPECT_NE(ambiguous.output.find("[ambiguous_selector]"), std::string::npos) << ambiguous.output;
  EXPECT_FALSE(fs::exists(dir / "a.tflite"));
  const CliRun ok = run_cli(fmt::format("patch {} -o {} --subgraph 1 --set '#1={}'", in, (dir / "b.tflite").string(), npy));
  ASSERT_EQ(ok.status, 0) << ok.output;
  EXPECT_NE(ok.output.find("patched sg1 #1 'shared/w'"), std::string::npos) << ok.output;
  const Model cli_out = Model::open(dir / "b.tflite");
  EXPECT_EQ(values_of<float>(cli_out.subgraph(1).tensor(1).data()), (std::vector<float>{-7, -8}));
  EXPECT_EQ(values_of<float>(cli_out.subgraph(0).tensor(1).data()), (std::vector<float>{1, 2}));
  const CliRun missing = run_cli(fmt::format("patch {} -o {} --subgraph 1 --set '#9={}'", in, (dir / "c.tflite").string(), npy));
  EXPECT_EQ(missing.status, 1) << missing.output;
  EXPECT_NE(missing.output.find("tensor #9 does not exist in subgraph 1"), std::string::npos) << missing.output;
  fs::remove_all(dir);
}

TEST(patch_test, in_place_through_a_link_replaces_the_file_it_leads_to) {
  const auto dir = scratch();
  fs::create_directories(dir / "models");
  const auto real = dir / "models" / "real.tflite";
  const auto original = rich_conv_model().finish();
  write_file(real, original);
  const auto link = dir / "link.tflite";
  fs::create_symlink(fs::path("models") / "real.tflite", link);  // relative, from another folder
  const PatchSpec spec{{update("conv/bias", array_of(DType::float32, {4}, std::vector<float>{4, 3, 2, 1}))}};
  {
    const Model m = Model::open(link);
    // The link names the input: --in-place is still needed.
    expect_patch_error([&] { patch_model(m, spec, link); }, PatchError::Kind::in_place_required, "--in-place");
    PatchOptions o;
    o.in_place = true;
    patch_model(m, spec, link, o);
  }
  ASSERT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(fs::read_symlink(link), fs::path("models") / "real.tflite");
  EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(real)));
  const Model replaced = Model::open(real);
  EXPECT_EQ(values_of<float>(replaced.subgraph(0).tensor(2).data()), (std::vector<float>{4, 3, 2, 1}));
  EXPECT_FALSE(temporaries_in(dir));
  EXPECT_FALSE(temporaries_in(dir / "models"));

  // In place through a chain of links (absolute, then relative) to the input.
  write_file(dir / "models" / "other.tflite", original);
  fs::create_symlink(dir / "models" / "other.tflite", dir / "abs.tflite");  // absolute
  fs::create_symlink("abs.tflite", dir / "chain.tflite");
  {
    const Model m = Model::open(dir / "chain.tflite");
    PatchOptions o;
    o.in_place = true;
    patch_model(m, spec, dir / "chain.tflite", o);
  }
  EXPECT_TRUE(fs::is_symlink(dir / "chain.tflite"));
  EXPECT_TRUE(fs::is_symlink(dir / "abs.tflite"));
  EXPECT_EQ(values_of<float>(Model::open(dir / "models" / "other.tflite").subgraph(0).tensor(2).data()),
            (std::vector<float>{4, 3, 2, 1}));
  // An -o that is a link to another file (planted in a shared folder, say) is not written
  // through: the link is replaced and the file it named is left alone. A dangling one likewise.
  write_file(dir / "models" / "victim.tflite", original);
  fs::permissions(dir / "models" / "victim.tflite", fs::perms::owner_read | fs::perms::owner_write,
                  fs::perm_options::replace);
  fs::create_symlink(dir / "models" / "victim.tflite", dir / "planted.tflite");
  fs::create_symlink(fs::path("models") / "new.tflite", dir / "dangling.tflite");
  const mode_t old_mask = ::umask(022);
  {
    const Model m = Model::from_bytes(original);
    patch_model(m, spec, dir / "planted.tflite");
    patch_model(m, spec, dir / "dangling.tflite");
  }
  ::umask(old_mask);
  EXPECT_FALSE(fs::is_symlink(dir / "planted.tflite"));
  EXPECT_EQ(values_of<float>(Model::open(dir / "planted.tflite").subgraph(0).tensor(2).data()),
            (std::vector<float>{4, 3, 2, 1}));
  EXPECT_EQ(read_file(dir / "models" / "victim.tflite"), original);
  struct stat replaced_link {};
  ASSERT_EQ(::stat((dir / "planted.tflite").c_str(), &replaced_link), 0);
  EXPECT_EQ(replaced_link.st_mode & 07777, 0644u) << "a new file's mode, not the 0600 of the file the link named";
  EXPECT_FALSE(fs::is_symlink(dir / "dangling.tflite"));
  EXPECT_FALSE(fs::exists(dir / "models" / "new.tflite"));

  // Through the command line.
  write_file(real, original);
  write_file(dir / "b.npy", npy_of({9, 8, 7, 6}));
  const CliRun r = run_cli(fmt::format("patch {} --in-place --set conv/bias={}", link.string(), (dir / "b.npy").string()));
  ASSERT_EQ(r.status, 0) << r.output;
  ASSERT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(values_of<float>(Model::open(real).subgraph(0).tensor(2).data()), (std::vector<float>{9, 8, 7, 6}));
  EXPECT_FALSE(temporaries_in(dir));
  EXPECT_FALSE(temporaries_in(dir / "models"));
  fs::remove_all(dir);
}

TEST(patch_test, a_replaced_file_keeps_its_permissions_and_a_new_one_follows_the_umask) {
  const auto dir = scratch();
  const auto input = dir / "private.tflite";
  const auto original = rich_conv_model().finish();
  write_file(input, original);
  fs::permissions(input, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
  const PatchSpec spec{{update("conv/bias", array_of(DType::float32, {4}, std::vector<float>{4, 3, 2, 1}))}};
  const mode_t old_mask = ::umask(022);
  const auto mode_of = [](const fs::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return st.st_mode & 07777;
  };
  {
    const Model m = Model::open(input);
    PatchOptions o;
    o.in_place = true;
    patch_model(m, spec, input, o);
    EXPECT_EQ(mode_of(input), 0600u);  // not 0644
    EXPECT_EQ(values_of<float>(Model::open(input).subgraph(0).tensor(2).data()), (std::vector<float>{4, 3, 2, 1}));
    // An existing -o file keeps its mode too (here one the umask would not give).
    write_file(dir / "shared.tflite", original);
    ::chmod((dir / "shared.tflite").c_str(), 0664);
    patch_model(m, spec, dir / "shared.tflite");
    EXPECT_EQ(mode_of(dir / "shared.tflite"), 0664u);
    // A new file: 0666 minus the umask.
    patch_model(m, spec, dir / "new.tflite");
    EXPECT_EQ(mode_of(dir / "new.tflite"), 0644u);
    ::umask(077);
    patch_model(m, spec, dir / "new2.tflite");
    EXPECT_EQ(mode_of(dir / "new2.tflite"), 0600u);
    // ... and the umask does not narrow a replaced file's mode.
    patch_model(m, spec, dir / "shared.tflite");
    EXPECT_EQ(mode_of(dir / "shared.tflite"), 0664u);
  }
  ::umask(old_mask);
  // Owner and group are kept when the process may set them (root may).
  if (::geteuid() == 0) {
    write_file(dir / "owned.tflite", original);
    ASSERT_EQ(::chown((dir / "owned.tflite").c_str(), 4321, 4322), 0);
    ::chmod((dir / "owned.tflite").c_str(), 0640);
    const Model m = Model::open(dir / "owned.tflite");
    PatchOptions o;
    o.in_place = true;
    patch_model(m, spec, dir / "owned.tflite", o);
    struct stat st {};
    ASSERT_EQ(::stat((dir / "owned.tflite").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 4321u);
    EXPECT_EQ(st.st_gid, 4322u);
    EXPECT_EQ(st.st_mode & 07777, 0640u);
  }
  // The command line, in place.
  fs::permissions(input, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
  write_file(dir / "b.npy", npy_of({9, 8, 7, 6}));
  const CliRun r = run_cli(fmt::format("patch {} --in-place --set conv/bias={}", input.string(), (dir / "b.npy").string()));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(mode_of(input), 0600u);
  fs::remove_all(dir);
}

// Removes the test hook even when an assertion fails.
struct OutputHook {
  explicit OutputHook(std::function<void(const fs::path&)> f) { detail::set_patch_output_hook_for_testing(std::move(f)); }
  ~OutputHook() { detail::set_patch_output_hook_for_testing({}); }
};

TEST(patch_test, an_output_that_fails_the_check_is_never_renamed_into_place) {
  const auto dir = scratch();
  const auto original = rich_conv_model().finish();
  const PatchSpec spec{{update("conv/bias", array_of(DType::float32, {4}, std::vector<float>{4, 3, 2, 1}))}};
  // Two kinds of damage: one the reader refuses (the file identifier), one only the comparison
  // with the input sees (a byte of the filter, which the patch does not touch).
  const std::function<void(const fs::path&)> damages[] = {
      [](const fs::path& temp) {
        std::fstream f(temp, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(4);
        f.write("XXXX", 4);
      },
      [](const fs::path& temp) {
        std::uint64_t at = 0;
        {
          const Model t = Model::open(temp);
          at = *t.subgraph(0).tensor(1).data_offset();
        }
        std::fstream f(temp, std::ios::in | std::ios::out | std::ios::binary);
        f.seekg(static_cast<std::streamoff>(at));
        char c = 0;
        f.read(&c, 1);
        c = static_cast<char>(c ^ 0x40);
        f.seekp(static_cast<std::streamoff>(at));
        f.write(&c, 1);
      },
  };
  const char* expected[] = {"does not validate", "does not hold the expected bytes"};
  for (int i = 0; i < 2; ++i) {
    SCOPED_TRACE(expected[i]);
    const auto input = dir / "in.tflite";
    write_file(input, original);
    bool called = false;
    OutputHook hook([&](const fs::path& temp) {
      called = true;
      EXPECT_EQ(temp.parent_path(), dir);
      damages[i](temp);
    });
    const Model m = Model::open(input);
    const auto expect_output_error = [&](const std::function<void()>& f) {
      try {
        f();
        ADD_FAILURE() << "a damaged output was accepted";
      } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::output) << e.what();
        EXPECT_NE(std::string(e.what()).find(expected[i]), std::string::npos) << e.what();
      }
    };
    // A new file: never appears.
    expect_output_error([&] { patch_model(m, spec, dir / "new.tflite"); });
    EXPECT_TRUE(called);
    EXPECT_FALSE(fs::exists(dir / "new.tflite"));
    EXPECT_FALSE(temporaries_in(dir));
    // In place: the input keeps its bytes.
    PatchOptions o;
    o.in_place = true;
    expect_output_error([&] { patch_model(m, spec, input, o); });
    EXPECT_EQ(read_file(input), original);
    EXPECT_FALSE(temporaries_in(dir));
  }
  // Without the hook the same patch goes through.
  {
    const Model m = Model::open(dir / "in.tflite");
    patch_model(m, spec, dir / "new.tflite");
  }
  EXPECT_EQ(values_of<float>(Model::open(dir / "new.tflite").subgraph(0).tensor(2).data()), (std::vector<float>{4, 3, 2, 1}));
  fs::remove_all(dir);
}

TEST(patch_test, cli_exit_codes) {
  const auto dir = scratch();
  const std::string in = (dir / "in.tflite").string(), out = (dir / "out.tflite").string();
  write_file(in, rich_conv_model().finish());
  write_file(dir / "b.npy", npy_of({9, 8, 7, 6}));
  write_file(dir / "short.npy", npy_of({9, 8, 7}));
  const std::string bias = (dir / "b.npy").string(), short_bias = (dir / "short.npy").string();
  const auto expect = [](const CliRun& r, int status, const std::string& fragment) {
    EXPECT_EQ(r.status, status) << r.output;
    EXPECT_NE(r.output.find(fragment), std::string::npos) << "wanted: " << fragment << "\noutput: " << r.output;
  };
  expect(run_cli(fmt::format("patch {} -o {} --set conv/bias={}", in, out, bias)), 0, "wrote ");
  // 2: the request is wrong.
  expect(run_cli(fmt::format("patch {} -o {}", in, out)), 2, "nothing to do");
  expect(run_cli(fmt::format("patch {} --set conv/bias={}", in, bias)), 2, "-o OUT.tflite");
  expect(run_cli(fmt::format("patch {} -o {} --set conv/bias={} --no-such-option", in, out, bias)), 2, "no-such-option");
  expect(run_cli(fmt::format("patch {} -o {} --set conv/bias={}", in, out, short_bias)), 2, "[shape_mismatch]");
  expect(run_cli(fmt::format("patch {} -o {} --set conv/bias={}", in, in, bias)), 2, "[in_place_required]");
  expect(run_cli(fmt::format("patch {} -o {} --set-quant conv/bias=scale:-1", in, out)), 2, "[bad_quantization]");
  // 1: the model or a file is the problem.
  expect(run_cli(fmt::format("patch {} -o {} --set nope={}", in, out, bias)), 1, "[unknown_selector]");
  expect(run_cli(fmt::format("patch {} -o {} --set conv/bias={}", in, out, (dir / "missing.npy").string())), 1,
         "[bad_values_file]");
  write_file(dir / "unknown_field.tflite", model_with_an_unknown_field());
  expect(run_cli(fmt::format("patch {} -o {} --set conv/bias={}", (dir / "unknown_field.tflite").string(),
                             (dir / "u.tflite").string(), bias)),
         1, "[unsupported]");
  EXPECT_FALSE(fs::exists(dir / "u.tflite"));
  const std::vector<std::byte> junk(64, std::byte{0x5a});
  write_file(dir / "junk.tflite", junk);
  const CliRun bad = run_cli(fmt::format("patch {} -o {} --set conv/bias={}", (dir / "junk.tflite").string(), out, bias));
  EXPECT_EQ(bad.status, 1) << bad.output;
  fs::remove_all(dir);
}

}  // namespace
