// Layers, parameter resolution, decoding, layouts and exports on models built in the test.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "litelens/decode.h"
#include "litelens/export.h"
#include "litelens/layer.h"
#include "model_builder.h"
#include "model_zoo.h"

namespace litelens {
namespace {

using testing::conv_model;
using testing::ModelBuilder;
using testing::to_bytes;

template <class T>
std::vector<T> values_of(const Array& a) {
  std::vector<T> out(a.size());
  std::memcpy(out.data(), a.bytes().data(), a.bytes().size());
  return out;
}

std::vector<std::uint8_t> fp16_bytes(const std::vector<float>& values) {
  std::vector<std::uint8_t> out(values.size() * 2);
  narrow_to_float16(values, std::as_writable_bytes(std::span(out)));
  return out;
}

// conv_model() with its filter and bias stored as float16 behind DEQUANTIZE ops, as float16
// post-training quantization writes them.
ModelBuilder fp16_conv_model() {
  ModelBuilder b = conv_model();
  std::vector<float> filter(108);
  for (std::size_t i = 0; i < filter.size(); ++i) filter[i] = static_cast<float>(i) * 0.25f - 3.0f;
  const int f16 = b.add_constant(0, "filter_fp16", {4, 3, 3, 3}, tflite::TensorType_FLOAT16, fp16_bytes(filter));
  const int b16 = b.add_constant(0, "bias_fp16", {4}, tflite::TensorType_FLOAT16, fp16_bytes({1, 2, 3, 4}));
  const int f32 = b.add_tensor(0, "filter_dequantized", {4, 3, 3, 3});
  const int b32 = b.add_tensor(0, "bias_dequantized", {4});
  const int deq = b.add_opcode(tflite::BuiltinOperator_DEQUANTIZE);
  auto& ops = b.subgraph(0).operators;
  auto conv = std::move(ops[0]);
  ops.clear();
  b.add_operator(0, deq, {f16}, {f32});
  b.add_operator(0, deq, {b16}, {b32});
  conv->inputs = {0, f32, b32};
  ops.push_back(std::move(conv));
  return b;
}

TEST(layer_test, groups_a_conv_with_roles_layout_and_options) {
  const Model m = Model::from_bytes(conv_model().finish());
  const auto all = layers(m);
  ASSERT_EQ(all.size(), 1u);
  const Layer& l = all[0];
  EXPECT_EQ(l.key(), "sg0.op0.CONV_2D");
  EXPECT_EQ(l.op, "CONV_2D");
  EXPECT_EQ(l.name, "conv/output");
  EXPECT_EQ(l.options.find("padding")->as_string(), "VALID");
  ASSERT_EQ(l.params.size(), 3u);
  EXPECT_EQ(l.params[0].role, "input");
  EXPECT_TRUE(l.params[0].is_runtime());
  const Param* filter = l.param("filter");
  ASSERT_TRUE(filter);
  EXPECT_EQ(filter->stored_tensor, 1);
  EXPECT_TRUE(filter->via.empty());
  EXPECT_EQ(filter->layout, "OHWI");
  EXPECT_EQ(l.param("bias")->layout, "O");
  // Generic position names stay aliases of the roles (older export keys).
  EXPECT_EQ(l.param("input_1"), filter);
  EXPECT_EQ(l.param("input_2"), l.param("bias"));
  EXPECT_EQ(l.param("input_3"), nullptr);
  EXPECT_EQ(l.param("input_"), nullptr);
  EXPECT_EQ(l.param("input_1x"), nullptr);
  EXPECT_EQ(l.param("input_99999999999"), nullptr);
  const Array values = param_values(m, l, *filter, DecodeMode::stored);
  EXPECT_TRUE(values.is_borrowed());  // float32 constants are views of the file
  EXPECT_EQ(values.shape(), (std::vector<std::int64_t>{4, 3, 3, 3}));
  EXPECT_THROW(param_values(m, l, l.params[0], DecodeMode::stored), std::invalid_argument);
}

TEST(layer_test, follows_dequantize_back_to_the_float16_constant) {
  const Model m = Model::from_bytes(fp16_conv_model().finish());
  const auto convs = layers(m, {.ops = {"conv_2d"}});
  ASSERT_EQ(convs.size(), 1u);
  const Param* filter = convs[0].param("filter");
  ASSERT_TRUE(filter);
  EXPECT_EQ(filter->via, (std::vector<std::string>{"DEQUANTIZE"}));
  EXPECT_EQ(filter->via_ops, (std::vector<int>{0}));
  EXPECT_EQ(m.subgraph(0).tensor(filter->stored_tensor).name(), "filter_fp16");
  const Array stored = param_values(m, convs[0], *filter, DecodeMode::stored);
  EXPECT_EQ(stored.dtype(), DType::float16);
  const Array consumed = consumed_values(m, convs[0], *filter);
  EXPECT_EQ(consumed.dtype(), DType::float32);
  const auto v = values_of<float>(consumed);
  EXPECT_EQ(v[0], -3.0f);
  EXPECT_EQ(v[107], 107 * 0.25f - 3.0f);
  EXPECT_EQ(values_of<float>(consumed_values(m, convs[0], *convs[0].param("bias"))), (std::vector<float>{1, 2, 3, 4}));
}

TEST(layer_test, a_filter_fed_at_run_time_and_an_absent_bias) {
  ModelBuilder b = conv_model();
  b.op(0, 0).inputs = {0, 0, -1};  // filter is the graph input; no bias
  const Model m = Model::from_bytes(b.finish());
  const Layer l = layer(m, 0, 0);
  ASSERT_EQ(l.params.size(), 2u);
  EXPECT_TRUE(l.param("filter")->is_runtime());
  EXPECT_EQ(l.param("bias"), nullptr);
}

TEST(layer_test, selects_by_op_name_glob_substring_exact_and_index) {
  const Model m = Model::from_bytes(fp16_conv_model().finish());
  EXPECT_EQ(layers(m).size(), 3u);
  EXPECT_EQ(layers(m, {.ops = {"DEQUANTIZE"}}).size(), 2u);
  EXPECT_EQ(layers(m, {.ops = {"DEQUANTIZE", "CONV_2D"}}).size(), 3u);
  EXPECT_EQ(layers(m, {.name = "dequantized"}).size(), 3u);       // substring of outputs and param names
  EXPECT_EQ(layers(m, {.name = "bias_*"}).size(), 2u);            // glob on param names
  EXPECT_EQ(layers(m, {.name = "conv/output", .exact = true}).size(), 1u);
  EXPECT_EQ(layers(m, {.name = "conv/out", .exact = true}).size(), 0u);
  EXPECT_EQ(layers(m, {.name = "dequantized", .first = true}).size(), 1u);
  const auto by_index = layers(m, {.index = 2});
  ASSERT_EQ(by_index.size(), 1u);
  EXPECT_EQ(by_index[0].op, "CONV_2D");
  EXPECT_THROW(layers(m, {.index = 3}), std::out_of_range);
  const auto close = closest_layer_names(m, {.name = "conv/outptu"});
  ASSERT_FALSE(close.empty());
  EXPECT_EQ(close[0], "conv/output");
}

TEST(layer_test, converts_layouts_for_keras_and_torch) {
  const Model m = Model::from_bytes(conv_model().finish());
  const Layer l = layer(m, 0, 0);
  const Param& filter = *l.param("filter");
  const Array ohwi = param_values(m, l, filter, DecodeMode::stored);
  const Array hwio = to_layout(m, l, filter, ohwi, Framework::keras);
  const Array oihw = to_layout(m, l, filter, ohwi, Framework::torch);
  EXPECT_EQ(hwio.shape(), (std::vector<std::int64_t>{3, 3, 3, 4}));
  EXPECT_EQ(oihw.shape(), (std::vector<std::int64_t>{4, 3, 3, 3}));
  const auto src = values_of<float>(ohwi);
  const auto k = values_of<float>(hwio);
  const auto t = values_of<float>(oihw);
  for (int o = 0; o < 4; ++o)
    for (int h = 0; h < 3; ++h)
      for (int w = 0; w < 3; ++w)
        for (int i = 0; i < 3; ++i) {
          const float v = src[((o * 3 + h) * 3 + w) * 3 + i];
          EXPECT_EQ(k[((h * 3 + w) * 3 + i) * 4 + o], v);
          EXPECT_EQ(t[((o * 3 + i) * 3 + h) * 3 + w], v);
        }
  EXPECT_EQ(layout_conversion(m, l, filter, Framework::keras)->label, "HWIO");
  EXPECT_EQ(layout_conversion(m, l, filter, Framework::torch)->label, "OIHW");
}

TEST(layer_test, depthwise_filters_of_unusual_shape_keep_their_layout) {
  // Found by fuzz_layers: a depthwise filter whose leading extent is not 1 has no keras/torch
  // form; one with C*M = 0 must not divide by zero.
  for (const std::vector<std::int32_t>& shape : {std::vector<std::int32_t>{4, 3, 3, 3}, {1, 3, 3, 0}}) {
    ModelBuilder b;
    const int sg = b.add_subgraph();
    b.add_tensor(sg, "input", {1, 4, 4, 0});
    std::size_t n = 1;
    for (auto d : shape) n *= static_cast<std::size_t>(d);
    const int f = b.add_constant(sg, "dw/filter", shape, tflite::TensorType_FLOAT32,
                                 to_bytes(std::vector<float>(n, 1.0f)));
    b.add_tensor(sg, "dw/out", {1, 4, 4, shape[3]});
    b.add_operator(sg, b.add_opcode(tflite::BuiltinOperator_DEPTHWISE_CONV_2D), {0, f, -1}, {2});
    const Model m = Model::from_bytes(b.finish());
    const Layer l = layer(m, 0, 0);
    const Param& p = *l.param("filter");
    if (p.is_runtime()) {  // no bytes: the filter reads as fed at run time, its layout still converts
      EXPECT_EQ(layout_conversion(m, l, p, Framework::keras)->shape, (std::vector<std::int64_t>{3, 3, 1, 0}));
      continue;
    }
    const Array stored = param_values(m, l, p, DecodeMode::stored);
    for (Framework fw : {Framework::keras, Framework::torch}) {
      const Array out = to_layout(m, l, p, stored, fw);
      EXPECT_EQ(out.size(), stored.size());
      if (shape[0] != 1) {
        EXPECT_FALSE(layout_conversion(m, l, p, fw).has_value());
        EXPECT_EQ(out.shape(), stored.shape());
      }
    }
  }
}

TEST(layer_test, depthwise_keras_layout_splits_channels_and_multiplier) {
  ModelBuilder b;
  const int sg = b.add_subgraph();
  b.add_tensor(sg, "input", {1, 4, 4, 2});
  std::vector<float> filter(1 * 3 * 3 * 6);
  for (std::size_t i = 0; i < filter.size(); ++i) filter[i] = static_cast<float>(i);
  const int f = b.add_constant(sg, "dw/filter", {1, 3, 3, 6}, tflite::TensorType_FLOAT32, to_bytes(filter));
  b.add_tensor(sg, "dw/out", {1, 4, 4, 6});
  b.add_operator(sg, b.add_opcode(tflite::BuiltinOperator_DEPTHWISE_CONV_2D), {0, f, -1}, {2});
  const Model m = Model::from_bytes(b.finish());
  const Layer l = layer(m, 0, 0);
  const Param& p = *l.param("filter");
  EXPECT_EQ(p.layout, "1HWC");
  const Array stored = param_values(m, l, p, DecodeMode::stored);
  const Array keras = to_layout(m, l, p, stored, Framework::keras);
  EXPECT_EQ(keras.shape(), (std::vector<std::int64_t>{3, 3, 2, 3}));  // H, W, C=2, M=3
  const Array torch = to_layout(m, l, p, stored, Framework::torch);
  EXPECT_EQ(torch.shape(), (std::vector<std::int64_t>{6, 1, 3, 3}));
  const auto k = values_of<float>(keras);
  const auto t = values_of<float>(torch);
  for (int h = 0; h < 3; ++h)
    for (int w = 0; w < 3; ++w)
      for (int c = 0; c < 2; ++c)
        for (int mm = 0; mm < 3; ++mm) {
          const float v = filter[(h * 3 + w) * 6 + c * 3 + mm];
          EXPECT_EQ(k[((h * 3 + w) * 2 + c) * 3 + mm], v);
          EXPECT_EQ(t[((c * 3 + mm) * 3 + h) * 3 + w], v);
        }
}

TEST(layer_test, decodes_int4_and_dequantizes_per_channel) {
  ModelBuilder b;
  const int sg = b.add_subgraph();
  b.add_tensor(sg, "input", {1, 3});
  // int4 values {1,-2, 3,-4, 7,-8} packed low nibble first.
  const int w = b.add_constant(sg, "fc/weights", {3, 2}, tflite::TensorType_INT4, {0xE1, 0xC3, 0x87});
  auto q = std::make_unique<tflite::QuantizationParametersT>();
  q->scale = {0.5f, 0.25f, 2.0f};
  q->zero_point = {0, 0, 0};
  q->quantized_dimension = 0;
  b.tensor(sg, w).quantization = std::move(q);
  b.add_tensor(sg, "fc/out", {1, 3});
  b.add_operator(sg, b.add_opcode(tflite::BuiltinOperator_FULLY_CONNECTED), {0, w}, {2});
  const Model m = Model::from_bytes(b.finish());
  const Layer l = layer(m, 0, 0);
  const Param& p = *l.param("weights");
  EXPECT_EQ(p.layout, "OI");
  const Array stored = param_values(m, l, p, DecodeMode::stored);
  EXPECT_EQ(stored.dtype(), DType::int8);
  EXPECT_EQ(values_of<std::int8_t>(stored), (std::vector<std::int8_t>{1, -2, 3, -4, 7, -8}));
  const Array real = param_values(m, l, p, DecodeMode::dequantized);
  EXPECT_EQ(values_of<float>(real), (std::vector<float>{0.5f, -1.0f, 0.75f, -1.0f, 14.0f, -16.0f}));
  EXPECT_EQ(to_layout(m, l, p, real, Framework::keras).shape(), (std::vector<std::int64_t>{2, 3}));
}

TEST(layer_test, exports_npz_and_safetensors_with_a_manifest) {
  const Model m = Model::from_bytes(fp16_conv_model().finish());
  const auto items = export_items(layers(m));
  ASSERT_EQ(items.size(), 2u);  // DEQUANTIZE layers are exported through the conv
  EXPECT_EQ(items[0].key, "sg0.op2.CONV_2D/filter");
  EXPECT_EQ(items[1].key, "sg0.op2.CONV_2D/bias");

  ExportOptions options;
  options.format = ExportFormat::safetensors;
  const auto st = export_to_memory(m, items, options);
  std::uint64_t header_size = 0;
  std::memcpy(&header_size, st.data(), 8);
  const auto header = nlohmann::json::parse(std::string(reinterpret_cast<const char*>(st.data()) + 8, header_size));
  EXPECT_EQ(header["sg0.op2.CONV_2D/filter"]["dtype"], "F16");
  EXPECT_EQ(header["sg0.op2.CONV_2D/filter"]["data_offsets"][1], 216);
  const auto manifest = nlohmann::json::parse(header["__metadata__"]["manifest"].get<std::string>());
  EXPECT_EQ(manifest["arrays"]["sg0.op2.CONV_2D/filter"]["stored_dtype"], "float16");
  EXPECT_EQ(manifest["arrays"]["sg0.op2.CONV_2D/filter"]["via"][0], "DEQUANTIZE");
  EXPECT_EQ(st.size(), 8 + header_size + 216 + 8);

  options.format = ExportFormat::npz;
  options.mode = DecodeMode::dequantized;
  const auto npz = export_to_memory(m, items, options);
  const std::string text(reinterpret_cast<const char*>(npz.data()), npz.size());
  EXPECT_EQ(text.substr(0, 4), "PK\x03\x04");
  EXPECT_NE(text.find("sg0.op2.CONV_2D/filter.npy"), std::string::npos);
  EXPECT_NE(text.find("'descr': '<f4'"), std::string::npos);
  EXPECT_NE(text.find("manifest.json"), std::string::npos);

  options.format = ExportFormat::c_header;
  const auto header_text = export_to_memory(m, items, options);
  const std::string c(reinterpret_cast<const char*>(header_text.data()), header_text.size());
  EXPECT_NE(c.find("#define SG0_OP2_CONV_2D_FILTER_SIZE 108"), std::string::npos);
  EXPECT_NE(c.find("static const float sg0_op2_conv_2d_bias[4] LITELENS_ALIGNED(16) = {"), std::string::npos);
}


TEST(layer_test, string_constants_are_skipped_and_reported_not_fatal) {
  ModelBuilder b = conv_model();
  // A string table: count 2, offsets [16, 19, 22] from its start, then "abc" "def".
  std::vector<std::uint8_t> strings = to_bytes(std::vector<std::int32_t>{2, 16, 19, 22});
  for (char c : std::string("abcdef")) strings.push_back(static_cast<std::uint8_t>(c));
  const int keys = b.add_constant(0, "table/keys", {2}, tflite::TensorType_STRING, strings);
  const int found = b.add_tensor(0, "table/found", {2}, tflite::TensorType_INT32);
  b.add_operator(0, b.add_opcode(tflite::BuiltinOperator_HASHTABLE_FIND), {0, keys}, {found});
  const Model m = Model::from_bytes(b.finish());
  const auto items = export_items(layers(m));
  ASSERT_EQ(items.size(), 3u);

  const auto dir = std::filesystem::path(::testing::TempDir()) / ("string-export-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  for (const char* name : {"p.npz", "p.safetensors", "p.json", "p.h", "npy"}) {
    ExportOptions options;
    options.format = export_format_for_path(dir / name);
    const ExportReport report = export_arrays(m, items, dir / name, options);
    EXPECT_EQ(report.arrays, 2u) << name;
    ASSERT_EQ(report.skipped.size(), 1u) << name;
    EXPECT_EQ(report.skipped[0].first, "sg0.op1.HASHTABLE_FIND/keys");
    EXPECT_EQ(report.skipped[0].second, "string values have no array form");
  }
  ExportOptions options;
  options.format = ExportFormat::json;
  const auto text = export_to_memory(m, items, options);
  const auto doc = nlohmann::json::parse(std::string(reinterpret_cast<const char*>(text.data()), text.size()));
  EXPECT_EQ(doc["arrays"].size(), 2u);
  std::filesystem::remove_all(dir);
}

TEST(layer_test, npy_headers_too_long_for_version_1_use_version_2) {
  // A shape of rank 40,000 spells out a ~80 KB header: its length needs npy format 2.0's u32.
  ModelBuilder b;
  const int sg = b.add_subgraph();
  const int x = b.add_tensor(sg, "x", {1});
  const int w = b.add_constant(sg, "w", std::vector<std::int32_t>(40000, 1), tflite::TensorType_FLOAT32,
                               to_bytes(std::vector<float>{2.5f}));
  b.add_operator(sg, b.add_opcode(tflite::BuiltinOperator_ADD), {x, w}, {b.add_tensor(sg, "y", {1})});
  const Model m = Model::from_bytes(b.finish());
  ExportOptions options;
  options.format = ExportFormat::npz;
  const auto npz = export_to_memory(m, export_items(layers(m)), options);
  const std::string text(reinterpret_cast<const char*>(npz.data()), npz.size());
  const auto at = text.find("\x93NUMPY");
  ASSERT_NE(at, std::string::npos);
  EXPECT_EQ(text[at + 6], '\x02');
  std::uint32_t length = 0;
  std::memcpy(&length, text.data() + at + 8, 4);
  EXPECT_GT(length, 0xffffu);
  EXPECT_EQ((12 + length) % 64, 0u);  // data 64-byte aligned within the member
  EXPECT_EQ(text[at + 12 + length - 1], '\n');
  float value = 0;
  std::memcpy(&value, text.data() + at + 12 + length, 4);
  EXPECT_EQ(value, 2.5f);
}

TEST(layer_test, extra_per_channel_scales_are_ignored_as_the_runtime_does) {
  // Found by fuzz_layers: open accepts more scales than slices [extra_scales]; dequantizing reads
  // the first shape[axis] of them instead of refusing.
  ModelBuilder b;
  const int sg = b.add_subgraph();
  b.add_tensor(sg, "input", {1, 2});
  const int w = b.add_constant(sg, "fc/weights", {2, 2}, tflite::TensorType_INT8, {1, 2, 0xff, 4});
  auto q = std::make_unique<tflite::QuantizationParametersT>();
  q->scale = {0.5f, 2.0f, 7.0f, 9.0f, 11.0f};
  q->quantized_dimension = 0;
  b.tensor(sg, w).quantization = std::move(q);
  b.add_tensor(sg, "fc/out", {1, 2});
  b.add_operator(sg, b.add_opcode(tflite::BuiltinOperator_FULLY_CONNECTED), {0, w}, {2});
  const Model m = Model::from_bytes(b.finish());
  ASSERT_FALSE(m.warnings().empty());
  const Layer l = layer(m, 0, 0);
  const Array real = param_values(m, l, *l.param("weights"), DecodeMode::dequantized);
  EXPECT_EQ(values_of<float>(real), (std::vector<float>{0.5f, 1.0f, -2.0f, 8.0f}));
}

TEST(layer_test, sparse_tensors_whose_dense_form_is_a_bomb_are_refused_and_skipped) {
  // Found by the CLI matrix: a few stored bytes declared a 147 MB dense weight, which diff and
  // patch then held several times over. Over 64 MiB and over 4096x its stored values, the dense
  // form is refused; layers, diff and exports carry on without it.
  ModelBuilder b = litelens::hardening::sparse_model();
  b.tensor(0, 3).shape = {3, 8'000'000};  // the CSR weight: 12 stored bytes, 96 MB dense
  b.op(0, 0).inputs = {0, 1, -1};
  b.add_operator(0, b.add_opcode(tflite::BuiltinOperator_FULLY_CONNECTED), {0, 3, -1}, {2});
  const Model m = Model::from_bytes(b.finish());
  const Tensor t = m.subgraph(0).tensor(3);
  const auto refusal = densify_refusal(t);
  ASSERT_TRUE(refusal.has_value());
  EXPECT_NE(refusal->find("decompression bomb"), std::string::npos);
  EXPECT_THROW((void)decode(m, t), std::invalid_argument);
  EXPECT_FALSE(densify_refusal(m.subgraph(0).tensor(1)).has_value());  // the block-sparse one: small
  const auto items = export_items(layers(m));
  ASSERT_EQ(items.size(), 2u);
  const auto dir = std::filesystem::path(::testing::TempDir()) / ("bomb-export-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  ExportOptions options;
  options.format = ExportFormat::npz;
  const ExportReport report = export_arrays(m, items, dir / "p.npz", options);
  EXPECT_EQ(report.arrays, 1u);
  ASSERT_EQ(report.skipped.size(), 1u);
  EXPECT_EQ(report.skipped[0].first, "sg0.op1.FULLY_CONNECTED/weights");
  EXPECT_NE(report.skipped[0].second.find("decompression bomb"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace litelens
