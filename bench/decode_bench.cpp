// Micro-benchmarks for litelens/decode.h.
//
// Every benchmark reports bytes_per_second for the bytes it *writes* (the decoded output),
// and BM_memcpy copies the same number of bytes, so each kernel's rate can be read directly
// against the memcpy bound for its output size. Argument = element count (memcpy: bytes).
#include "litelens/array.h"
#include "litelens/decode.h"
#include "litelens/model.h"

#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "tflite_generated.h"

namespace {

std::vector<std::byte> random_bytes(std::size_t n, unsigned seed = 1) {
  std::mt19937 rng(seed);
  std::vector<std::byte> out(n);
  for (auto& b : out) b = static_cast<std::byte>(rng());
  return out;
}

// Random float16 values in a realistic weight range (no NaN/inf), so the benchmark measures
// ordinary data.
std::vector<std::byte> random_half_weights(std::size_t n) {
  std::mt19937 rng(2);
  std::normal_distribution<float> dist(0.0f, 0.05f);
  std::vector<float> f(n);
  for (auto& v : f) v = dist(rng);
  std::vector<std::byte> out(2 * n);
  litelens::narrow_to_float16(f, out);
  return out;
}

void BM_memcpy(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  const auto src = random_bytes(bytes);
  std::vector<std::byte> dst(bytes);
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), bytes);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(bytes));
}

void BM_widen_float16(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto src = random_half_weights(n);
  std::vector<float> dst(n);
  for (auto _ : state) {
    litelens::widen_float16(src, dst);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n * sizeof(float)));
}

void BM_widen_bfloat16(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto src = random_bytes(2 * n);
  std::vector<float> dst(n);
  for (auto _ : state) {
    litelens::widen_bfloat16(src, dst);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n * sizeof(float)));
}

void BM_widen_float8_e4m3fn(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto src = random_bytes(n);
  std::vector<float> dst(n);
  for (auto _ : state) {
    litelens::widen_float8_e4m3fn(src, dst);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n * sizeof(float)));
}

void BM_narrow_to_float16(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<float> src(n);
  litelens::widen_float16(random_half_weights(n), src);
  std::vector<std::byte> dst(2 * n);
  for (auto _ : state) {
    litelens::narrow_to_float16(src, dst);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * 2 * n));
}

void BM_unpack_int4(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto src = random_bytes(litelens::packed_byte_count(n, 4));
  std::vector<std::int8_t> dst(n);
  for (auto _ : state) {
    litelens::unpack_int4(src, dst);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n));
}

// int8 weight [channels, n / channels] dequantized per channel along `axis`:
// axis 0 = CONV_2D / FULLY_CONNECTED filters, axis 1 (last) = DEPTHWISE_CONV_2D.
void dequantize_per_channel(benchmark::State& state, std::int32_t axis) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::int32_t channels = 256;
  const std::int32_t other = static_cast<std::int32_t>(n / channels);
  const std::vector<std::int32_t> shape =
      axis == 0 ? std::vector<std::int32_t>{channels, other} : std::vector<std::int32_t>{other, channels};
  const auto raw = random_bytes(n);
  std::vector<std::int8_t> q(n);
  std::memcpy(q.data(), raw.data(), n);
  std::vector<float> scale(channels);
  std::vector<std::int64_t> zero_point(channels);
  for (std::int32_t c = 0; c < channels; ++c) {
    scale[c] = 0.001f * static_cast<float>(c + 1);
    zero_point[c] = c % 5 - 2;
  }
  std::vector<float> out(n);
  const litelens::AffineQuant quant{scale, zero_point, axis};
  for (auto _ : state) {
    litelens::dequantize(std::span<const std::int8_t>(q), shape, quant, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n * sizeof(float)));
}

void BM_dequantize_int8_axis0(benchmark::State& state) { dequantize_per_channel(state, 0); }
void BM_dequantize_int8_axis_last(benchmark::State& state) { dequantize_per_channel(state, 1); }

