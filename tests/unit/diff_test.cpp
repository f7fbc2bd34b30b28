// litelens::diff_models: layer matching and value metrics.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "litelens/diff.h"
#include "litelens/patch.h"
#include "model_builder.h"
#include "test_arrays.h"

namespace {

using namespace litelens;
using litelens::testing::array_of;
using litelens::testing::ModelBuilder;
using litelens::testing::to_bytes;

const std::vector<float> kWeights = {0.5f, -0.25f, 1.0f, 0.75f, -1.0f, 0.125f, 0.3f, -0.6f};

// input [1,4] -> FULLY_CONNECTED (weights [2,4], bias [2]) -> ADD (a constant) -> output.
// int8: weights quantized per channel (scale max|w|/127), the same names unless `suffix`.
ModelBuilder fc_model(bool int8, const std::string& suffix = "", bool unnamed = false) {
  ModelBuilder b;
  const int sg = b.add_subgraph();
  b.add_tensor(sg, "input", {1, 4});
  if (int8) {
    const float s0 = 1.0f / 127, s1 = 1.0f / 127;
    std::vector<std::int8_t> q;
    for (std::size_t i = 0; i < kWeights.size(); ++i)
      q.push_back(static_cast<std::int8_t>(std::lround(kWeights[i] / (i < 4 ? s0 : s1))));
    b.add_constant(sg, "fc/weights" + suffix, {2, 4}, tflite::TensorType_INT8, to_bytes(q));
    auto qp = std::make_unique<tflite::QuantizationParametersT>();
    qp->scale = {s0, s1};
    qp->zero_point = {0, 0};
    b.tensor(sg, 1).quantization = std::move(qp);
  } else {
    b.add_constant(sg, "fc/weights", {2, 4}, tflite::TensorType_FLOAT32, to_bytes(kWeights));
  }
  b.add_constant(sg, "fc/bias", {2}, tflite::TensorType_FLOAT32, to_bytes(std::vector<float>{0.1f, 0.2f}));
  b.add_tensor(sg, unnamed ? "" : "model/fc/MatMul;model/fc/BiasAdd" + suffix, {1, 2});
  b.add_constant(sg, "offset", {2}, tflite::TensorType_FLOAT32, to_bytes(std::vector<float>{1, 1}));
  b.add_tensor(sg, unnamed ? "" : "model/add" + suffix, {1, 2});
  const int fc = b.add_opcode(tflite::BuiltinOperator_FULLY_CONNECTED);
  const int add = b.add_opcode(tflite::BuiltinOperator_ADD);
  b.add_operator(sg, fc, {0, 1, 2}, {3});
  b.add_operator(sg, add, {3, 4}, {5});
  b.subgraph(sg).inputs = {0};
  b.subgraph(sg).outputs = {5};
  return b;
}

TEST(diff_test, a_model_equals_itself) {
  const auto bytes = fc_model(false).finish();
  const Model a = Model::from_bytes(bytes), b = Model::from_bytes(bytes);
  const ModelDiff d = diff_models(a, b);
  ASSERT_EQ(d.layers.size(), 2u);
  EXPECT_TRUE(d.only_in_a.empty() && d.only_in_b.empty());
  for (const auto& l : d.layers) {
    EXPECT_EQ(l.matched_by, "name");
    EXPECT_TRUE(l.identical()) << l.a.key;
  }
  EXPECT_EQ(d.layers[0].params.size(), 2u);  // weights and bias; the input is fed at run time
}

// Values that cannot be decoded (a blockwise layout dequantization refuses) still compare as
// stored bytes: a model equals itself.
TEST(diff_test, undecodable_values_compare_as_stored_bytes) {
  ModelBuilder b;
  const int sg = b.add_subgraph("main");
  b.add_tensor(sg, "input", {1, 4});
  std::vector<std::uint8_t> values(24, 7);
  b.add_constant(sg, "w", {2, 3, 4}, tflite::TensorType_INT8, values);
  b.add_constant(sg, "scales", {12}, tflite::TensorType_FLOAT32, to_bytes(std::vector<float>(12, 0.5f)));
  b.add_tensor(sg, "output", {1, 2});
  auto q = std::make_unique<tflite::QuantizationParametersT>();
  tflite::BlockwiseQuantizationT bq;
  bq.scales = 2;
  bq.zero_points = -1;
  bq.block_size = 2;
  q->details.Set(std::move(bq));
  b.tensor(sg, 1).quantization = std::move(q);
  b.add_operator(sg, b.add_opcode(tflite::BuiltinOperator_FULLY_CONNECTED), {0, 1, -1}, {3});
  const auto bytes = b.finish();
  const Model a = Model::from_bytes(bytes), c = Model::from_bytes(bytes);
  ASSERT_EQ(a.warnings().size(), 1u);
  EXPECT_EQ(a.warnings()[0].code, "blockwise_layout");
  const ModelDiff d = diff_models(a, c);
  ASSERT_EQ(d.layers.size(), 1u);
  const auto& weights = d.layers[0].params.at(0);
  EXPECT_FALSE(weights.values.has_value());
  EXPECT_EQ(weights.bytes_equal, std::optional<bool>(true));
  EXPECT_TRUE(d.layers[0].identical());
  values[5] = 8;
  b.buffer(1).data = values;
  const Model e = Model::from_bytes(b.finish());
  EXPECT_FALSE(diff_models(a, e).layers[0].identical());
}

TEST(diff_test, float_against_int8) {
  const auto fa = fc_model(false).finish(), fb = fc_model(true).finish();
  const Model a = Model::from_bytes(fa), b = Model::from_bytes(fb);
  const ModelDiff d = diff_models(a, b);
  ASSERT_EQ(d.layers.size(), 2u);
  const ParamDiff& w = d.layers[0].params[0];
  EXPECT_EQ(w.role, "weights");
  EXPECT_TRUE(w.dtype_changed);
  EXPECT_TRUE(w.quantization_changed);
  EXPECT_FALSE(w.shape_changed);
  ASSERT_TRUE(w.values);
  EXPECT_EQ(w.values->count, 8u);
  EXPECT_GT(w.values->max_abs_diff, 0);
  EXPECT_LE(w.values->max_abs_diff, 0.5 / 127 + 1e-7);  // half a quantization step
  EXPECT_GT(w.values->cosine, 0.9999);
  EXPECT_LT(w.values->rel_error, 0.01);
  EXPECT_FALSE(w.identical());
  EXPECT_TRUE(d.layers[0].params[1].identical());  // the bias
  EXPECT_TRUE(d.layers[1].identical());
}

// Integers without quantization compare exactly: as float32, 2^24 + 1 and 2^24 would be equal.
TEST(diff_test, integers_compare_exactly) {
  const auto model_with = [](std::int32_t first) {
    ModelBuilder b;
    const int sg = b.add_subgraph();
    b.add_tensor(sg, "x", {2}, tflite::TensorType_INT32);
    b.add_constant(sg, "ids", {2}, tflite::TensorType_INT32, to_bytes(std::vector<std::int32_t>{first, 1}));
    b.add_tensor(sg, "sum", {2}, tflite::TensorType_INT32);
    b.add_operator(sg, b.add_opcode(tflite::BuiltinOperator_ADD), {0, 1}, {2});
    return b.finish();
  };
  const auto fa = model_with(16777217), fb = model_with(16777216);
  const Model a = Model::from_bytes(fa), b = Model::from_bytes(fb);
  const ModelDiff d = diff_models(a, b);
  ASSERT_EQ(d.layers.size(), 1u);
  ASSERT_EQ(d.layers[0].params.size(), 1u);  // the constant; x is fed at run time
  const ParamDiff& y = d.layers[0].params[0];
  EXPECT_EQ(y.role, "y");
  ASSERT_TRUE(y.values) << y.note;
  EXPECT_EQ(y.values->max_abs_diff, 1.0);
  EXPECT_FALSE(y.identical());
}

TEST(diff_test, names_are_normalised_then_positions_used) {
  const auto fa = fc_model(false).finish();
  const auto fb = fc_model(true, "_int8").finish();
  const Model a = Model::from_bytes(fa), b = Model::from_bytes(fb);
  const ModelDiff d = diff_models(a, b);
  ASSERT_EQ(d.layers.size(), 2u);
  EXPECT_EQ(d.layers[0].matched_by, "normalized_name");
  EXPECT_EQ(d.layers[1].matched_by, "normalized_name");
  const auto fc = fc_model(true, "", true).finish();
  const Model c = Model::from_bytes(fc);
  const ModelDiff p = diff_models(a, c);
  ASSERT_EQ(p.layers.size(), 2u);
  EXPECT_EQ(p.layers[0].matched_by, "position");
  EXPECT_EQ(p.layers[0].b.op, "FULLY_CONNECTED");
  EXPECT_EQ(p.layers[1].b.op, "ADD");
  EXPECT_EQ(normalize_layer_name("model/fc/BiasAdd_int8;model/fc/MatMul"), "model/fc/BiasAdd;model/fc/MatMul");
  EXPECT_EQ(normalize_layer_name("b;a/dequantize;a"), "a;b");
  EXPECT_EQ(layer_name_stem("model/conv/Conv2D2;model/conv/ReadVariableOp11"), "model/conv/Conv2D;model/conv/ReadVariableOp");
  EXPECT_EQ(layer_name_stem("model/conv2d_1/Conv2D"), "model/conv2d_1/Conv2D");
  EXPECT_EQ(layer_name_stem("StatefulPartitionedCall:01"), layer_name_stem("StatefulPartitionedCall:0"));
}

TEST(diff_test, unmatched_layers_are_listed) {
  ModelBuilder big = fc_model(false);
  big.add_tensor(0, "extra/out", {1, 2});
  big.add_constant(0, "extra/c", {2}, tflite::TensorType_FLOAT32, to_bytes(std::vector<float>{2, 2}));
  const int mul = big.add_opcode(tflite::BuiltinOperator_MUL);
  big.add_operator(0, mul, {5, 7}, {6});
  const auto fa = fc_model(false).finish(), fb = big.finish();
  const Model a = Model::from_bytes(fa), b = Model::from_bytes(fb);
  const ModelDiff d = diff_models(a, b);
  EXPECT_EQ(d.layers.size(), 2u);
  ASSERT_EQ(d.only_in_b.size(), 1u);
  EXPECT_EQ(d.only_in_b[0].op, "MUL");
  EXPECT_TRUE(d.only_in_a.empty());
}

TEST(diff_test, a_patch_shows_up_as_one_changed_parameter) {
  const auto fa = fc_model(false).finish();
  const Model a = Model::from_bytes(fa);
  ValueUpdate u;
  u.selector = "fc/bias";
  u.values = array_of(DType::float32, {2}, std::vector<float>{0.1f, 0.7f});
  const auto fb = patch_to_memory(a, {{u}});
  const Model b = Model::from_bytes(fb);
  const ModelDiff d = diff_models(a, b);
  int changed = 0;
  for (const auto& l : d.layers)
    for (const auto& p : l.params)
      if (!p.identical()) {
        ++changed;
        EXPECT_EQ(p.role, "bias");
        EXPECT_EQ(p.values->differing, 1u);
        EXPECT_NEAR(p.values->max_abs_diff, 0.5, 1e-6);
      }
  EXPECT_EQ(changed, 1);
}

TEST(diff_test, value_metrics) {
  const auto f = [](std::vector<float> v) { return array_of(DType::float32, {static_cast<std::int64_t>(v.size())}, v); };
  auto c = compare_values(f({1, 0}), f({0, 1}));
  EXPECT_DOUBLE_EQ(c.max_abs_diff, 1);
  EXPECT_DOUBLE_EQ(c.rel_error, std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(c.cosine, 0);
  EXPECT_EQ(c.differing, 2u);
  c = compare_values(f({3, 4}), f({6, 8}));
  EXPECT_DOUBLE_EQ(c.cosine, 1);
  EXPECT_DOUBLE_EQ(c.rel_error, 1);
  c = compare_values(f({0, 0}), f({0, 0}));
  EXPECT_DOUBLE_EQ(c.cosine, 1);
  EXPECT_DOUBLE_EQ(c.rel_error, 0);
  c = compare_values(f({0, 0}), f({0, 1}));
  EXPECT_TRUE(std::isinf(c.rel_error));
  EXPECT_DOUBLE_EQ(c.cosine, 0);
  c = compare_values(f({std::nanf(""), 1, std::nanf("")}), f({std::nanf(""), 1, 2}));
  EXPECT_EQ(c.nan_mismatch, 1u);
  EXPECT_EQ(c.differing, 1u);
  EXPECT_DOUBLE_EQ(c.max_abs_diff, 0);
  // Integers and halves are compared as numbers.
  const auto ints = array_of(DType::int32, {2}, std::vector<std::int32_t>{3, 4});
  EXPECT_DOUBLE_EQ(compare_values(ints, f({3, 4})).max_abs_diff, 0);
  EXPECT_THROW(compare_values(f({1}), f({1, 2})), std::invalid_argument);
}

TEST(diff_test, summary_counts_each_kind_of_change) {
  const auto fa = fc_model(false).finish(), fb = fc_model(true).finish();
  const Model a = Model::from_bytes(fa), b = Model::from_bytes(fb);
  const DiffSummary s = summarize(diff_models(a, b));
  EXPECT_EQ(s.matched_layers, 2u);
  EXPECT_EQ(s.matched_by.at("name"), 2u);
  EXPECT_EQ(s.params, 3u);  // weights, bias, the ADD's constant
  EXPECT_EQ(s.identical_params, 2u);
  EXPECT_EQ(s.values_changed, 1u);  // the int8 weights dequantize to other values
  EXPECT_EQ(s.dtype_changed, 1u);
  EXPECT_EQ(s.quantization_changed, 1u);
  EXPECT_EQ(s.shape_changed, 0u);
}

// fc_model with the ADD's constant [2] replaced by a broadcast one of shape [1].
std::vector<std::byte> broadcast_offset_model() {
  ModelBuilder b = fc_model(false);
  b.tensor(0, 4).shape = {1};
  b.buffer(static_cast<int>(b.tensor(0, 4).buffer)).data = to_bytes(std::vector<float>{1});
  return b.finish();
}

struct CliRun {
  int status = -1;
  std::string out;
};

CliRun run_cli(const std::string& args) {
  CliRun r;
  FILE* p = ::popen((std::string(LITELENS_CLI_PATH) + " " + args + " 2>/dev/null").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

void write_file(const std::filesystem::path& path, const std::vector<std::byte>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

TEST(diff_test, a_shape_change_in_the_library_the_text_and_the_json) {
  const auto fa = fc_model(false).finish(), fb = broadcast_offset_model();
  const Model a = Model::from_bytes(fa), b = Model::from_bytes(fb);
  const ModelDiff d = diff_models(a, b);
  ASSERT_EQ(d.layers.size(), 2u);
  ASSERT_EQ(d.layers[1].params.size(), 1u);
  const ParamDiff& p = d.layers[1].params[0];
  EXPECT_TRUE(p.shape_changed);
  EXPECT_FALSE(p.dtype_changed);
  EXPECT_FALSE(p.values.has_value());  // values are compared only when the shapes agree
  EXPECT_FALSE(p.identical());
  ASSERT_TRUE(p.a && p.b);
  EXPECT_EQ(p.a->shape, (std::vector<std::int32_t>{2}));
  EXPECT_EQ(p.b->shape, (std::vector<std::int32_t>{1}));
  const DiffSummary s = summarize(d);
  EXPECT_EQ(s.shape_changed, 1u);
  EXPECT_EQ(s.identical_params, 2u);
  EXPECT_EQ(s.values_changed, 0u);

  const auto dir = std::filesystem::temp_directory_path() / "litelens-tests" / ("diff-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  write_file(dir / "a.tflite", fa);
  write_file(dir / "b.tflite", fb);
  const std::string files = (dir / "a.tflite").string() + " " + (dir / "b.tflite").string();
  const CliRun text = run_cli("diff " + files);
  ASSERT_EQ(text.status, 0) << text.out;
  EXPECT_NE(text.out.find("[2] float32 -> [1] float32  changed: shape"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("3 parameters: 2 identical, 0 with other values, 1 shape, 0 dtype, 0 quantization changes"),
            std::string::npos)
      << text.out;
  const CliRun js = run_cli("diff " + files + " --json");
  ASSERT_EQ(js.status, 0) << js.out;
  const auto doc = nlohmann::json::parse(js.out);
  const auto& summary = doc.at("summary");
  EXPECT_EQ(summary.at("params"), 3);
  EXPECT_EQ(summary.at("identical_params"), 2);
  EXPECT_EQ(summary.at("shape_changed"), 1);
  EXPECT_EQ(summary.at("dtype_changed"), 0);
  EXPECT_EQ(summary.at("quantization_changed"), 0);
  EXPECT_EQ(summary.at("values_changed"), 0);
  EXPECT_EQ(summary.at("matched_by").at("name"), 2);
  int shape_changes = 0;
  for (const auto& layer : doc.at("layers"))
    for (const auto& param : layer.at("params"))
      if (param.at("shape_changed").get<bool>()) {
        ++shape_changes;
        EXPECT_EQ(layer.at("a").at("op"), "ADD");
        EXPECT_EQ(param.at("identical"), false);
        EXPECT_EQ(param.at("a").at("shape"), nlohmann::json::array({2}));
        EXPECT_EQ(param.at("b").at("shape"), nlohmann::json::array({1}));
        EXPECT_TRUE(param.at("values").is_null());
      }
  EXPECT_EQ(shape_changes, 1);
  // The JSON summary has the text summary's figures for the float and int8 twins too.
  write_file(dir / "q.tflite", fc_model(true).finish());
  const auto q = nlohmann::json::parse(run_cli("diff " + (dir / "a.tflite").string() + " " + (dir / "q.tflite").string() + " --json").out);
  EXPECT_EQ(q.at("summary").at("values_changed"), 1);
  EXPECT_EQ(q.at("summary").at("dtype_changed"), 1);
  EXPECT_EQ(q.at("summary").at("quantization_changed"), 1);
  EXPECT_NE(run_cli("diff " + (dir / "a.tflite").string() + " " + (dir / "q.tflite").string())
                .out.find("3 parameters: 2 identical, 1 with other values, 0 shape, 1 dtype, 1 quantization changes"),
            std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
