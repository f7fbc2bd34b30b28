// The litelens command: exit codes, the one-line error, and the JSON contract of info/ops/tensors.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <fstream>
#include <cstdio>
#include <flatbuffers/flexbuffers.h>
#include <nlohmann/json.hpp>

#include "litelens/version.h"
#include "model_builder.h"
#include "model_zoo.h"

namespace {

struct CliRun {
  int status = -1;
  std::string out;
  std::string err;
};

CliRun run(const std::string& args) {
  const std::string err_path = testing::TempDir() + "cli_test_stderr_" + std::to_string(::getpid()) + ".txt";
  const std::string command = std::string(LITELENS_CLI_PATH) + " " + args + " 2>" + err_path;
  CliRun r;
  FILE* pipe = popen(command.c_str(), "r");
  std::array<char, 4096> buf{};
  std::size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) r.out.append(buf.data(), n);
  const int raw = pclose(pipe);
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
  if (FILE* f = fopen(err_path.c_str(), "r")) {
    while ((n = fread(buf.data(), 1, buf.size(), f)) > 0) r.err.append(buf.data(), n);
    fclose(f);
  }
  return r;
}

std::string conv_path() {
  static const std::string path =
      litelens::testing::write_temp_file("cli_test_conv.tflite", litelens::testing::conv_model().finish());
  return path;
}

TEST(cli_test, tensors_json_follows_the_contract) {
  const CliRun r = run("tensors --json " + conv_path());
  ASSERT_EQ(r.status, 0) << r.err;
  const auto doc = nlohmann::json::parse(r.out);
  const auto& t = doc["subgraphs"][0]["tensors"][1];
  for (const char* key : {"index", "name", "shape", "shape_signature", "dtype", "buffer", "nbytes", "is_variable",
                          "is_constant", "quantization", "sparsity"})
    EXPECT_TRUE(t.contains(key)) << key;
  EXPECT_EQ(t["name"], "conv/filter");
  EXPECT_EQ(t["dtype"], "float32");
  EXPECT_EQ(t["nbytes"], 432);
  EXPECT_EQ(t["is_constant"], true);
  EXPECT_TRUE(t["quantization"].is_null());
  EXPECT_EQ(doc["subgraphs"][0]["tensors"][0]["nbytes"], 0);
}

TEST(cli_test, ops_json_follows_the_contract) {
  const CliRun r = run("ops --json " + conv_path());
  ASSERT_EQ(r.status, 0) << r.err;
  const auto op = nlohmann::json::parse(r.out)["subgraphs"][0]["operators"][0];
  EXPECT_EQ(op["op"], "CONV_2D");
  EXPECT_TRUE(op["custom_code"].is_null());
  EXPECT_EQ(op["version"], 1);
  EXPECT_EQ(op["inputs"], nlohmann::json({0, 1, 2}));
  EXPECT_EQ(op["options"]["padding"], "VALID");
  EXPECT_EQ(op["options"]["fused_activation_function"], "RELU6");
}

TEST(cli_test, info_shows_histogram_and_parameters) {
  const CliRun r = run("info --json " + conv_path());
  ASSERT_EQ(r.status, 0) << r.err;
  const auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["op_histogram"]["CONV_2D"], 1);
  EXPECT_EQ(doc["parameters"], 112);
  EXPECT_EQ(doc["by_dtype"]["float32"]["bytes"], 448);
  const CliRun text = run("info " + conv_path());
  EXPECT_EQ(text.status, 0);
  EXPECT_NE(text.out.find("CONV_2D"), std::string::npos);
}

