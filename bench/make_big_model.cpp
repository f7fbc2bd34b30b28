// Streams a large .tflite model whose weights are stored after the FlatBuffer, referenced by
// Buffer.offset / Buffer.size, the layout TensorFlow's converter writes for models over 2 GB.
//
//   litelens_make_big_model OUT [--vocab N] [--dim N] [--hidden N] [--layers N] [--head N]
//
// The graph (a runnable model, so that the interpreter can load it):
//   tokens [1,8] int32 -> GATHER(embedding [vocab, dim] float32)      -> [1,8,dim]
//   -> FULLY_CONNECTED(fc0 [hidden, dim], bias [hidden])              -> [8,hidden]
//   -> FULLY_CONNECTED(fc<i> [hidden, hidden], bias [hidden]) x layers-1
//   -> FULLY_CONNECTED(head [head, hidden], bias [head])              -> [8,head] (the output)
// Defaults: a 1 GiB embedding, 33 fully connected layers of 4096 units and a head whose bias is
// exactly 1 KiB (256 float32): 3.02 GiB (3.24 GB) of weights.
//
// Nothing of the size of the weights is ever in memory: the FlatBuffer is written first with
// placeholder offsets (offset = size = 1, which keeps the fields present), then the payloads are
// generated and written in 4 MiB chunks, then the FlatBuffer is packed again with the real
// offsets (same size, since every field is present both times) and written over the placeholder.
// Values are deterministic (xorshift per buffer), uniform in +-1/sqrt(fan_in). Written to
// OUT.tmp and renamed, so an interrupted run leaves nothing at OUT.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "tflite_generated.h"

namespace {

struct Config {
  std::int64_t vocab = 262144;
  std::int64_t dim = 1024;
  std::int64_t hidden = 4096;
  std::int64_t layers = 33;
  std::int64_t head = 256;
  std::int64_t tokens = 8;
};

// One payload to write after the FlatBuffer: `bytes` of float32 values in +-amplitude.
struct Payload {
  int buffer;
  std::uint64_t bytes;
  float amplitude;
};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "make_big_model: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

void write_all(int fd, const void* data, std::size_t n) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      die("write");
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

std::vector<std::uint8_t> pack(const tflite::ModelT& model) {
  flatbuffers::FlatBufferBuilder fbb(1 << 16);
  fbb.Finish(tflite::Model::Pack(fbb, &model), tflite::ModelIdentifier());
  return {fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()};
}

class Builder {
 public:
  Builder() {
    model_.version = 3;
    model_.description = "litelens benchmark model (weights after the FlatBuffer)";
    model_.buffers.push_back(std::make_unique<tflite::BufferT>());  // the empty sentinel
    auto sg = std::make_unique<tflite::SubGraphT>();
    sg->name = "main";
    model_.subgraphs.push_back(std::move(sg));
  }

  int tensor(std::string name, std::vector<std::int32_t> shape, tflite::TensorType type, int buffer = 0) {
    auto t = std::make_unique<tflite::TensorT>();
    t->name = std::move(name);
    t->shape = std::move(shape);
    t->type = type;
    t->buffer = static_cast<std::uint32_t>(buffer);
    auto& ts = model_.subgraphs[0]->tensors;
    ts.push_back(std::move(t));
    return static_cast<int>(ts.size() - 1);
  }

  // A float32 constant stored outside the FlatBuffer.
  int weight(std::string name, std::vector<std::int32_t> shape, float amplitude) {
    std::uint64_t n = 4;
    for (auto d : shape) n *= static_cast<std::uint64_t>(d);
    auto b = std::make_unique<tflite::BufferT>();
    b->offset = 1;  // placeholders: present, patched once the payloads are placed
    b->size = 1;
    model_.buffers.push_back(std::move(b));
    const int buffer = static_cast<int>(model_.buffers.size() - 1);
    payloads_.push_back({buffer, n, amplitude});
    return tensor(std::move(name), std::move(shape), tflite::TensorType_FLOAT32, buffer);
  }

  int opcode(tflite::BuiltinOperator op) {
    auto c = std::make_unique<tflite::OperatorCodeT>();
    c->builtin_code = op;
    c->deprecated_builtin_code = static_cast<std::int8_t>(op < 127 ? op : 127);
    c->version = 1;
    model_.operator_codes.push_back(std::move(c));
    return static_cast<int>(model_.operator_codes.size() - 1);
  }

  tflite::OperatorT& op(int code, std::vector<std::int32_t> inputs, std::vector<std::int32_t> outputs) {
    auto o = std::make_unique<tflite::OperatorT>();
    o->opcode_index = static_cast<std::uint32_t>(code);
    o->inputs = std::move(inputs);
    o->outputs = std::move(outputs);
    auto& ops = model_.subgraphs[0]->operators;
    ops.push_back(std::move(o));
    return *ops.back();
  }

  tflite::ModelT& model() { return model_; }
  const std::vector<Payload>& payloads() const { return payloads_; }

 private:
  tflite::ModelT model_;
  std::vector<Payload> payloads_;
};

// Fills `out` with deterministic float32 values in +-amplitude, continuing `state`.
void fill(std::vector<float>& out, std::size_t n, std::uint64_t& state, float amplitude) {
  for (std::size_t i = 0; i < n; ++i) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    std::uint32_t bits = 0x3f800000u | static_cast<std::uint32_t>(state >> 41);  // [1, 2)
    float u;
    std::memcpy(&u, &bits, 4);
    out[i] = (u - 1.5f) * 2.0f * amplitude;
  }
}

