// Everything Model::open checks, once, before any view is handed out. The rule: be strict about
// whatever could make reading go out of bounds, and turn oddities the runtime tolerates into
// warnings.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>
#include <unordered_set>

#include "litelens/decode.h"
#include "litelens/dtype.h"
#include "model_data.h"
#include "options_internal.h"

namespace litelens::detail {
namespace {

constexpr std::uint64_t kMaxFlatBufferSize = FLATBUFFERS_MAX_BUFFER_SIZE - 1;

// Reading may cost at most twice the file's size plus this, in bytes (see Validator::charge).
constexpr std::uint64_t kBudgetSlack = std::uint64_t{64} << 10;

template <class V>
std::uint64_t len(const V* v) {
  return v ? v->size() : 0;
}

// Text from the file inside an error message: control bytes would break the one-line report.
std::string printable(std::string_view s) {
  std::string out;
  for (const char c : s.substr(0, 200)) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) out += fmt::format("\\x{:02x}", u);
    else out += c;
  }
  return out;
}

}  // namespace

// Defined in options.cpp beside the reflection walker (declared here to keep the change local):
// what decoding an operator's builtin options copies, in bytes (vector elements, strings).
std::uint64_t options_weight(const tflite::Operator* op);

namespace {

class Validator {
 public:
  explicit Validator(ModelData& m) : m_(m) {}

  void run() {
    check_header();
    const auto* model = m_.root;
    if (model->version() != 3)
      fail(ErrorKind::bad_version,
           fmt::format("schema version {} is not supported (expected 3)", model->version()),
           m_.offset_of(model));
    budget_ = 2 * m_.size + kBudgetSlack;
    collect_external_buffers();
    check_buffers();
    check_operator_codes();
    const auto* subgraphs = model->subgraphs();
    const std::size_t n_subgraphs = subgraphs ? subgraphs->size() : 0;
    if (n_subgraphs == 0) warn("no_subgraphs", "the model has no subgraphs", std::nullopt);
    m_.subgraphs.resize(n_subgraphs);
    callees_.resize(n_subgraphs);
    for (std::size_t i = 0; i < n_subgraphs; ++i) check_subgraph(static_cast<int>(i));
    check_subgraph_cycles();
    check_signatures();
    check_metadata();
  }

 private:
  [[noreturn]] void fail(ErrorKind kind, std::string message, std::optional<std::uint64_t> at) {
    throw Error(kind, m_.label, std::move(message), at);
  }
  // FlatBuffers lets many offsets share one table, vector or payload, and buffer and custom
  // options offsets are plain integers, so a small file can describe a model that is enormous
  // to read: a million tensors that are all the same table, one shape of a million dimensions
  // under every tensor, one options payload named by every operator. Each thing open checks or
  // the accessors copy is charged here at the bytes it would take without sharing, and a model
  // that costs more than twice its size (plus a little) is refused. Real writers share only
  // empty tables, so their files stay far below the limit.
  void charge(std::uint64_t bytes, const void* at) {
    spent_ += bytes;
    if (spent_ > budget_)
      fail(ErrorKind::invalid_flatbuffer,
           fmt::format("tables or payloads are shared so often that reading the model would cost more than {} bytes",
                       budget_),
           at ? std::optional<std::uint64_t>(m_.offset_of(at)) : std::nullopt);
  }

  void warn(std::string code, std::string message, std::optional<std::uint64_t> at) {
    // Hostile files could repeat one oddity millions of times; keep the list bounded.
    if (m_.warnings.size() < 1000)
      m_.warnings.push_back({std::move(code), std::move(message), at, current_.first, current_.second});
  }

