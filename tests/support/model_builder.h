// Test-only: builds small .tflite models in memory through the generated object API, including
// layouts real converters produce (data stored after the FlatBuffer, codes above 127, ...).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "tflite_generated.h"

namespace litelens::testing {

template <class T>
std::vector<std::uint8_t> to_bytes(const std::vector<T>& values) {
  std::vector<std::uint8_t> out(values.size() * sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

class ModelBuilder {
 public:
  ModelBuilder();

  /// Adds a buffer holding `bytes` (inline unless moved outside with store_outside()).
  int add_buffer(std::vector<std::uint8_t> bytes);
  int add_subgraph(std::string name = "main");
  int add_tensor(int subgraph, std::string name, std::vector<std::int32_t> shape,
                 tflite::TensorType type = tflite::TensorType_FLOAT32, int buffer = 0);
  /// A constant: a new buffer with `bytes` and a tensor using it.
  int add_constant(int subgraph, std::string name, std::vector<std::int32_t> shape, tflite::TensorType type,
                   std::vector<std::uint8_t> bytes);
  int add_opcode(tflite::BuiltinOperator op, std::string custom_code = "", int version = 1);
  int add_operator(int subgraph, int opcode, std::vector<std::int32_t> inputs, std::vector<std::int32_t> outputs);
  void add_metadata(std::string name, std::vector<std::uint8_t> bytes);
  void add_signature(std::string key, int subgraph, std::vector<std::pair<std::string, std::uint32_t>> inputs,
                     std::vector<std::pair<std::string, std::uint32_t>> outputs);

  /// Keeps `buffer` out of the FlatBuffer: written after it and referenced by offset/size,
  /// the way converters write models over 2 GB.
  void store_outside(int buffer) { outside_.insert(buffer); }

  tflite::ModelT& model() { return model_; }
  tflite::SubGraphT& subgraph(int i) { return *model_.subgraphs[i]; }
  tflite::TensorT& tensor(int sg, int i) { return *model_.subgraphs[sg]->tensors[i]; }
  tflite::OperatorT& op(int sg, int i) { return *model_.subgraphs[sg]->operators[i]; }
  tflite::BufferT& buffer(int i) { return *model_.buffers[i]; }

  /// The finished file.
  std::vector<std::byte> finish() const;

 private:
  tflite::ModelT model_;
  std::set<int> outside_;
};

/// A small valid model: input [1,8,8,3] -> CONV_2D (filter [4,3,3,3], bias [4]) -> output,
/// with stride 2, VALID padding and RELU6. Tensors: 0 input, 1 filter, 2 bias, 3 output.
ModelBuilder conv_model();

/// Writes `bytes` to a fresh file under the test temp dir and returns its path.
std::string write_temp_file(const std::string& name, const std::vector<std::byte>& bytes);

}  // namespace litelens::testing
