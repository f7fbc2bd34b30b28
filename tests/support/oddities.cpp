#include "oddities.h"

#include <algorithm>
#include <memory>
#include <set>

namespace litelens::testing {
namespace {

using namespace tflite;

bool has_data(ModelBuilder& b, const TensorT& t) {
  return t.buffer != 0 && t.buffer < b.model().buffers.size() && !b.model().buffers[t.buffer]->data.empty();
}

bool has_main(ModelBuilder& b) { return !b.model().subgraphs.empty(); }

int tensor_count(ModelBuilder& b) { return static_cast<int>(b.subgraph(0).tensors.size()); }

// The first tensor of subgraph 0 without data, of rank 1 or more (an activation); -1 if none.
int first_activation(ModelBuilder& b) {
  if (!has_main(b)) return -1;
  for (int i = 0; i < tensor_count(b); ++i) {
    const auto& t = b.tensor(0, i);
    if (!has_data(b, t) && !t.shape.empty() && t.external_buffer == 0) return i;
  }
  return -1;
}

int opcode(ModelBuilder& b, BuiltinOperator op, const std::string& custom_code = "") {
  auto& codes = b.model().operator_codes;
  for (std::size_t i = 0; i < codes.size(); ++i)
    if (std::max<std::int32_t>(codes[i]->builtin_code, codes[i]->deprecated_builtin_code) == op &&
        codes[i]->custom_code == custom_code)
      return static_cast<int>(i);
  return b.add_opcode(op, custom_code);
}

// A FULLY_CONNECTED layer in subgraph 0 around weights `w` ([rows, cols]), with a fresh float32
// input [1, cols] and output [1, rows], so that layers, extract and patch see `w` as a parameter.
void attach_fully_connected(ModelBuilder& b, int w) {
  const auto shape = b.tensor(0, w).shape;
  const std::int32_t rows = shape.empty() ? 1 : shape.front(), cols = shape.size() < 2 ? 1 : shape.back();
  const std::string name = b.tensor(0, w).name;
  const int in = b.add_tensor(0, name + "/input", {1, cols});
  const int out = b.add_tensor(0, name + "/output", {1, rows});
  b.add_operator(0, opcode(b, BuiltinOperator_FULLY_CONNECTED), {in, w, -1}, {out});
}

std::unique_ptr<QuantizationParametersT> per_axis(std::vector<float> scales, int axis = 0) {
  auto q = std::make_unique<QuantizationParametersT>();
  q->zero_point.assign(scales.size(), 0);
  q->scale = std::move(scales);
  q->quantized_dimension = axis;
  return q;
}

// An int8 weight [4, 6] quantized per output channel, in a FULLY_CONNECTED layer.
int add_per_axis_weight(ModelBuilder& b, const std::string& name) {
  std::vector<std::uint8_t> values(24);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<std::uint8_t>(static_cast<int>(i) * 11 - 120);
  const int w = b.add_constant(0, name, {4, 6}, TensorType_INT8, values);
  b.tensor(0, w).quantization = per_axis({0.125f, 0.25f, 0.5f, 0.0625f});
  attach_fully_connected(b, w);
  return w;
}

// The first constant of subgraph 0 quantized per axis (affine), or a new one.
int per_axis_constant(ModelBuilder& b, const std::string& name) {
  for (int i = 0; i < tensor_count(b); ++i) {
    const auto& t = b.tensor(0, i);
    const auto* q = t.quantization.get();
    if (has_data(b, t) && q && q->details.type == QuantizationDetails_NONE && q->scale.size() > 1 &&
        q->zero_point.size() == q->scale.size() && q->quantized_dimension >= 0 &&
        static_cast<std::size_t>(q->quantized_dimension) < t.shape.size() &&
        static_cast<std::size_t>(t.shape[q->quantized_dimension]) == q->scale.size())
      return i;
  }
  return add_per_axis_weight(b, name);
}

// A new operator in subgraph 0 reading an activation (or nothing) into a fresh output.
bool add_operator_with(ModelBuilder& b, int code, std::vector<std::uint8_t> custom_options = {}) {
  if (!has_main(b)) return false;
  const int in = first_activation(b);
  if (in < 0) return false;
  const int out = b.add_tensor(0, "oddity/output", b.tensor(0, in).shape, b.tensor(0, in).type);
  const int op = b.add_operator(0, code, {in}, {out});
  b.op(0, op).custom_options = std::move(custom_options);
  return true;
}

// The buffers stored after the FlatBuffer of a packed model, in file order.
std::vector<Buffer*> outside_buffers(std::vector<std::byte>& bytes) {
  const auto* model = GetModel(bytes.data());
  std::vector<Buffer*> out;
  for (const Buffer* buf : *model->buffers())
    if (buf->offset() > 1) out.push_back(const_cast<Buffer*>(buf));
  std::sort(out.begin(), out.end(), [](const Buffer* a, const Buffer* c) { return a->offset() < c->offset(); });
  return out;
}

bool set_offset(Buffer* buf, std::uint64_t offset) {
  return reinterpret_cast<flatbuffers::Table*>(buf)->SetField<std::uint64_t>(Buffer::VT_OFFSET, offset, 0);
}

// Marks the constant buffers to store after the FlatBuffer: the `n` smallest of more than 4 bytes
// whose tensors take any bytes (numbers; not strings, which must hold a valid header).
bool store_small_constants_outside(ModelBuilder& b, std::size_t n) {
  std::set<std::uint32_t> numeric, other;
  for (const auto& sg : b.model().subgraphs)
    for (const auto& t : sg->tensors)
      (t->type == TensorType_STRING || t->type == TensorType_RESOURCE || t->type == TensorType_VARIANT ? other : numeric)
          .insert(t->buffer);
  std::vector<std::pair<std::size_t, int>> sizes;
  for (std::size_t i = 1; i < b.model().buffers.size(); ++i) {
    const auto size = b.model().buffers[i]->data.size();
    const auto index = static_cast<std::uint32_t>(i);
    if (size > 4 && numeric.count(index) && !other.count(index)) sizes.emplace_back(size, static_cast<int>(i));
  }
  if (sizes.size() < n) return false;
  std::sort(sizes.begin(), sizes.end());
  for (std::size_t i = 0; i < n; ++i) b.store_outside(sizes[i].second);
  return true;
}

std::vector<Oddity> make_catalogue() {
  std::vector<Oddity> c;
  const auto add = [&](std::string code, std::string name, std::function<bool(ModelBuilder&)> edit,
                       std::function<bool(std::vector<std::byte>&)> packed = {}) {
    c.push_back({std::move(code), std::move(name), std::move(edit), std::move(packed)});
  };

  // ---- structure and codes ----
  add("no_subgraphs", "no_subgraphs", [](ModelBuilder& b) {
    b.model().subgraphs.clear();
    b.model().signature_defs.clear();
    return true;
  });
  add("unknown_operator", "unknown_operator", [](ModelBuilder& b) {
    if (!has_main(b)) return false;
    const int code = b.add_opcode(static_cast<BuiltinOperator>(250));
    b.model().operator_codes[code]->deprecated_builtin_code = 127;
    return add_operator_with(b, code);
  });
  add("custom_without_name", "custom_without_name",
      [](ModelBuilder& b) { return has_main(b) && add_operator_with(b, b.add_opcode(BuiltinOperator_CUSTOM)); });
  add("custom_options_opaque", "custom_options_opaque", [](ModelBuilder& b) {
    return has_main(b) && add_operator_with(b, b.add_opcode(BuiltinOperator_CUSTOM, "LitelensOpaque"), {0x01, 0xff, 0x07});
  });
  add("builtin_with_custom_options", "builtin_with_custom_options", [](ModelBuilder& b) {
    if (!has_main(b) || b.subgraph(0).operators.empty()) return false;
    auto& op = b.op(0, 0);
    if (std::max<std::int32_t>(b.model().operator_codes[op.opcode_index]->builtin_code,
                               b.model().operator_codes[op.opcode_index]->deprecated_builtin_code) == BuiltinOperator_CUSTOM)
      return false;
    op.custom_options = {0x2a, 0x2a, 0x2a, 0x2a};
    return true;
  });
  add("mutating_inputs_length", "mutating_inputs_length", [](ModelBuilder& b) {
    if (!has_main(b)) return false;
    for (auto& op : b.subgraph(0).operators)
      if (op->inputs.size() >= 2) {
        op->mutating_variable_inputs = {true};
        return true;
      }
    return false;
  });
  add("subgraph_cycle", "subgraph_cycle", [](ModelBuilder& b) {
    const int sg = b.add_subgraph("calls_itself");
    b.add_tensor(sg, "x", {1});
    b.add_tensor(sg, "y", {1});
    const int op = b.add_operator(sg, opcode(b, BuiltinOperator_CALL_ONCE), {0}, {1});
    CallOnceOptionsT options;
    options.init_subgraph_index = sg;
    b.op(sg, op).builtin_options.Set(std::move(options));
    return true;
  });
  add("signature_without_key", "signature_without_key", [](ModelBuilder& b) {
    if (!has_main(b) || tensor_count(b) == 0) return false;
    b.add_signature("", 0, {{"x", 0}}, {});
    return true;
  });
  add("metadata_buffer_index", "metadata_buffer_index", [](ModelBuilder& b) {
    b.model().metadata_buffer.push_back(1000000);
    return true;
  });

  // ---- buffers ----
  add("nonempty_buffer0", "nonempty_buffer0", [](ModelBuilder& b) {
    // Activations get empty buffers of their own: buffer 0's bytes never become their data.
    for (auto& sg : b.model().subgraphs)
      for (auto& t : sg->tensors)
        if (t->buffer == 0) t->buffer = static_cast<std::uint32_t>(b.add_buffer({}));
    b.buffer(0).data = {1, 2, 3};
    return true;
  });
  add("nonempty_buffer0", "buffer0_data_under_activations", [](ModelBuilder& b) {
    b.buffer(0).data = {1, 2, 3, 4, 5, 6, 7, 8};
    return true;
  });
  add("buffer_inside_flatbuffer", "buffer_inside_flatbuffer",
      [](ModelBuilder& b) { return store_small_constants_outside(b, 1); },
      [](std::vector<std::byte>& bytes) {
        auto outside = outside_buffers(bytes);
        if (outside.size() != 1 || outside[0]->size() + 16 > outside[0]->offset()) return false;
        return set_offset(outside[0], 16);
      });
  add("overlapping_buffers", "overlapping_buffers",
      [](ModelBuilder& b) { return store_small_constants_outside(b, 2); },
      [](std::vector<std::byte>& bytes) {
        auto outside = outside_buffers(bytes);
        if (outside.size() != 2 || outside[0]->size() <= 4) return false;
        return set_offset(outside[1], outside[0]->offset() + 4);
      });
  add("external_buffer_duplicate_id", "external_buffer_duplicate_id", [](ModelBuilder& b) {
    if (!has_main(b)) return false;
    auto group = std::make_unique<ExternalBufferGroupT>();
    group->name = "weights.bin";
    b.model().external_buffer_groups.push_back(std::move(group));
    const auto group_index = static_cast<std::uint32_t>(b.model().external_buffer_groups.size() - 1);
    for (std::uint64_t offset : {0, 64}) {
      auto ext = std::make_unique<ExternalBufferT>();
      ext->id = 77;
      ext->group = group_index;
      ext->offset = offset;
      ext->length = 16;
      b.model().external_buffers.push_back(std::move(ext));
    }
    const int w = b.add_tensor(0, "external/weights", {1, 4});
    b.tensor(0, w).external_buffer = 77;
    attach_fully_connected(b, w);
    return true;
  });

  // ---- tensors ----
  add("negative_dim", "negative_dim", [](ModelBuilder& b) {
    const int t = first_activation(b);
    if (t < 0) return false;
    b.tensor(0, t).shape[0] = -1;
    return true;
  });
  add("shape_signature_rank", "shape_signature_rank", [](ModelBuilder& b) {
    const int t = first_activation(b);
    if (t < 0) return false;
    auto& tensor = b.tensor(0, t);
    tensor.shape_signature = tensor.shape;
    tensor.shape_signature.push_back(-1);
    return true;
  });
  add("unknown_dtype", "unknown_dtype", [](ModelBuilder& b) {
    const int t = first_activation(b);
    if (t < 0) return false;
    b.tensor(0, t).type = static_cast<TensorType>(120);
    return true;
  });
  add("data_without_size", "data_without_size", [](ModelBuilder& b) {
    if (!has_main(b)) return false;
    b.add_constant(0, "oddity/resource", {2}, TensorType_RESOURCE, {1, 2, 3, 4, 5, 6, 7, 8});
    return true;
  });
  add("unpacked_int4", "unpacked_int4", [](ModelBuilder& b) {
    if (!has_main(b)) return false;
    std::vector<std::uint8_t> values(24);
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<std::uint8_t>(static_cast<int>(i % 16) - 8);
    const int w = b.add_constant(0, "oddity/int4_one_per_byte", {4, 6}, TensorType_INT4, values);
    b.tensor(0, w).quantization = per_axis({0.5f, 0.25f, 0.125f, 1.0f});
    attach_fully_connected(b, w);
    return true;
  });

  // ---- quantization ----
  add("zero_point_count", "one_shared_zero_point", [](ModelBuilder& b) {
    if (!has_main(b)) return false;
    auto& q = *b.tensor(0, per_axis_constant(b, "oddity/shared_zero_point")).quantization;
    q.zero_point = {0};
    return true;
  });
  add("zero_point_count", "no_zero_points", [](ModelBuilder& b) {
    if (!has_main(b)) return false;
    b.tensor(0, per_axis_constant(b, "oddity/no_zero_points")).quantization->zero_point.clear();
    return true;
  });
  add("extra_scales", "extra_scales", [](ModelBuilder& b) {
    if (!has_main(b)) return false;
    auto& q = *b.tensor(0, per_axis_constant(b, "oddity/extra_scales")).quantization;
    q.scale.push_back(2.0f);
    q.zero_point.push_back(0);
    return true;
  });
  add("scales_on_scalar", "scales_on_scalar", [](ModelBuilder& b) {
    const int x = first_activation(b);
    if (x < 0) return false;
    const int s = b.add_constant(0, "oddity/scalar", {}, TensorType_INT8, {3});
    b.tensor(0, s).quantization = per_axis({0.5f, 0.25f, 4.0f});
    const int out = b.add_tensor(0, "oddity/scalar_sum", b.tensor(0, x).shape, b.tensor(0, x).type);
    b.add_operator(0, opcode(b, BuiltinOperator_ADD), {x, s}, {out});
    return true;
  });
  add("blockwise_layout", "blockwise_layout", [](ModelBuilder& b) {
    if (!has_main(b)) return false;
    std::vector<std::uint8_t> values(24);
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<std::uint8_t>(i);
    const int w = b.add_constant(0, "oddity/blockwise_rank3", {2, 3, 4}, TensorType_INT8, values);
    std::vector<float> scales(12, 0.5f);
    const int s = b.add_constant(0, "oddity/blockwise_scales", {12}, TensorType_FLOAT32, to_bytes(scales));
    auto q = std::make_unique<QuantizationParametersT>();
    BlockwiseQuantizationT bq;
    bq.scales = s;
    bq.zero_points = -1;
    bq.block_size = 2;
    q->details.Set(std::move(bq));
    b.tensor(0, w).quantization = std::move(q);
    attach_fully_connected(b, w);
    return true;
  });
  return c;
}

}  // namespace

const std::vector<Oddity>& tolerated_oddities() {
  static const std::vector<Oddity> catalogue = make_catalogue();
  return catalogue;
}

std::optional<std::vector<std::byte>> with_oddity(std::span<const std::byte> base, const Oddity& oddity) {
  ModelBuilder b;
  b.model() = std::move(*std::unique_ptr<ModelT>(GetModel(base.data())->UnPack()));
  if (!oddity.edit(b)) return std::nullopt;
  std::vector<std::byte> bytes = b.finish();
  if (oddity.edit_packed && !oddity.edit_packed(bytes)) return std::nullopt;
  return bytes;
}

}  // namespace litelens::testing