  // Identifier, FlatBuffers structure, and where the FlatBuffer ends.
  void check_header() {
    if (m_.size < 8) fail(ErrorKind::truncated, fmt::format("file is {} bytes, too short for a model", m_.size), 0);
    const auto* p = reinterpret_cast<const std::uint8_t*>(m_.base);
    if (std::memcmp(p + 4, "TFL3", 4) != 0)
      fail(ErrorKind::bad_identifier, "file identifier is not TFL3 (not a .tflite model?)", 4);
    // Offsets inside a FlatBuffer are 32-bit, so only the first 2 GiB can hold it; the rest
    // of a larger file is weights or an archive, checked separately.
    const std::uint64_t span = std::min<std::uint64_t>(m_.size, kMaxFlatBufferSize);
    flatbuffers::Verifier verifier(p, static_cast<std::size_t>(span));
    if (!tflite::VerifyModelBuffer(verifier))
      fail(ErrorKind::invalid_flatbuffer,
           "flatbuffer structure is invalid (truncated, or an offset or vector points outside the file)",
           std::nullopt);
    m_.root = tflite::GetModel(p);
    m_.flatbuffer_size = verifier.GetComputedSize();
    if (m_.flatbuffer_size == 0 || m_.flatbuffer_size > m_.size) m_.flatbuffer_size = span;
  }

  void collect_external_buffers() {
    const auto* model = m_.root;
    const std::size_t n_groups = model->external_buffer_groups() ? model->external_buffer_groups()->size() : 0;
    charge(8 * len(model->external_buffer_groups()), nullptr);
    if (const auto* ext = model->external_buffers()) {
      charge(8 * ext->size(), ext);
      for (flatbuffers::uoffset_t i = 0; i < ext->size(); ++i) {
        const auto* e = ext->Get(i);
        if (e->group() >= n_groups)
          fail(ErrorKind::index_out_of_range,
               fmt::format("external buffer {} names group {}, but there are {} groups", e->id(), e->group(), n_groups),
               m_.offset_of(e));
        m_.external_buffers.emplace_back(e->id(), i);
      }
    }
    // Sorted by id, then position: a lookup finds the first of duplicate ids.
    std::sort(m_.external_buffers.begin(), m_.external_buffers.end());
    for (std::size_t i = 1; i < m_.external_buffers.size(); ++i)
      if (m_.external_buffers[i].first == m_.external_buffers[i - 1].first)
        warn("external_buffer_duplicate_id",
             fmt::format("external buffer id {} appears more than once (the first is used)", m_.external_buffers[i].first),
             std::nullopt);
  }

  void check_buffers() {
    const auto* buffers = m_.root->buffers();
    const std::size_t n = buffers ? buffers->size() : 0;
    charge(4 * n, buffers);
    m_.buffers.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      const auto* b = buffers->Get(static_cast<flatbuffers::uoffset_t>(i));
      ByteRange& r = m_.buffers[i];
      if (const auto* data = b->data()) {
        r = {m_.offset_of(data->data()), data->size(), data->size() > 0};
      } else if (b->offset() > 1) {
        r = checked_range(b->offset(), b->size(), fmt::format("buffer {}", i), m_.offset_of(b));
      }
    }
    if (n > 0 && m_.buffers[0].present)
      warn("nonempty_buffer0", "buffer 0 should be the empty sentinel but holds data", m_.offset_of(buffers->Get(0)));
    check_outside_overlaps();
  }

  // An offset/size pair that must lie inside the file (overflow-safe).
  ByteRange checked_range(std::uint64_t offset, std::uint64_t size, const std::string& what,
                          std::uint64_t table_at) {
    if (size > m_.size || offset > m_.size - size)
      fail(ErrorKind::buffer_out_of_file,
           fmt::format("{} claims bytes [{}, {}+{}) but the file has {} bytes", what, offset, offset, size, m_.size),
           table_at);
    return {offset, size, size > 0};
  }

  // Data stored after the FlatBuffer should not overlap the FlatBuffer or other payloads
  // partially (identical ranges are the converter's deduplication and are fine).
  void check_outside_overlaps() {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
    const auto* buffers = m_.root->buffers();
    for (std::size_t i = 0; i < m_.buffers.size(); ++i) {
      const auto* b = buffers->Get(static_cast<flatbuffers::uoffset_t>(i));
      if (!b->data() && b->offset() > 1 && m_.buffers[i].present) {
        const auto& r = m_.buffers[i];
        if (r.offset < m_.flatbuffer_size)
          warn("buffer_inside_flatbuffer",
               fmt::format("buffer {} is stored by offset but starts inside the FlatBuffer", i), r.offset);
        ranges.emplace_back(r.offset, r.offset + r.size);
      }
    }
    std::sort(ranges.begin(), ranges.end());
    ranges.erase(std::unique(ranges.begin(), ranges.end()), ranges.end());
    for (std::size_t i = 1; i < ranges.size(); ++i)
      if (ranges[i].first < ranges[i - 1].second) {
        warn("overlapping_buffers", "buffers stored after the FlatBuffer overlap partially", ranges[i].first);
        break;
      }
  }