// A float32 [rows, 1024] weight: 1x4 block sparsity (DENSE, CSR, DENSE(4)) with half of the
// blocks stored, or plain CSR (DENSE, CSR) with 10% of the elements stored.
void densify_bench(benchmark::State& state, bool blocked) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::int32_t cols = 1024;
  const auto rows = static_cast<std::int32_t>(n / cols);
  const std::int32_t block = blocked ? 4 : 1;
  std::mt19937 rng(5);
  litelens::SparsitySpec spec;
  spec.traversal_order = blocked ? std::vector<std::int32_t>{0, 1, 2} : std::vector<std::int32_t>{0, 1};
  if (blocked) spec.block_map = {1};
  litelens::SparseLevel row_level{false, rows, {}, {}};
  litelens::SparseLevel col_level{true, 0, {0}, {}};
  for (std::int32_t r = 0; r < rows; ++r) {
    for (std::int32_t c = 0; c < cols / block; ++c)
      if (blocked ? rng() % 2 == 0 : rng() % 10 == 0) col_level.indices.push_back(c);
    col_level.segments.push_back(static_cast<std::int32_t>(col_level.indices.size()));
  }
  spec.levels = {row_level, col_level};
  if (blocked) spec.levels.push_back(litelens::SparseLevel{false, block, {}, {}});
  const std::vector<std::int32_t> shape = {rows, cols};
  std::uint64_t count = 0;
  if (auto error = litelens::check_sparsity(spec, shape, count)) {
    state.SkipWithError(error->c_str());
    return;
  }
  const auto stored = random_bytes(count * sizeof(float));
  std::vector<std::byte> out(n * sizeof(float));
  for (auto _ : state) {
    litelens::densify(spec, shape, stored, sizeof(float), out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * out.size()));
}

// litelens::transpose of a square float32 matrix (the OI -> IO of a FULLY_CONNECTED weight for
// --layout keras), output allocated per call as exports do. Argument = element count.
void BM_transpose_f32_2d(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto side = static_cast<std::int64_t>(std::llround(std::sqrt(static_cast<double>(n))));
  const auto a = litelens::Array::own(litelens::DType::float32, {side, side}, random_bytes(n * sizeof(float)));
  const int perm[2] = {1, 0};
  for (auto _ : state) {
    const auto t = litelens::transpose(a, perm);
    benchmark::DoNotOptimize(t.bytes().data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n * sizeof(float)));
}

void BM_densify_block1x4_f32(benchmark::State& state) { densify_bench(state, true); }
void BM_densify_csr10_f32(benchmark::State& state) { densify_bench(state, false); }

// ---- the verifier: Model::from_bytes (copy + every open-time check) on large models ---------
//
// from_bytes copies the caller's bytes and validates them, so a memcpy of the model's size is
// the bound it approaches; the difference is the cost of the checks, which depends on the
// metadata (tables, vectors, strings), not on the weights.

// A synthetic model with `layers` FULLY_CONNECTED layers, each with an inline float32 weight of
// `units` x `units` and a bias: many tables (the metadata) and inline payloads.
std::vector<std::byte> synthetic_model(int layers, int units) {
  tflite::ModelT m;
  m.version = 3;
  m.buffers.push_back(std::make_unique<tflite::BufferT>());
  auto code = std::make_unique<tflite::OperatorCodeT>();
  code->builtin_code = tflite::BuiltinOperator_FULLY_CONNECTED;
  code->deprecated_builtin_code = tflite::BuiltinOperator_FULLY_CONNECTED;
  code->version = 1;
  m.operator_codes.push_back(std::move(code));
  auto sg = std::make_unique<tflite::SubGraphT>();
  const auto tensor = [&](std::string name, std::vector<std::int32_t> shape, std::vector<std::uint8_t> data) {
    auto t = std::make_unique<tflite::TensorT>();
    t->name = std::move(name);
    t->shape = std::move(shape);
    t->type = tflite::TensorType_FLOAT32;
    if (!data.empty()) {
      auto b = std::make_unique<tflite::BufferT>();
      b->data = std::move(data);
      m.buffers.push_back(std::move(b));
      t->buffer = static_cast<std::uint32_t>(m.buffers.size() - 1);
    }
    sg->tensors.push_back(std::move(t));
    return static_cast<std::int32_t>(sg->tensors.size() - 1);
  };
  std::mt19937 rng(7);
  const auto random_payload = [&](std::size_t n) {
    std::vector<std::uint8_t> out(n);
    for (auto& b : out) b = static_cast<std::uint8_t>(rng());
    return out;
  };
  std::int32_t x = tensor("input", {1, units}, {});
  sg->inputs = {x};
  for (int l = 0; l < layers; ++l) {
    const std::string name = "model/dense_" + std::to_string(l);
    const auto w = tensor(name + "/kernel", {units, units}, random_payload(std::size_t(units) * units * 4));
    const auto b = tensor(name + "/bias", {units}, random_payload(std::size_t(units) * 4));
    const auto y = tensor(name + "/MatMul;" + name + "/BiasAdd", {1, units}, {});
    auto op = std::make_unique<tflite::OperatorT>();
    op->inputs = {x, w, b};
    op->outputs = {y};
    tflite::FullyConnectedOptionsT opt;
    opt.fused_activation_function = tflite::ActivationFunctionType_RELU;
    op->builtin_options.Set(std::move(opt));
    sg->operators.push_back(std::move(op));
    x = y;
  }
  sg->outputs = {x};
  m.subgraphs.push_back(std::move(sg));
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(tflite::Model::Pack(fbb, &m), tflite::ModelIdentifier());
  const auto* p = reinterpret_cast<const std::byte*>(fbb.GetBufferPointer());
  return {p, p + fbb.GetSize()};
}