TEST(cli_test, a_bad_model_exits_1_with_one_line_naming_the_file) {
  auto bytes = litelens::testing::conv_model().finish();
  bytes.resize(40);
  const auto path = litelens::testing::write_temp_file("cli_test_truncated.tflite", bytes);
  const CliRun r = run("info " + path);
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(r.out.empty());
  EXPECT_NE(r.err.find(path), std::string::npos);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(cli_test, bad_usage_exits_2) {
  EXPECT_EQ(run("").status, 2);
  EXPECT_EQ(run("info").status, 2);
  EXPECT_EQ(run("frobnicate " + conv_path()).status, 2);
  const CliRun r = run("tensors --subgraph 5 " + conv_path());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--subgraph 5"), std::string::npos);
  EXPECT_EQ(run("--help").status, 0);
}

TEST(cli_test, an_unknown_command_gets_the_closest_names) {
  const CliRun typo = run("lyers " + conv_path());
  EXPECT_EQ(typo.status, 2);
  EXPECT_EQ(typo.err, "litelens: unknown command 'lyers'; did you mean 'layers'?\n");
  const CliRun far = run("frobnicate " + conv_path());
  EXPECT_EQ(far.status, 2);
  EXPECT_EQ(far.err, "litelens: unknown command 'frobnicate'; the commands are info, ops, tensors, files, layers, extract, "
                     "patch, diff\n");
}

TEST(cli_test, version_comes_from_the_version_file) {
  std::ifstream in(std::string(LITELENS_SOURCE_DIR) + "/VERSION");
  std::string version;
  std::getline(in, version);
  ASSERT_FALSE(version.empty());
  EXPECT_EQ(run("--version").out, "litelens " + version + "\n");
  EXPECT_EQ(litelens::version(), version);
}

std::string zoo_path(const std::string& name, const litelens::testing::ModelBuilder& b) {
  return litelens::testing::write_temp_file("cli_test_" + name + "_" + std::to_string(::getpid()) + ".tflite",
                                            b.finish());
}

// control_flow_model(): 0 main (WHILE, IF, CALL_ONCE), 1 cond (LESS), 2 body (ADD), 3 init (no ops).
TEST(cli_test, subgraph_narrows_the_output) {
  const std::string path = zoo_path("control_flow", litelens::hardening::control_flow_model());
  const CliRun tensors = run("tensors --json --subgraph 2 " + path);
  ASSERT_EQ(tensors.status, 0) << tensors.err;
  const auto t = nlohmann::json::parse(tensors.out)["subgraphs"];
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0]["index"], 2);
  const CliRun ops = run("ops --json --subgraph 1 " + path);
  ASSERT_EQ(ops.status, 0) << ops.err;
  const auto o = nlohmann::json::parse(ops.out)["subgraphs"];
  ASSERT_EQ(o.size(), 1u);
  EXPECT_EQ(o[0]["index"], 1);
  ASSERT_EQ(o[0]["operators"].size(), 1u);
  EXPECT_EQ(o[0]["operators"][0]["op"], "LESS");
  const CliRun ops_text = run("ops --subgraph 1 " + path);
  ASSERT_EQ(ops_text.status, 0);
  EXPECT_NE(ops_text.out.find("LESS"), std::string::npos) << ops_text.out;
  EXPECT_EQ(ops_text.out.find("WHILE"), std::string::npos) << ops_text.out;
  const CliRun info = run("info --json --subgraph 2 " + path);
  ASSERT_EQ(info.status, 0) << info.err;
  const auto doc = nlohmann::json::parse(info.out);
  ASSERT_EQ(doc["subgraphs"].size(), 1u);
  EXPECT_EQ(doc["subgraphs"][0]["name"], "body");
  EXPECT_EQ(doc["op_histogram"], nlohmann::json({{"ADD", 1}}));
  const CliRun info_text = run("info --subgraph 0 " + path);
  ASSERT_EQ(info_text.status, 0);
  EXPECT_NE(info_text.out.find("WHILE"), std::string::npos);
  EXPECT_EQ(info_text.out.find("LESS"), std::string::npos) << info_text.out;
  const CliRun tensors_text = run("tensors --subgraph 3 " + path);
  ASSERT_EQ(tensors_text.status, 0);
  EXPECT_NE(tensors_text.out.find("subgraph 3 init"), std::string::npos) << tensors_text.out;
  EXPECT_EQ(tensors_text.out.find("subgraph 0"), std::string::npos) << tensors_text.out;
}

TEST(cli_test, info_shows_the_header_description_signatures_and_metadata_names) {
  const std::string path = zoo_path("signatures", litelens::hardening::signature_model());
  const CliRun text = run("info " + path);
  ASSERT_EQ(text.status, 0) << text.err;
  for (const char* expected : {"format       TFL3, schema version 3", "description  litelens test model",
                               "serving_default (subgraph 0): inputs image=#0 -> outputs features=#3",
                               "features_only (subgraph 0): inputs x=#0", "min_runtime_version", "litelens_notes"})
    EXPECT_NE(text.out.find(expected), std::string::npos) << expected << "\n" << text.out;
  const CliRun json = run("info --json " + path);
  ASSERT_EQ(json.status, 0) << json.err;
  const auto doc = nlohmann::json::parse(json.out);
  EXPECT_EQ(doc["identifier"], "TFL3");
  EXPECT_EQ(doc["description"], "litelens test model");
  ASSERT_EQ(doc["signatures"].size(), 2u);
  EXPECT_EQ(doc["signatures"][0]["key"], "serving_default");
  EXPECT_EQ(doc["signatures"][0]["inputs"], nlohmann::json::parse(R"([{"name":"image","tensor":0}])"));
  EXPECT_EQ(doc["signatures"][0]["outputs"], nlohmann::json::parse(R"([{"name":"features","tensor":3}])"));
}