  void check_operator_codes() {
    const auto* codes = m_.root->operator_codes();
    const std::size_t n = codes ? codes->size() : 0;
    m_.opcodes.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      const auto* c = codes->Get(static_cast<flatbuffers::uoffset_t>(i));
      charge(8 + len(c->custom_code()), c);
      // Old files only have the 8-bit field; new writers put 127 there for codes that do not fit.
      const std::int32_t code = std::max<std::int32_t>(c->builtin_code(), c->deprecated_builtin_code());
      m_.opcodes[i] = code;
      if (code < 0 || code > max_builtin_code() || code == tflite::BuiltinOperator_PLACEHOLDER_FOR_GREATER_OP_CODES)
        warn("unknown_operator", fmt::format("operator code {} has unknown builtin code {}", i, code), m_.offset_of(c));
      else if (code == tflite::BuiltinOperator_CUSTOM && !c->custom_code())
        warn("custom_without_name", fmt::format("operator code {} is CUSTOM without a custom_code", i), m_.offset_of(c));
    }
  }

  void check_index_list(const flatbuffers::Vector<std::int32_t>* list, std::size_t n_tensors,
                        const char* what, int subgraph, const void* at) {
    if (!list) return;
    for (std::int32_t t : *list)
      if (t != -1 && (t < 0 || static_cast<std::size_t>(t) >= n_tensors))
        fail(ErrorKind::index_out_of_range,
             fmt::format("subgraph {}: {} names tensor {}, but there are {} tensors", subgraph, what, t, n_tensors),
             m_.offset_of(at));
  }

  void check_subgraph(int sg_index) {
    const auto* sg = m_.root->subgraphs()->Get(sg_index);
    const auto* tensors = sg->tensors();
    const std::size_t n_tensors = tensors ? tensors->size() : 0;
    const std::size_t n_ops = sg->operators() ? sg->operators()->size() : 0;
    charge(8 + len(sg->name()) + 4 * (len(sg->inputs()) + len(sg->outputs())) + 8 * (n_tensors + n_ops), sg);
    SubgraphRecord& rec = m_.subgraphs[sg_index];
    rec.tensors.resize(n_tensors);
    check_index_list(sg->inputs(), n_tensors, "input list", sg_index, sg);
    check_index_list(sg->outputs(), n_tensors, "output list", sg_index, sg);
    for (std::size_t t = 0; t < n_tensors; ++t) {
      current_ = {sg_index, static_cast<int>(t)};
      check_tensor(sg_index, static_cast<int>(t), tensors->Get(static_cast<flatbuffers::uoffset_t>(t)), n_tensors,
                   rec.tensors[t]);
    }
    for (std::size_t t = 0; t < n_tensors; ++t) {
      current_ = {sg_index, static_cast<int>(t)};
      check_blockwise_layout(sg_index, static_cast<int>(t), *tensors, rec);
    }
    current_ = {-1, -1};
    const auto* ops = sg->operators();
    rec.operators.resize(n_ops);
    for (std::size_t o = 0; o < n_ops; ++o)
      check_operator(sg_index, static_cast<int>(o), ops->Get(static_cast<flatbuffers::uoffset_t>(o)), n_tensors,
                     rec.operators[o]);
  }

  void check_tensor(int sg, int index, const tflite::Tensor* t, std::size_t n_tensors, TensorRecord& rec) {
    const std::uint64_t at = m_.offset_of(t);
    const auto where = [&] { return fmt::format("subgraph {} tensor {}", sg, index); };
    charge(tensor_cost(t), t);

    // Shape: element count without overflow; negative dims only tolerated without data.
    bool negative_dim = false;
    std::uint64_t count = 1;
    if (const auto* shape = t->shape()) {
      for (std::int32_t d : *shape) {
        if (d < 0) {
          negative_dim = true;
          count = 0;
          continue;
        }
        if (d != 0 && count > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) / d)
          fail(ErrorKind::invalid_shape, fmt::format("{}: element count of the shape overflows", where()), at);
        count *= static_cast<std::uint64_t>(d);
      }
    }
    rec.element_count = count;
    const auto* sig = t->shape_signature();
    if (sig && sig->size() > 0 && t->shape() && sig->size() != t->shape()->size())
      warn("shape_signature_rank", fmt::format("{}: shape_signature rank differs from shape", where()), at);

    if (t->buffer() >= m_.buffers.size())
      fail(ErrorKind::index_out_of_range,
           fmt::format("{} names buffer {}, but there are {} buffers", where(), t->buffer(), m_.buffers.size()), at);
    // Buffer 0 is the no-data sentinel, even in files that put bytes there.
    if (t->buffer() != 0) rec.data = m_.buffers[t->buffer()];
    const bool has_data = rec.data.present;

    const auto type = static_cast<DType>(t->type());
    if (!is_known(type))
      warn("unknown_dtype", fmt::format("{}: unknown tensor type {}", where(), static_cast<int>(t->type())), at);

    if (t->external_buffer() != 0) {
      if (!m_.external_buffer_position(t->external_buffer()))
        fail(ErrorKind::index_out_of_range,
             fmt::format("{} names external buffer id {}, which does not exist", where(), t->external_buffer()), at);
      if (has_data)
        fail(ErrorKind::invalid_tensor, fmt::format("{} has both an external buffer and data", where()), at);
    }
    if (t->is_variable() && has_data)
      fail(ErrorKind::invalid_tensor, fmt::format("{} is a variable but has constant data", where()), at);

    if (has_data) {
      if (negative_dim)
        fail(ErrorKind::invalid_shape, fmt::format("{}: constant with a negative dimension", where()), at);
      check_data_size(t, type, where(), at, rec);
    } else if (negative_dim) {
      warn("negative_dim", fmt::format("{}: negative dimension in shape", where()), at);
    }

    if (const auto* q = t->quantization()) check_quantization(t, q, where(), n_tensors);
  }

  void check_data_size(const tflite::Tensor* t, DType type, const std::string& where, std::uint64_t at,
                       TensorRecord& rec) {
    const std::uint64_t size = rec.data.size;
    std::uint64_t stored_count = rec.element_count;
    if (const auto* sp = t->sparsity()) {
      const SparsitySpec spec = to_sparsity_spec(sp);
      std::span<const std::int32_t> shape;
      if (t->shape()) shape = {t->shape()->data(), t->shape()->size()};
      if (auto problem = check_sparsity(spec, shape, stored_count))
        fail(ErrorKind::invalid_sparsity, fmt::format("{}: {}", where, *problem), m_.offset_of(sp));
    }
    if (type == DType::string) {
      // Many tensors may name one buffer: check each (buffer, count) pair once.
      if (!strings_checked_.emplace(t->buffer(), stored_count).second) return;
      if (auto problem = check_string_buffer(m_.bytes(rec.data), stored_count))
        fail(ErrorKind::invalid_string, fmt::format("{}: {}", where, *problem), rec.data.offset);
      return;
    }
    const auto expected = stored_bytes(type, stored_count);
    if (!expected && dtype_info(type).bits != 0) {
      // A fixed-width dtype whose byte count does not fit 64 bits cannot match any file.
      fail(ErrorKind::size_mismatch,
           fmt::format("{}: {} elements of {} need more than 2^64 bytes, but the data has {}", where, stored_count,
                       dtype_name(type), size),
           at);
    }
    if (!expected) {
      warn("data_without_size", fmt::format("{}: has {} bytes of data but its dtype has no fixed size", where, size), at);
      return;
    }
    if (size == *expected) return;
    if ((type == DType::int4 || type == DType::uint4) && stored_count > 1 && size == stored_count) {
      rec.unpacked_subbyte = true;
      warn("unpacked_int4", fmt::format("{}: 4-bit values stored one per byte (old writer)", where), at);
      return;
    }
    fail(ErrorKind::size_mismatch,
         fmt::format("{}: {} data has {} bytes, but {} elements need {}", where, dtype_name(type), size, stored_count,
                     *expected),
         at);
  }

  void check_quantization(const tflite::Tensor* t, const tflite::QuantizationParameters* q,
                          const std::string& where, std::size_t n_tensors) {
    const std::uint64_t at = m_.offset_of(q);
    const std::size_t rank = t->shape() ? t->shape()->size() : 0;
    const auto tensor_ref = [&](std::int32_t index, bool may_be_absent, const char* what) {
      if ((may_be_absent && index == -1) || (index >= 0 && static_cast<std::size_t>(index) < n_tensors)) return;
      fail(ErrorKind::index_out_of_range, fmt::format("{}: {} tensor {} does not exist", where, what, index), at);
    };
    switch (q->details_type()) {
      case tflite::QuantizationDetails_BlockwiseQuantization: {
        const auto* b = q->details_as_BlockwiseQuantization();
        if (!b) fail(ErrorKind::invalid_quantization, fmt::format("{}: blockwise quantization without its table", where), at);
        tensor_ref(b->scales(), false, "blockwise scales");
        tensor_ref(b->zero_points(), true, "blockwise zero points");
        if (b->block_size() <= 0)
          fail(ErrorKind::invalid_quantization, fmt::format("{}: block size {} must be positive", where, b->block_size()), at);
        return;
      }
      case tflite::QuantizationDetails_MultiAxisQuantization: {
        const auto* mq = q->details_as_MultiAxisQuantization();
        if (!mq) fail(ErrorKind::invalid_quantization, fmt::format("{}: multi-axis quantization without its table", where), at);
        tensor_ref(mq->scales(), false, "multi-axis scales");
        tensor_ref(mq->zero_points(), true, "multi-axis zero points");
        if (mq->block_size() < 0)
          fail(ErrorKind::invalid_quantization, fmt::format("{}: negative block size", where), at);
        if (const auto* dims = mq->quantized_dimensions())
          for (std::int32_t d : *dims)
            if (d < 0 || static_cast<std::size_t>(d) >= rank)
              fail(ErrorKind::invalid_quantization, fmt::format("{}: quantized dimension {} outside rank {}", where, d, rank), at);
        return;
      }
      default:
        break;
    }
    const std::size_t n_scale = q->scale() ? q->scale()->size() : 0;
    const std::size_t n_zero = q->zero_point() ? q->zero_point()->size() : 0;
    if (n_scale == 0) return;
    if (n_zero != n_scale) {
      if (n_zero > 1)
        fail(ErrorKind::invalid_quantization,
             fmt::format("{}: {} scales but {} zero points", where, n_scale, n_zero), at);
      warn("zero_point_count", fmt::format("{}: {} scales but {} zero points (read as {})", where, n_scale, n_zero,
                                           n_zero == 0 ? "zeros" : "one shared zero point"), at);
    }
    if (n_scale == 1) return;
    const std::int32_t axis = q->quantized_dimension();
    if (rank == 0) {
      // The runtime skips its per-axis checks for a scalar and reads the first scale.
      warn("scales_on_scalar",
           fmt::format("{}: {} scales on a scalar (read as per-tensor, the first scale)", where, n_scale), at);
      return;
    }
    if (axis < 0 || static_cast<std::size_t>(axis) >= rank)
      fail(ErrorKind::invalid_quantization,
           fmt::format("{}: {} per-axis scales but quantized_dimension {} is outside rank {}", where, n_scale, axis, rank), at);
    const std::int32_t extent = t->shape()->Get(static_cast<flatbuffers::uoffset_t>(axis));
    if (n_scale < static_cast<std::size_t>(std::max(extent, 0)))
      fail(ErrorKind::invalid_quantization,
           fmt::format("{}: {} scales for {} slices along dimension {}", where, n_scale, extent, axis), at);
    if (n_scale > static_cast<std::size_t>(extent))
      warn("extra_scales", fmt::format("{}: {} scales for {} slices along dimension {}", where, n_scale, extent, axis), at);
  }

  // The one blockwise layout the format confirms: a 2-D [rows, cols] weight with cols divisible by
  // the block size and rows x cols / block_size floating-point scales (and zero points, if any).
  // The runtime's loader does not check this (its kernels do), so other layouts open with a
  // warning and their dequantization is refused.
  void check_blockwise_layout(int sg, int index, const flatbuffers::Vector<flatbuffers::Offset<tflite::Tensor>>& tensors,
                              const SubgraphRecord& rec) {
    const auto* t = tensors.Get(static_cast<flatbuffers::uoffset_t>(index));
    const auto* q = t->quantization();
    const auto* b = q ? q->details_as_BlockwiseQuantization() : nullptr;
    if (!b) return;
    const auto problem = [&]() -> std::string {
      const auto* shape = t->shape();
      if (!shape || shape->size() != 2) return fmt::format("rank {}, expected 2", shape ? shape->size() : 0);
      const std::int64_t rows = std::max(shape->Get(0), 0), cols = std::max(shape->Get(1), 0);
      if (cols % b->block_size() != 0) return fmt::format("{} columns, not a multiple of block size {}", cols, b->block_size());
      const std::uint64_t blocks = static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(cols / b->block_size());
      const auto scale_type = static_cast<DType>(tensors.Get(static_cast<flatbuffers::uoffset_t>(b->scales()))->type());
      if (scale_type != DType::float32 && scale_type != DType::float16 && scale_type != DType::bfloat16 &&
          scale_type != DType::float8_e4m3fn && scale_type != DType::float8_e5m2)
        return fmt::format("{} scales, expected floating point", dtype_name(scale_type));
      if (!rec.tensors[b->scales()].data.present) return "the scales are not constant";
      if (rec.tensors[b->scales()].element_count != blocks)
        return fmt::format("{} scales for {} blocks", rec.tensors[b->scales()].element_count, blocks);
      if (b->zero_points() >= 0) {
        const TensorRecord& zp = rec.tensors[b->zero_points()];
        if (zp.element_count != 0 && !zp.data.present) return "the zero points are not constant";
        if (zp.element_count != 0 && zp.element_count != blocks)  // none at all read as zeros
          return fmt::format("{} zero points for {} blocks", zp.element_count, blocks);
      }
      return {};
    }();
    if (!problem.empty())
      warn("blockwise_layout",
           fmt::format("subgraph {} tensor {}: blockwise quantization: {} (dequantizing it is refused)", sg, index, problem),
           m_.offset_of(q));
  }

  void check_operator(int sg, int index, const tflite::Operator* op, std::size_t n_tensors, OperatorRecord& rec) {
    const std::uint64_t at = m_.offset_of(op);
    const auto where = [&] { return fmt::format("subgraph {} operator {}", sg, index); };
    if (op->opcode_index() >= m_.opcodes.size())
      fail(ErrorKind::index_out_of_range,
           fmt::format("{} uses operator code {}, but there are {}", where(), op->opcode_index(), m_.opcodes.size()), at);
    if (!op->inputs() || !op->outputs())
      fail(ErrorKind::invalid_flatbuffer, fmt::format("{} lacks its input or output list", where()), at);
    charge(4 * (len(op->inputs()) + len(op->outputs()) + len(op->intermediates())) +
               len(op->mutating_variable_inputs()) + len(op->custom_options()) + options_weight(op),
           op);
    check_index_list(op->inputs(), n_tensors, "an operator input", sg, op);
    check_index_list(op->outputs(), n_tensors, "an operator output", sg, op);
    check_index_list(op->intermediates(), n_tensors, "an operator intermediate", sg, op);
    if (const auto* mut = op->mutating_variable_inputs(); mut && mut->size() && mut->size() != op->inputs()->size())
      warn("mutating_inputs_length", fmt::format("{}: mutating_variable_inputs length differs from inputs", where()), at);

    if (const auto* custom = op->custom_options())
      rec.custom_options = {m_.offset_of(custom->data()), custom->size(), custom->size() > 0};
    else if (op->large_custom_options_offset() > 1) {
      rec.custom_options = checked_range(op->large_custom_options_offset(), op->large_custom_options_size(),
                                         where() + " custom options", at);
      charge(rec.custom_options.size, op);  // an offset may name the same payload for every op
    }
    const std::int32_t code = m_.opcodes[op->opcode_index()];
    if (rec.custom_options.present) {
      if (code != tflite::BuiltinOperator_CUSTOM)
        warn("builtin_with_custom_options", fmt::format("{}: builtin op carries custom options", where()), at);
      else if (op->custom_options_format() == tflite::CustomOptionsFormat_FLEXBUFFERS)
        rec.flexbuffer_ok = verify_flexbuffer(m_.bytes(rec.custom_options));
      if (code == tflite::BuiltinOperator_CUSTOM && !rec.flexbuffer_ok)
        warn("custom_options_opaque", fmt::format("{}: custom options are not a valid FlexBuffer; kept as bytes", where()), at);
    }

    for_each_subgraph_reference(op, [&](std::int64_t target, std::string_view field) {
      const std::size_t n = callees_.size();
      if (target < 0 || static_cast<std::uint64_t>(target) >= n)
        fail(ErrorKind::index_out_of_range,
             fmt::format("{}: {} names subgraph {}, but there are {}", where(), field, target, n), at);
      callees_[sg].push_back(static_cast<int>(target));
    });
  }

  // Control-flow ops may call subgraphs; a cycle would recurse forever when run. The runtime
  // refuses that at invoke time, not at load, so it is a warning here.
  void check_subgraph_cycles() {
    const std::size_t n = callees_.size();
    std::vector<std::uint8_t> state(n, 0);  // 0 new, 1 on stack, 2 done
    for (std::size_t start = 0; start < n; ++start) {
      if (state[start]) continue;
      std::vector<std::pair<int, std::size_t>> stack{{static_cast<int>(start), 0}};
      state[start] = 1;
      while (!stack.empty()) {
        auto& [node, next] = stack.back();
        if (next < callees_[node].size()) {
          const int callee = callees_[node][next++];
          if (state[callee] == 1) {
            warn("subgraph_cycle", fmt::format("subgraph {} calls itself through subgraph {}", callee, node), std::nullopt);
            return;
          }
          if (state[callee] == 0) {
            state[callee] = 1;
            stack.emplace_back(callee, 0);
          }
        } else {
          state[node] = 2;
          stack.pop_back();
        }
      }
    }
  }

  void check_signatures() {
    const auto* sigs = m_.root->signature_defs();
    if (!sigs) return;
    for (std::size_t i = 0; i < sigs->size(); ++i) {
      const auto* s = sigs->Get(static_cast<flatbuffers::uoffset_t>(i));
      const std::uint64_t at = m_.offset_of(s);
      std::uint64_t cost = 8 + len(s->signature_key()) + 8 * (len(s->inputs()) + len(s->outputs()));
      for (const auto* list : {s->inputs(), s->outputs()})
        if (list)
          for (const auto* map : *list) cost += len(map->name());
      charge(cost, s);
      if (s->subgraph_index() >= m_.subgraphs.size())
        fail(ErrorKind::index_out_of_range,
             fmt::format("signature {} names subgraph {}, but there are {}", i, s->subgraph_index(), m_.subgraphs.size()), at);
      if (!s->signature_key()) warn("signature_without_key", fmt::format("signature {} has no key", i), at);
      const std::size_t n_tensors = m_.subgraphs[s->subgraph_index()].tensors.size();
      for (const auto* list : {s->inputs(), s->outputs()}) {
        if (!list) continue;
        for (const auto* map : *list)
          if (map->tensor_index() >= n_tensors)
            fail(ErrorKind::index_out_of_range,
                 fmt::format("signature {} names tensor {}, but its subgraph has {}", i, map->tensor_index(), n_tensors),
                 m_.offset_of(map));
      }
    }
  }

  void check_metadata() {
    if (const auto* meta = m_.root->metadata())
      for (const auto* e : *meta) {
        charge(8 + len(e->name()), e);
        if (e->buffer() >= m_.buffers.size())
          fail(ErrorKind::index_out_of_range,
               fmt::format("metadata '{}' names buffer {}, but there are {}",
                           printable(e->name() ? e->name()->string_view() : ""), e->buffer(), m_.buffers.size()),
               m_.offset_of(e));
      }
    if (const auto* legacy = m_.root->metadata_buffer()) {
      charge(4 * legacy->size(), legacy);
      for (std::int32_t b : *legacy)
        if (b < 0 || static_cast<std::size_t>(b) >= m_.buffers.size())
          warn("metadata_buffer_index", fmt::format("legacy metadata_buffer names buffer {}", b), std::nullopt);
    }
  }

  // Bytes a tensor's own vectors and strings would take without sharing (see charge()).
  static std::uint64_t tensor_cost(const tflite::Tensor* t) {
    std::uint64_t cost = 8 + len(t->name()) + 4 * (len(t->shape()) + len(t->shape_signature()));
    if (const auto* q = t->quantization()) {
      cost += 8 + 4 * (len(q->scale()) + len(q->min()) + len(q->max())) + 8 * len(q->zero_point());
      if (const auto* c = q->details_as_CustomQuantization()) cost += len(c->custom());
      if (const auto* mq = q->details_as_MultiAxisQuantization()) cost += 4 * len(mq->quantized_dimensions());
    }
    if (const auto* sp = t->sparsity()) {
      cost += 8 + 4 * (len(sp->traversal_order()) + len(sp->block_map()));
      if (const auto* dims = sp->dim_metadata())
        for (const auto* d : *dims)
          cost += 8 + index_vector_cost(d->array_segments_type(), d->array_segments()) +
                  index_vector_cost(d->array_indices_type(), d->array_indices());
    }
    return cost;
  }
  static std::uint64_t index_vector_cost(tflite::SparseIndexVector type, const void* table) {
    if (!table) return 0;
    switch (type) {
      case tflite::SparseIndexVector_Int32Vector: return 4 * len(static_cast<const tflite::Int32Vector*>(table)->values());
      case tflite::SparseIndexVector_Uint16Vector: return 2 * len(static_cast<const tflite::Uint16Vector*>(table)->values());
      case tflite::SparseIndexVector_Uint8Vector: return len(static_cast<const tflite::Uint8Vector*>(table)->values());
      default: return 0;
    }
  }

  ModelData& m_;
  std::pair<int, int> current_{-1, -1};  // the tensor being checked, for its warnings
  std::vector<std::vector<int>> callees_;
  std::set<std::pair<std::uint32_t, std::uint64_t>> strings_checked_;  // (buffer, count) pairs
  std::uint64_t budget_ = 0;
  std::uint64_t spent_ = 0;
};

}  // namespace

