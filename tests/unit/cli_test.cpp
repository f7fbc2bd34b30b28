// The litelens command: exit codes, the one-line error, and the JSON contract of info/ops/tensors.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <flatbuffers/flexbuffers.h>
#include <nlohmann/json.hpp>

#include "model_builder.h"

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

TEST(cli_test, subgraph_narrows_the_output) {
  const CliRun r = run("tensors --json --subgraph 0 " + conv_path());
  ASSERT_EQ(r.status, 0);
  EXPECT_EQ(nlohmann::json::parse(r.out)["subgraphs"].size(), 1u);
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
  EXPECT_NO_THROW((void)nlohmann::json::parse(json.out));
}

}  // namespace