TEST(cli_test, tensors_report_values_kept_in_external_files) {
  const std::string path = zoo_path("odd", litelens::hardening::odd_model());
  const CliRun json = run("tensors --json " + path);
  ASSERT_EQ(json.status, 0) << json.err;
  const auto t = nlohmann::json::parse(json.out)["subgraphs"][0]["tensors"][5];
  EXPECT_EQ(t["name"], "external");
  EXPECT_EQ(t["is_constant"], false);
  EXPECT_EQ(t["external_buffer"], 0x80000000u);
  EXPECT_EQ(t["external_data"], nlohmann::json::parse(R"({"id":2147483648,"group":0,"group_name":"weights.bin",
                                                          "offset":64,"length":16,"packing":""})"));
  const CliRun text = run("tensors " + path);
  ASSERT_EQ(text.status, 0);
  EXPECT_NE(text.out.find("external:weights.bin@64+16"), std::string::npos) << text.out;
  const auto info = nlohmann::json::parse(run("info --json " + path).out);
  EXPECT_EQ(info["external_tensors"], 1);
  EXPECT_EQ(info["external_bytes"], 16);
}

// Every known TensorType by its lowercase schema name, and an unknown code as unknown(N).
TEST(cli_test, tensors_name_every_dtype) {
  const std::vector<std::string> names = {"float32", "float16", "int32", "uint8", "int64", "string",
                                          "bool", "int16", "complex64", "int8", "float64", "complex128",
                                          "uint64", "resource", "variant", "uint32", "uint16", "int4",
                                          "bfloat16", "int2", "uint4", "float8_e4m3fn", "float8_e5m2"};
  litelens::testing::ModelBuilder b;
  const int sg = b.add_subgraph("main");
  for (std::size_t code = 0; code <= names.size(); ++code)
    b.add_tensor(sg, "t" + std::to_string(code), {2}, static_cast<tflite::TensorType>(code));
  const CliRun r = run("tensors --json " + zoo_path("dtypes", b));
  ASSERT_EQ(r.status, 0) << r.err;
  const auto tensors = nlohmann::json::parse(r.out)["subgraphs"][0]["tensors"];
  ASSERT_EQ(tensors.size(), names.size() + 1);
  for (std::size_t code = 0; code < names.size(); ++code) EXPECT_EQ(tensors[code]["dtype"], names[code]) << code;
  EXPECT_EQ(tensors[names.size()]["dtype"], "unknown(23)");
}