SparsitySpec to_sparsity_spec(const tflite::SparsityParameters* sp) {
  SparsitySpec spec;
  if (const auto* order = sp->traversal_order()) spec.traversal_order.assign(order->begin(), order->end());
  if (const auto* map = sp->block_map()) spec.block_map.assign(map->begin(), map->end());
  const auto widen = [](tflite::SparseIndexVector type, const void* table) {
    std::vector<std::int32_t> out;
    if (!table) return out;  // a union tag without its table (the verifier allows it)
    switch (type) {
      case tflite::SparseIndexVector_Int32Vector:
        if (const auto* v = static_cast<const tflite::Int32Vector*>(table)->values()) out.assign(v->begin(), v->end());
        break;
      case tflite::SparseIndexVector_Uint16Vector:
        if (const auto* v = static_cast<const tflite::Uint16Vector*>(table)->values()) out.assign(v->begin(), v->end());
        break;
      case tflite::SparseIndexVector_Uint8Vector:
        if (const auto* v = static_cast<const tflite::Uint8Vector*>(table)->values()) out.assign(v->begin(), v->end());
        break;
      default:
        break;
    }
    return out;
  };
  if (const auto* dims = sp->dim_metadata()) {
    for (const auto* d : *dims) {
      SparseLevel level;
      level.is_sparse = d->format() == tflite::DimensionType_SPARSE_CSR;
      level.dense_size = d->dense_size();
      level.segments = widen(d->array_segments_type(), d->array_segments());
      level.indices = widen(d->array_indices_type(), d->array_indices());
      spec.levels.push_back(std::move(level));
    }
  }
  return spec;
}

void validate(ModelData& m) { Validator(m).run(); }

}  // namespace litelens::detail
