// Corpus replay: runs every file under the given folders through every fuzz entry point, without
// libFuzzer, so saved inputs and every crash ever found stay ordinary ctest regressions (with gcc
// as well as clang, with or without sanitizers).
//
//   litelens_fuzz_replay [--target NAME] PATH...
//
// PATH may be a file or a folder (searched recursively; files starting with '.' and README files
// are skipped). Exit status: 0 when every input passes, 1 when one breaks a promise (the input
// and the violation are printed), 2 on bad usage or an empty corpus.
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "walk.h"

namespace fs = std::filesystem;

namespace {

std::vector<std::uint8_t> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

bool skipped(const fs::path& p) {
  const std::string name = p.filename().string();
  return name.empty() || name[0] == '.' || name.rfind("README", 0) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string only;
  std::vector<fs::path> roots;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--target") == 0 && i + 1 < argc) only = argv[++i];
    else roots.emplace_back(argv[i]);
  }
  if (roots.empty()) {
    std::fprintf(stderr, "usage: %s [--target NAME] PATH...\n", argv[0]);
    return 2;
  }
  std::vector<fs::path> files;
  for (const auto& root : roots) {
    if (fs::is_regular_file(root)) {
      files.push_back(root);
      continue;
    }
    if (!fs::is_directory(root)) {
      std::fprintf(stderr, "replay: %s does not exist\n", root.c_str());
      return 2;
    }
    for (const auto& entry : fs::recursive_directory_iterator(root))
      if (entry.is_regular_file() && !skipped(entry.path())) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::fprintf(stderr, "replay: no inputs found\n");
    return 2;
  }
  int failures = 0;
  std::size_t runs = 0;
  for (const auto& file : files) {
    const auto bytes = read_file(file);
    for (const auto& target : litelens::fuzzing::targets()) {
      if (!only.empty() && only != target.name) continue;
      ++runs;
      try {
        target.run(bytes.data(), bytes.size());
      } catch (const std::exception& e) {
        ++failures;
        std::fprintf(stderr, "FAIL %s [%s]: %s\n", file.c_str(), target.name, e.what());
      }
    }
  }
  std::printf("replay: %zu inputs, %zu runs, %d failures\n", files.size(), runs, failures);
  return failures == 0 ? 0 : 1;
}
