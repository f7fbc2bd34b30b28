// Every tolerated oddity (tests/support/oddities.h) on every base, built and real: each opens
// with its warning and is walked completely. With LITELENS_CASE_DIR set, the cases are written
// out ("odd_<oddity>__<base>.tflite", expected "ok:<code>") for the property test,
// tests/corruption/oddity_matrix.py, which runs every command on them.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "hardening_support.h"
#include "model_zoo.h"
#include "oddities.h"

namespace litelens::hardening {
namespace {

using litelens::testing::tolerated_oddities;
using litelens::testing::with_oddity;

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::set<std::string> matches(const std::string& text, const std::regex& re) {
  std::set<std::string> out;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it)
    out.insert((*it)[1]);
  return out;
}

// The catalogue, the validator and docs/format.md name the same warning codes: a new warning
// without an oddity to test it (or without documentation) fails here.
TEST(oddity_test, catalogue_covers_every_warning_code) {
  const fs::path root = LITELENS_SOURCE_DIR;
  const auto in_validator = matches(read_text(root / "src" / "validate.cpp"), std::regex(R"(warn\(\s*"([a-z_0-9]+)\")"));
  const std::string table = read_text(root / "docs" / "format.md");
  const auto documented = matches(table.substr(table.find("## Tolerated oddities")), std::regex(R"(\| `([a-z_0-9]+)` \|)"));
  std::set<std::string> catalogued;
  for (const auto& o : tolerated_oddities()) catalogued.insert(o.code);
  EXPECT_GE(in_validator.size(), 20u);
  EXPECT_EQ(in_validator, catalogued) << "every warning of src/validate.cpp needs an oddity in tests/support/oddities.cpp";
  EXPECT_EQ(in_validator, documented) << "docs/format.md's table of tolerated oddities must list every warning code";
}

struct Base {
  std::string name;
  Bytes bytes;
  bool real = false;
};

// Bases whose data is all inside the FlatBuffer (the oddities repack them through the object API).
std::vector<Base> bases() {
  std::vector<Base> out;
  for (auto& m : zoo()) {
    const Model model = Model::from_bytes(m.bytes);
    if (model.flatbuffer_size() == m.bytes.size()) out.push_back({m.name, std::move(m.bytes)});
  }
  for (const auto& name : {"hand_recrop.tflite", "face_detection_short_range.tflite",
                           "face_detection_full_range_sparse.tflite"})
    if (auto bytes = real_model(name)) out.push_back({fs::path(name).stem().string(), std::move(*bytes), true});
  // A converter's int8 model (per-channel weights of its own) when the fixtures are made.
  const fs::path fixture = models_dir().parent_path() / "fixtures" / "convnet_int8.tflite";
  if (fs::exists(fixture)) out.push_back({"convnet_int8", read_bytes(fixture), true});
  return out;
}

TEST(oddity_test, every_oddity_on_every_base) {
  const auto all = bases();
  std::map<std::string, std::pair<int, int>> applied;  // oddity name -> (built, real) bases
  for (const auto& base : all)
    for (const auto& oddity : tolerated_oddities()) {
      const auto bytes = with_oddity(base.bytes, oddity);
      if (!bytes) continue;
      EXPECT_CASE("odd_" + oddity.name + "__" + base.name, *bytes, opens(oddity.code));
      auto& [built, real] = applied[oddity.name];
      ++(base.real ? real : built);
    }
  for (const auto& oddity : tolerated_oddities()) {
    EXPECT_GE(applied[oddity.name].first, 3) << oddity.name << " applies to too few built models";
    EXPECT_GE(applied[oddity.name].second, 3) << oddity.name << " applies to too few real models";
  }
  RecordProperty("bases", std::to_string(all.size()));
}

}  // namespace
}  // namespace litelens::hardening
