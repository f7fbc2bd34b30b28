#include "model_builder.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace litelens::testing {

ModelBuilder::ModelBuilder() {
  model_.version = 3;
  model_.description = "litelens test model";
  model_.buffers.push_back(std::make_unique<tflite::BufferT>());  // the empty sentinel
}

int ModelBuilder::add_buffer(std::vector<std::uint8_t> bytes) {
  auto b = std::make_unique<tflite::BufferT>();
  b->data = std::move(bytes);
  model_.buffers.push_back(std::move(b));
  return static_cast<int>(model_.buffers.size() - 1);
}

int ModelBuilder::add_subgraph(std::string name) {
  auto sg = std::make_unique<tflite::SubGraphT>();
  sg->name = std::move(name);
  model_.subgraphs.push_back(std::move(sg));
  return static_cast<int>(model_.subgraphs.size() - 1);
}

int ModelBuilder::add_tensor(int sg, std::string name, std::vector<std::int32_t> shape, tflite::TensorType type,
                             int buffer) {
  auto t = std::make_unique<tflite::TensorT>();
  t->name = std::move(name);
  t->shape = std::move(shape);
  t->type = type;
  t->buffer = static_cast<std::uint32_t>(buffer);
  auto& tensors = model_.subgraphs[sg]->tensors;
  tensors.push_back(std::move(t));
  return static_cast<int>(tensors.size() - 1);
}

int ModelBuilder::add_constant(int sg, std::string name, std::vector<std::int32_t> shape, tflite::TensorType type,
                               std::vector<std::uint8_t> bytes) {
  return add_tensor(sg, std::move(name), std::move(shape), type, add_buffer(std::move(bytes)));
}

int ModelBuilder::add_opcode(tflite::BuiltinOperator op, std::string custom_code, int version) {
  auto c = std::make_unique<tflite::OperatorCodeT>();
  c->builtin_code = op;
  // Writers keep the 8-bit field for old readers and put 127 there when the code does not fit.
  c->deprecated_builtin_code = static_cast<std::int8_t>(op < 127 ? op : 127);
  c->custom_code = std::move(custom_code);
  c->version = version;
  model_.operator_codes.push_back(std::move(c));
  return static_cast<int>(model_.operator_codes.size() - 1);
}

int ModelBuilder::add_operator(int sg, int opcode, std::vector<std::int32_t> inputs,
                               std::vector<std::int32_t> outputs) {
  auto o = std::make_unique<tflite::OperatorT>();
  o->opcode_index = static_cast<std::uint32_t>(opcode);
  o->inputs = std::move(inputs);
  o->outputs = std::move(outputs);
  auto& ops = model_.subgraphs[sg]->operators;
  ops.push_back(std::move(o));
  return static_cast<int>(ops.size() - 1);
}

void ModelBuilder::add_metadata(std::string name, std::vector<std::uint8_t> bytes) {
  auto m = std::make_unique<tflite::MetadataT>();
  m->name = std::move(name);
  m->buffer = static_cast<std::uint32_t>(add_buffer(std::move(bytes)));
  model_.metadata.push_back(std::move(m));
}

void ModelBuilder::add_signature(std::string key, int subgraph,
                                 std::vector<std::pair<std::string, std::uint32_t>> inputs,
                                 std::vector<std::pair<std::string, std::uint32_t>> outputs) {
  auto s = std::make_unique<tflite::SignatureDefT>();
  s->signature_key = std::move(key);
  s->subgraph_index = static_cast<std::uint32_t>(subgraph);
  for (auto& [name, index] : inputs) {
    auto m = std::make_unique<tflite::TensorMapT>();
    m->name = name;
    m->tensor_index = index;
    s->inputs.push_back(std::move(m));
  }
  for (auto& [name, index] : outputs) {
    auto m = std::make_unique<tflite::TensorMapT>();
    m->name = name;
    m->tensor_index = index;
    s->outputs.push_back(std::move(m));
  }
  model_.signature_defs.push_back(std::move(s));
}

namespace {
std::vector<std::byte> pack(const tflite::ModelT& model) {
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(tflite::Model::Pack(fbb, &model), tflite::ModelIdentifier());
  const auto* p = reinterpret_cast<const std::byte*>(fbb.GetBufferPointer());
  return {p, p + fbb.GetSize()};
}
}  // namespace

std::vector<std::byte> ModelBuilder::finish() const {
  if (outside_.empty()) return pack(model_);
  // Two passes, as converters do: placeholders (offset = size = 1 keep the fields present), then
  // the real offsets patched in. The FlatBuffer's size does not change between the passes.
  const auto first = pack(model_);
  tflite::ModelT staged;  // a deep copy, through a pack and unpack
  tflite::GetModel(first.data())->UnPackTo(&staged);
  std::vector<std::vector<std::uint8_t>> payloads(staged.buffers.size());
  for (int i : outside_) {
    payloads[i] = std::move(staged.buffers[i]->data);
    staged.buffers[i]->data.clear();
    staged.buffers[i]->offset = 1;
    staged.buffers[i]->size = 1;
  }
  const std::size_t fb_size = pack(staged).size();
  std::uint64_t cursor = fb_size + (16 - fb_size % 16);
  std::vector<std::byte> tail;
  for (int i : outside_) {
    staged.buffers[i]->offset = cursor;
    staged.buffers[i]->size = payloads[i].size();
    for (auto b : payloads[i]) tail.push_back(static_cast<std::byte>(b));
    cursor += payloads[i].size();
    while (cursor % 16) {
      tail.push_back(std::byte{0});
      ++cursor;
    }
  }
  auto out = pack(staged);
  if (out.size() != fb_size) throw std::logic_error("model builder: FlatBuffer size changed when patching offsets");
  out.resize(fb_size + (16 - fb_size % 16), std::byte{0});
  out.insert(out.end(), tail.begin(), tail.end());
  return out;
}

ModelBuilder conv_model() {
  ModelBuilder b;
  const int sg = b.add_subgraph("main");
  b.add_tensor(sg, "input", {1, 8, 8, 3});
  std::vector<float> filter(4 * 3 * 3 * 3);
  for (std::size_t i = 0; i < filter.size(); ++i) filter[i] = static_cast<float>(i) * 0.5f - 10.0f;
  b.add_constant(sg, "conv/filter", {4, 3, 3, 3}, tflite::TensorType_FLOAT32, to_bytes(filter));
  b.add_constant(sg, "conv/bias", {4}, tflite::TensorType_FLOAT32, to_bytes(std::vector<float>{1, 2, 3, 4}));
  b.add_tensor(sg, "conv/output", {1, 3, 3, 4});
  const int code = b.add_opcode(tflite::BuiltinOperator_CONV_2D);
  const int op = b.add_operator(sg, code, {0, 1, 2}, {3});
  tflite::Conv2DOptionsT options;
  options.padding = tflite::Padding_VALID;
  options.stride_w = 2;
  options.stride_h = 2;
  options.fused_activation_function = tflite::ActivationFunctionType_RELU6;
  b.op(sg, op).builtin_options.Set(std::move(options));
  b.subgraph(sg).inputs = {0};
  b.subgraph(sg).outputs = {3};
  return b;
}

std::string write_temp_file(const std::string& name, const std::vector<std::byte>& bytes) {
  // One folder per process: ctest runs tests in parallel, each in its own process, and the same
  // file name written by two of them at once would race.
  const auto dir = std::filesystem::temp_directory_path() / ("litelens-tests-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = dir / name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
  return path.string();
}

}  // namespace litelens::testing