std::int64_t arg_value(int& i, int argc, char** argv) {
  if (i + 1 >= argc) {
    std::fprintf(stderr, "make_big_model: %s needs a value\n", argv[i]);
    std::exit(2);
  }
  return std::strtoll(argv[++i], nullptr, 10);
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  std::string out;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--vocab") cfg.vocab = arg_value(i, argc, argv);
    else if (a == "--dim") cfg.dim = arg_value(i, argc, argv);
    else if (a == "--hidden") cfg.hidden = arg_value(i, argc, argv);
    else if (a == "--layers") cfg.layers = arg_value(i, argc, argv);
    else if (a == "--head") cfg.head = arg_value(i, argc, argv);
    else if (!a.empty() && a[0] != '-' && out.empty()) out = a;
    else {
      std::fprintf(stderr, "usage: make_big_model OUT [--vocab N] [--dim N] [--hidden N] [--layers N] [--head N]\n");
      return 2;
    }
  }
  if (out.empty() || cfg.layers < 1) {
    std::fprintf(stderr, "usage: make_big_model OUT [--vocab N] [--dim N] [--hidden N] [--layers N] [--head N]\n");
    return 2;
  }
  const auto i32 = [](std::int64_t v) { return static_cast<std::int32_t>(v); };

  Builder b;
  const int gather = b.opcode(tflite::BuiltinOperator_GATHER);
  const int fc = b.opcode(tflite::BuiltinOperator_FULLY_CONNECTED);
  const int tokens = b.tensor("tokens", {1, i32(cfg.tokens)}, tflite::TensorType_INT32);
  const int table =
      b.weight("model/embedding/embeddings", {i32(cfg.vocab), i32(cfg.dim)}, 1.0f / std::sqrt(float(cfg.dim)));
  int x = b.tensor("model/embedding/Gather", {1, i32(cfg.tokens), i32(cfg.dim)}, tflite::TensorType_FLOAT32);
  {
    auto& o = b.op(gather, {table, tokens}, {x});
    tflite::GatherOptionsT opt;
    opt.axis = 0;
    o.builtin_options.Set(std::move(opt));
  }
  std::int64_t in = cfg.dim;
  const auto dense = [&](const std::string& name, std::int64_t units) {
    const float a = 1.0f / std::sqrt(float(in));
    const int w = b.weight(name + "/kernel", {i32(units), i32(in)}, a);
    const int bias = b.weight(name + "/bias", {i32(units)}, 0.1f);
    const int y = b.tensor(name + "/MatMul;" + name + "/BiasAdd", {i32(cfg.tokens), i32(units)},
                           tflite::TensorType_FLOAT32);
    auto& o = b.op(fc, {x, w, bias}, {y});
    tflite::FullyConnectedOptionsT opt;
    opt.fused_activation_function = tflite::ActivationFunctionType_RELU;
    o.builtin_options.Set(std::move(opt));
    x = y;
    in = units;
  };
  for (std::int64_t l = 0; l < cfg.layers; ++l) dense("model/dense_" + std::to_string(l), cfg.hidden);
  dense("model/head", cfg.head);
  b.model().subgraphs[0]->inputs = {tokens};
  b.model().subgraphs[0]->outputs = {x};

  const std::string tmp = out + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) die("cannot create " + tmp);

  // 1. The FlatBuffer with placeholder offsets, padded to 64 bytes.
  const auto placeholder = pack(b.model());
  write_all(fd, placeholder.data(), placeholder.size());
  std::uint64_t cursor = placeholder.size();
  static const char zeros[64] = {};
  const auto pad = [&] {
    const std::uint64_t n = (64 - cursor % 64) % 64;
    write_all(fd, zeros, n);
    cursor += n;
  };
  pad();

  // 2. The payloads, streamed.
  std::vector<float> chunk(std::size_t{1} << 20);  // 4 MiB
  std::uint64_t total = 0;
  for (const auto& p : b.payloads()) {
    auto& buffer = *b.model().buffers[p.buffer];
    buffer.offset = cursor;
    buffer.size = p.bytes;
    std::uint64_t state = 0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(p.buffer + 1);
    for (std::uint64_t done = 0; done < p.bytes;) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), (p.bytes - done) / 4));
      fill(chunk, n, state, p.amplitude);
      write_all(fd, chunk.data(), n * 4);
      done += n * 4;
    }
    cursor += p.bytes;
    total += p.bytes;
    pad();
  }

  // 3. The real offsets, patched over the placeholder FlatBuffer.
  const auto patched = pack(b.model());
  if (patched.size() != placeholder.size()) {
    std::fprintf(stderr, "make_big_model: FlatBuffer size changed when patching offsets (%zu -> %zu)\n",
                 placeholder.size(), patched.size());
    ::unlink(tmp.c_str());
    return 1;
  }
  if (::pwrite(fd, patched.data(), patched.size(), 0) != static_cast<ssize_t>(patched.size())) die("pwrite");
  if (::close(fd) != 0) die("close");
  if (::rename(tmp.c_str(), out.c_str()) != 0) die("rename");
  std::printf("%s: %llu bytes (FlatBuffer %zu bytes, %zu weights, %llu bytes of weights)\n", out.c_str(),
              static_cast<unsigned long long>(cursor), patched.size(), b.payloads().size(),
              static_cast<unsigned long long>(total));
  return 0;
}
