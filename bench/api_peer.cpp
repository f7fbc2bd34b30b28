// litelens_bench_api SCENARIO MODEL [--crc]: the "litelens C++" column of scripts/bench.py.
// It does with the C++ library what bench/peers.py does with the Python package, so that the
// benchmark shows what a C++ user's own program costs, start-up included:
//   conv     every CONV_2D filter and bias as arrays (the values the convolution consumes)
//   inspect  every operator with its decoded options, every tensor with its quantization
//   list     every layer with its parameters
// It prints one JSON line: the work time and counts. With --crc (an untimed check run), conv also
// prints a CRC-32 of every array's bytes in layer order (filter, then bias), which
// scripts/bench.py compares with the Python package's arrays. Timed runs do not read the values:
// like the Python column's arrays, an int8 filter is a view of the mapped file.
#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string_view>
#include <vector>

#include "litelens/error.h"
#include "litelens/layer.h"
#include "litelens/model.h"

namespace {

using litelens::Model;

struct Counts {
  std::size_t layers = 0, array_count = 0, ops = 0, tensors = 0, params = 0;
  std::uint64_t bytes = 0;
  bool want_crc = false;
  unsigned long crc = crc32(0, nullptr, 0);
  std::vector<litelens::Array> arrays;  // every array stays alive until the end, as in the peers
};

void conv(const Model& model, Counts& counts) {
  litelens::LayerQuery query;
  query.ops = {"CONV_2D"};
  for (const auto& layer : litelens::layers(model, query)) {
    ++counts.layers;
    for (const char* role : {"filter", "bias"}) {
      const litelens::Param* param = layer.param(role);
      if (!param || param->is_runtime()) continue;
      const litelens::Array& values = counts.arrays.emplace_back(litelens::consumed_values(model, layer, *param));
      const auto bytes = values.bytes();
      // zlib takes at most 4 GiB per call; conv weights are far below that.
      if (counts.want_crc)
        counts.crc = crc32(counts.crc, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size()));
      counts.bytes += bytes.size();
      ++counts.array_count;
    }
  }
}

void inspect(const Model& model, Counts& counts) {
  for (const auto subgraph : model.subgraphs()) {
    for (const auto op : subgraph.operators()) {
      const litelens::Value options = op.options();
      counts.params += options.is_null() ? 0 : 1;
      ++counts.ops;
    }
    for (const auto tensor : subgraph.tensors()) {
      if (const auto q = tensor.quantization()) counts.params += q->scale.size();
      ++counts.tensors;
    }
  }
}

void list(const Model& model, Counts& counts) {
  for (const auto& layer : litelens::layers(model)) {
    ++counts.layers;
    counts.params += layer.params.size();
  }
}

}  // namespace

int main(int argc, char** argv) {
  const bool want_crc = argc == 4 && std::strcmp(argv[3], "--crc") == 0;
  if (argc != 3 && !want_crc) {
    std::fprintf(stderr, "usage: litelens_bench_api conv|inspect|list MODEL [--crc]\n");
    return 2;
  }
  const std::string_view scenario = argv[1];
  void (*run)(const Model&, Counts&) = scenario == "conv" ? conv : scenario == "inspect" ? inspect
                                       : scenario == "list" ? list : nullptr;
  if (!run) {
    std::fprintf(stderr, "litelens_bench_api: unknown scenario %s\n", argv[1]);
    return 2;
  }
  try {
    const auto t0 = std::chrono::steady_clock::now();
    Counts counts;
    counts.want_crc = want_crc;
    {
      const Model model = Model::open(argv[2]);
      run(model, counts);
      counts.arrays.clear();
    }  // freeing the arrays and closing the model (unmapping it) are part of the work, as in the peers
    const double work = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("{\"work_s\": %.9f, \"layers\": %zu, \"arrays\": %zu, \"bytes\": %llu, \"crc32\": %lu, "
                "\"ops\": %zu, \"tensors\": %zu, \"params\": %zu}\n",
                work, counts.layers, counts.array_count, static_cast<unsigned long long>(counts.bytes), counts.crc,
                counts.ops, counts.tensors, counts.params);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "litelens_bench_api: %s\n", e.what());
    return 1;
  }
  return 0;
}
