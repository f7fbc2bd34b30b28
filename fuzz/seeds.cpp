// Writes the built models of the zoo (fuzz/model_zoo.h) into a folder, one <name>.tflite each:
// the built half of the fuzz seed corpus. scripts/fuzz.sh adds the small real models.
//   litelens_fuzz_seeds OUTDIR
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "model_zoo.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);
  int n = 0;
  for (const auto& m : litelens::hardening::zoo()) {
    std::ofstream out(dir / (m.name + ".tflite"), std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(m.bytes.data()), static_cast<std::streamsize>(m.bytes.size()));
    if (!out) {
      std::fprintf(stderr, "seeds: cannot write %s\n", (dir / m.name).c_str());
      return 1;
    }
    ++n;
  }
  std::printf("seeds: %d models in %s\n", n, dir.c_str());
  return 0;
}