// Option vectors come out as lists, from both option unions (builtin_options_2 holds the StableHLO
// ops), with enums by name, inside vectors too.
TEST(cli_test, ops_decode_option_vectors_and_builtin_options_2) {
  using namespace tflite;
  litelens::testing::ModelBuilder b;
  const int sg = b.add_subgraph("main");
  b.add_tensor(sg, "x", {2, 3});
  b.add_tensor(sg, "y", {3, 2});
  ReshapeOptionsT reshape;
  reshape.new_shape = {3, -1};
  const int r = b.add_operator(sg, b.add_opcode(BuiltinOperator_RESHAPE), {0}, {1});
  b.op(sg, r).builtin_options.Set(std::move(reshape));
  StablehloConvolutionOptionsT conv;
  conv.window_strides = {1, 2};
  conv.padding = {0, 0, 1, 1};
  conv.feature_group_count = 3;
  conv.precision_config = {StablehloPrecisionConfig_HIGH, StablehloPrecisionConfig_HIGHEST};
  const int c = b.add_operator(sg, b.add_opcode(BuiltinOperator_STABLEHLO_CONVOLUTION), {0, 1}, {1});
  b.op(sg, c).builtin_options_2.Set(std::move(conv));
  StablehloCompareOptionsT compare;
  compare.comparison_direction = StablehloComparisonDirection_STABLEHLO_COMPARISON_DIRECTION_GE;
  compare.compare_type = StablehloComparisonType_STABLEHLO_COMPARISON_TYPE_FLOAT;
  const int k = b.add_operator(sg, b.add_opcode(BuiltinOperator_STABLEHLO_COMPARE), {0, 0}, {1});
  b.op(sg, k).builtin_options_2.Set(std::move(compare));
  const CliRun run_ops = run("ops --json " + zoo_path("options2", b));
  ASSERT_EQ(run_ops.status, 0) << run_ops.err;
  const auto ops = nlohmann::json::parse(run_ops.out)["subgraphs"][0]["operators"];
  EXPECT_EQ(ops[0]["options"]["new_shape"], nlohmann::json({3, -1}));
  EXPECT_EQ(ops[1]["op"], "STABLEHLO_CONVOLUTION");
  EXPECT_EQ(ops[1]["options"]["window_strides"], nlohmann::json({1, 2}));
  EXPECT_EQ(ops[1]["options"]["padding"], nlohmann::json({0, 0, 1, 1}));
  EXPECT_EQ(ops[1]["options"]["feature_group_count"], 3);
  EXPECT_EQ(ops[1]["options"]["precision_config"], nlohmann::json({"HIGH", "HIGHEST"}));
  EXPECT_EQ(ops[2]["options"]["comparison_direction"], "STABLEHLO_COMPARISON_DIRECTION_GE");
  EXPECT_EQ(ops[2]["options"]["compare_type"], "STABLEHLO_COMPARISON_TYPE_FLOAT");
}

TEST(cli_test, layers_and_extract) {
  const CliRun r = run("layers --json --op CONV_2D " + conv_path());
  ASSERT_EQ(r.status, 0) << r.err;
  const auto layer = nlohmann::json::parse(r.out)["layers"][0];
  EXPECT_EQ(layer["op"], "CONV_2D");
  EXPECT_EQ(layer["params"]["filter"]["layout"], "OHWI");
  EXPECT_EQ(layer["params"]["filter"]["shape"], nlohmann::json({4, 3, 3, 3}));
  EXPECT_EQ(layer["params"]["bias"]["first_values"], nlohmann::json({1, 2, 3, 4}));
  const CliRun none = run("layers --name no_such_layer " + conv_path());
  EXPECT_EQ(none.status, 1);
  EXPECT_NE(none.err.find("closest names: conv/output"), std::string::npos) << none.err;
  const std::string out = testing::TempDir() + "cli_test_export_" + std::to_string(::getpid()) + ".safetensors";
  const CliRun ex = run("extract " + conv_path() + " -o " + out);
  EXPECT_EQ(ex.status, 0) << ex.err;
  EXPECT_EQ(run("extract " + conv_path() + " -o " + out + " --layout caffe").status, 2);
}

TEST(cli_test, layers_text_shows_option_strings_that_are_not_utf8) {
  // Custom options whose strings hold bytes that are not UTF-8, inside a vector and a nested map:
  // `layers` printed such values with nlohmann's dump(), which throws on them (the CLI
  // corruption matrix: a random flip in a STABLEHLO_COMPOSITE's attributes).
  flexbuffers::Builder fbb;
  fbb.Map([&] {
    fbb.Vector("names", [&] {
      fbb.String("ok");
      fbb.String("\xff\xfe");
    });
    fbb.Map("nested", [&] { fbb.String("k", "\x80"); });
  });
  fbb.Finish();
  litelens::testing::ModelBuilder b;
  const int sg = b.add_subgraph("main");
  b.add_tensor(sg, "in", {4});
  b.add_tensor(sg, "out", {4});
  const int op = b.add_operator(sg, b.add_opcode(tflite::BuiltinOperator_CUSTOM, "Odd"), {0}, {1});
  b.op(sg, op).custom_options = fbb.GetBuffer();
  b.subgraph(sg).inputs = {0};
  b.subgraph(sg).outputs = {1};
  const std::string path = litelens::testing::write_temp_file("cli_test_not_utf8.tflite", b.finish());
  const CliRun text = run("layers " + path);
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("\xef\xbf\xbd"), std::string::npos) << text.out;  // U+FFFD
  const CliRun json = run("layers --json " + path);
  ASSERT_EQ(json.status, 0) << json.err;
  EXPECT_NO_THROW({
    const auto doc = nlohmann::json::parse(json.out);
    EXPECT_FALSE(doc.is_null());
  });
}

}  // namespace