void BM_from_bytes(benchmark::State& state, const std::vector<std::byte>* bytes) {
  for (auto _ : state) {
    auto model = litelens::Model::from_bytes(*bytes);
    benchmark::DoNotOptimize(model.subgraph_count());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(bytes->size()));
}

void BM_memcpy_model(benchmark::State& state, const std::vector<std::byte>* bytes) {
  std::vector<std::byte> dst(bytes->size());
  for (auto _ : state) {
    std::memcpy(dst.data(), bytes->data(), bytes->size());
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(bytes->size()));
}

// Model::open (mmap + the same checks; no weight page touched) on a file: the 3 GB benchmark
// model when LITELENS_BENCH_BIG_MODEL names it. Bytes/s here is the file size per second, a
// measure of how little of the file open reads.
void BM_open_file(benchmark::State& state, std::string path) {
  std::uint64_t size = 0;
  for (auto _ : state) {
    auto model = litelens::Model::open(path);
    size = model.file_size();
    benchmark::DoNotOptimize(model.subgraph_count());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(size));
}

std::vector<std::byte> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto* p = reinterpret_cast<const std::byte*>(data.data());
  return {p, p + data.size()};
}

// Registers the verifier benchmarks on the synthetic model, on the largest MediaPipe model when
// it is in the cache (LITELENS_CACHE, default ~/.cache/litelens), and Model::open on the big
// benchmark model when LITELENS_BENCH_BIG_MODEL is set.
void register_model_benchmarks() {
  static std::vector<std::vector<std::byte>> models;  // kept alive for the benchmarks
  models.reserve(4);
  std::vector<std::pair<std::string, std::size_t>> named;
  models.push_back(synthetic_model(4096, 64));  // 4096 layers, 12289 tensors, ~66 MB
  named.emplace_back("synthetic_fc4096x64", models.size() - 1);
  std::filesystem::path cache;
  if (const char* c = std::getenv("LITELENS_CACHE"); c && *c) cache = c;
  else if (const char* h = std::getenv("HOME")) cache = std::filesystem::path(h) / ".cache" / "litelens";
  const auto heavy = cache / "models" / "pose_landmark_heavy.tflite";
  if (std::filesystem::exists(heavy)) {
    models.push_back(read_file(heavy));
    named.emplace_back("pose_landmark_heavy", models.size() - 1);
  }
  for (const auto& [name, i] : named) {
    const auto* bytes = &models[i];
    benchmark::RegisterBenchmark(("BM_memcpy_model/" + name).c_str(), BM_memcpy_model, bytes);
    benchmark::RegisterBenchmark(("BM_from_bytes/" + name).c_str(), BM_from_bytes, bytes);
  }
  if (const char* big = std::getenv("LITELENS_BENCH_BIG_MODEL"); big && *big && std::filesystem::exists(big))
    benchmark::RegisterBenchmark("BM_open_file/big_model", BM_open_file, std::string(big))
        ->Unit(benchmark::kMillisecond);
}

constexpr int64_t kSmall = int64_t{1} << 18;  // 256 Ki elements: 1 MiB of float32 output
constexpr int64_t kLarge = int64_t{1} << 22;  // 4 Mi elements: 16 MiB of float32 output

}  // namespace

// memcpy of each output size used below: 256 KiB and 4 MiB (int8 outputs), 512 KiB and
// 8 MiB (float16 outputs), 1 MiB and 16 MiB (float32 outputs).
BENCHMARK(BM_memcpy)->Arg(kSmall)->Arg(2 * kSmall)->Arg(4 * kSmall)->Arg(kLarge)->Arg(2 * kLarge)->Arg(4 * kLarge);
BENCHMARK(BM_widen_float16)->Arg(kSmall)->Arg(kLarge);
BENCHMARK(BM_widen_bfloat16)->Arg(kSmall)->Arg(kLarge);
BENCHMARK(BM_widen_float8_e4m3fn)->Arg(kSmall)->Arg(kLarge);
BENCHMARK(BM_narrow_to_float16)->Arg(kSmall)->Arg(kLarge);
BENCHMARK(BM_unpack_int4)->Arg(kSmall)->Arg(kLarge);
BENCHMARK(BM_dequantize_int8_axis0)->Arg(kSmall)->Arg(kLarge);
BENCHMARK(BM_dequantize_int8_axis_last)->Arg(kSmall)->Arg(kLarge);
BENCHMARK(BM_densify_block1x4_f32)->Arg(kSmall)->Arg(kLarge);
BENCHMARK(BM_densify_csr10_f32)->Arg(kSmall)->Arg(kLarge);
BENCHMARK(BM_transpose_f32_2d)->Arg(kSmall)->Arg(kLarge);

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  register_model_benchmarks();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
