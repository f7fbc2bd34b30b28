// litelens::diff_models: layer matching and value metrics.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

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

}  // namespace
