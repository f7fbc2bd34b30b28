// The walk over everything an opened Model exposes, and the fuzz entry points (see walk.h).
#include "walk.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

#include "litelens/decode.h"
#include "litelens/dtype.h"
#include "litelens/error.h"
#include "litelens/export.h"
#include "litelens/layer.h"
#include "litelens/metadata.h"
#include "litelens/summary.h"
#include "litelens/value.h"

namespace litelens::fuzzing {

namespace {

[[noreturn]] void violation(const std::string& what) { throw WalkViolation("walk: " + what); }

class Walker {
 public:
  explicit Walker(const Model& model) : model_(model), file_(model.bytes()) {}

  WalkStats run() {
    check_model();
    for (const Subgraph sg : model_.subgraphs()) walk_subgraph(sg);
    check_expansion();
    walk_metadata();
    return stats_;
  }

 private:
  // ---- helpers ----------------------------------------------------------------------------
  template <class T>
  void fold(std::span<const T> values) {
    copied_ += values.size();
    for (const T& v : values) {
      std::uint64_t bits = 0;
      std::memcpy(&bits, &v, std::min(sizeof(T), sizeof(bits)));
      stats_.checksum = stats_.checksum * 1099511628211ull ^ bits;
    }
  }
  void fold_text(std::string_view s) {
    copied_ += s.size();
    for (char c : s) stats_.checksum = stats_.checksum * 31 + static_cast<unsigned char>(c);
  }

  // A view handed out by the model must lie inside the file's bytes.
  void check_inside(const void* p, std::size_t n, const std::string& what) const {
    if (n == 0) return;
    const auto* b = reinterpret_cast<const std::byte*>(p);
    const std::byte* lo = file_.data();
    const std::byte* hi = file_.data() + file_.size();
    if (b < lo || b > hi || n > static_cast<std::size_t>(hi - b))
      violation(fmt::format("{}: {} bytes at {} lie outside the file", what, n, static_cast<const void*>(b)));
  }
  void check_text(std::string_view s, const std::string& what) const { check_inside(s.data(), s.size(), what); }

  template <class T>
  void check_indices(std::span<const T> list, std::size_t count, const std::string& what) const {
    for (T i : list)
      if (i != -1 && (i < 0 || static_cast<std::size_t>(i) >= count))
        violation(fmt::format("{}: index {} outside [0, {})", what, i, count));
  }

  // ---- model --------------------------------------------------------------------------------
  void check_model() {
    if (file_.size() != model_.file_size()) violation("bytes() and file_size() disagree");
    if (model_.flatbuffer_size() == 0 || model_.flatbuffer_size() > model_.file_size())
      violation(fmt::format("flatbuffer_size {} outside (0, {}]", model_.flatbuffer_size(), model_.file_size()));
    if (model_.version() != 3) violation("opened a model whose version is not 3");
    check_text(model_.description(), "description");
    fold_text(model_.description());
    fold_text(model_.label());
    for (const Warning& w : model_.warnings()) {
      if (w.code.empty() || w.message.empty()) violation("a warning without code or message");
      fold_text(w.code);
      fold_text(w.message);
    }
    for (const OperatorCode& c : model_.operator_codes()) {
      if (c.name.empty()) violation("an operator code without a name");
      check_text(c.custom_code, "custom code");
      fold_text(c.custom_code);
    }
    for (const SignatureDef& s : model_.signatures()) {
      if (s.subgraph < 0 || static_cast<std::size_t>(s.subgraph) >= model_.subgraph_count())
        violation(fmt::format("signature '{}' names subgraph {}", s.key, s.subgraph));
      const std::size_t n = model_.subgraph(s.subgraph).tensor_count();
      for (const auto* list : {&s.inputs, &s.outputs})
        for (const auto& b : *list) {
          if (b.tensor < 0 || static_cast<std::size_t>(b.tensor) >= n)
            violation(fmt::format("signature '{}' binds tensor {} of {}", s.key, b.tensor, n));
          fold_text(b.name);
        }
      fold_text(s.key);
    }
    for (const MetadataEntry& e : model_.metadata()) {
      check_inside(e.data.data(), e.data.size(), "metadata '" + e.name + "'");
      if (e.buffer >= model_.buffer_count()) violation("metadata names a buffer that does not exist");
      if (!e.data.empty() && (!e.data_offset || file_.data() + *e.data_offset != e.data.data()))
        violation("metadata data_offset disagrees with its data");
      const auto found = model_.metadata(e.name);
      if (!found) violation("metadata(name) misses an entry that metadata() lists");
      read_bytes(e.data);
      fold_text(e.name);
    }
    const ModelSummary all = summarize(model_);
    std::uint64_t tensors = 0;
    for (const Subgraph sg : model_.subgraphs()) {
      const ModelSummary one = summarize(model_, sg.index());
      tensors += one.tensors;
    }
    if (tensors != all.tensors) violation("per-subgraph summaries do not add up");
    stats_.checksum ^= all.parameters + all.constant_bytes;
  }

  void read_bytes(std::span<const std::byte> bytes) {
    std::uint64_t sum = 0;
    for (std::byte b : bytes) sum = sum * 257 + static_cast<std::uint8_t>(b);
    stats_.checksum ^= sum;
    stats_.data_bytes += bytes.size();
  }

  // ---- subgraphs ----------------------------------------------------------------------------
  void walk_subgraph(const Subgraph& sg) {
    ++stats_.subgraphs;
    check_text(sg.name(), "subgraph name");
    fold_text(sg.name());
    const std::size_t n_tensors = sg.tensor_count();
    check_indices(sg.inputs(), n_tensors, "subgraph inputs");
    check_indices(sg.outputs(), n_tensors, "subgraph outputs");
    fold(sg.inputs());
    fold(sg.outputs());
    for (const Tensor t : sg.tensors()) walk_tensor(sg, t);
    for (const Operator op : sg.operators()) walk_operator(sg, op);
  }

  // ---- tensors ------------------------------------------------------------------------------
  void walk_tensor(const Subgraph& sg, const Tensor& t) {
    ++stats_.tensors;
    const std::string where = fmt::format("subgraph {} tensor {}", sg.index(), t.index());
    check_text(t.name(), where + " name");
    fold_text(t.name());
    const auto shape = t.shape();
    fold(shape);
    fold(t.shape_signature());
    (void)t.has_rank();
    (void)t.external_buffer();
    (void)t.is_variable();
    const DType type = t.dtype();
    if (is_known(type) && t.dtype_code() != static_cast<int>(type)) violation(where + ": dtype_code disagrees");
    if (t.buffer() >= model_.buffer_count()) violation(where + ": buffer index out of range after open");

    bool negative = false;
    std::uint64_t product = 1;
    for (std::int32_t d : shape) {
      if (d < 0) negative = true;
      else product *= static_cast<std::uint64_t>(d);  // validated not to overflow
    }
    if (!negative && t.element_count() != product)
      violation(fmt::format("{}: element_count {} but the shape holds {}", where, t.element_count(), product));

    const auto data = t.data();
    check_inside(data.data(), data.size(), where + " data");
    if (t.is_constant() != !data.empty()) violation(where + ": is_constant disagrees with data()");
    const auto offset = t.data_offset();
    if (t.is_constant() && (!offset || file_.data() + *offset != data.data()))
      violation(where + ": data_offset disagrees with data()");
    if (!t.is_constant() && offset) violation(where + ": data_offset without data");
    read_bytes(data);

    const auto sparsity = t.sparsity();
    if (t.is_sparse() != sparsity.has_value()) violation(where + ": is_sparse disagrees with sparsity()");
    std::uint64_t stored = t.element_count();
    if (sparsity) {
      fold(std::span<const std::int32_t>(sparsity->traversal_order));
      fold(std::span<const std::int32_t>(sparsity->block_map));
      for (const auto& level : sparsity->levels) {
        fold(std::span<const std::int32_t>(level.segments));
        fold(std::span<const std::int32_t>(level.indices));
      }
      std::uint64_t count = 0;
      const auto problem = check_sparsity(*sparsity, shape, count);
      if (t.is_constant()) {
        if (problem) violation(fmt::format("{}: open accepted sparsity that check_sparsity rejects: {}", where, *problem));
        stored = count;
      }
    }
    check_data_size(t, where, type, data, stored, sparsity.has_value());
    check_typed_access(t, where, type, data);
    if (t.is_constant()) decode(sg, t, where, type, data, sparsity, stored);
    walk_quantization(sg, t, where);
  }

  void check_data_size(const Tensor&, const std::string& where, DType type, std::span<const std::byte> data,
                       std::uint64_t stored, bool) {
    if (data.empty()) return;
    if (type == DType::string) {
      if (auto problem = check_string_buffer(data, stored))
        violation(fmt::format("{}: open accepted a string buffer that check_string_buffer rejects: {}", where, *problem));
      return;
    }
    const auto expected = stored_bytes(type, stored);
    if (!expected) return;  // no fixed size (resource, variant, unknown): open warned
    const bool unpacked_4bit = (type == DType::int4 || type == DType::uint4) && data.size() == stored && stored > 1;
    if (data.size() != *expected && !unpacked_4bit)
      violation(fmt::format("{}: {} bytes of {} data for {} values (expected {})", where, data.size(),
                            dtype_name(type), stored, *expected));
  }

  template <class T>
  void typed(const Tensor& t, const std::string& where, std::span<const std::byte> data) {
    if (reinterpret_cast<std::uintptr_t>(data.data()) % alignof(T) != 0) return;  // documented refusal
    std::span<const T> values;
    try {
      values = t.template data_as<T>();
    } catch (const std::exception& e) {
      violation(fmt::format("{}: data_as threw on an aligned tensor of its own dtype: {}", where, e.what()));
    }
    if (values.size() != data.size() / sizeof(T)) violation(where + ": data_as size disagrees");
    if (!values.empty() && static_cast<const void*>(values.data()) != static_cast<const void*>(data.data()))
      violation(where + ": data_as is not a view of data()");
  }

  void check_typed_access(const Tensor& t, const std::string& where, DType type, std::span<const std::byte> data) {
    switch (type) {
      case DType::float32:
      case DType::complex64: typed<float>(t, where, data); break;
      case DType::float64:
      case DType::complex128: typed<double>(t, where, data); break;
      case DType::int8: typed<std::int8_t>(t, where, data); break;
      case DType::int16: typed<std::int16_t>(t, where, data); break;
      case DType::int32: typed<std::int32_t>(t, where, data); break;
      case DType::int64: typed<std::int64_t>(t, where, data); break;
      case DType::uint16:
      case DType::float16:
      case DType::bfloat16: typed<std::uint16_t>(t, where, data); break;
      case DType::uint32: typed<std::uint32_t>(t, where, data); break;
      case DType::uint64: typed<std::uint64_t>(t, where, data); break;
      case DType::uint8:
      case DType::bool_:
      case DType::string:
      case DType::int4:
      case DType::uint4:
      case DType::int2:
      case DType::float8_e4m3fn:
      case DType::float8_e5m2: typed<std::uint8_t>(t, where, data); break;
      default: break;  // resource, variant, unknown codes: no element type to ask for
    }
  }

  // Runs the decode kernels wherever their documented preconditions hold. They must not throw.
  void decode(const Subgraph&, const Tensor& t, const std::string& where, DType type,
              std::span<const std::byte> data, const std::optional<SparsitySpec>& sparsity, std::uint64_t stored) {
    try {
      if (sparsity) {
        const auto& info = is_known(type) ? dtype_info(type) : dtype_info(DType::uint8);
        if (!is_known(type) || info.bits < 8 || type == DType::string) return;
        const std::size_t elem = info.bits / 8;
        const std::uint64_t dense = t.element_count();
        if (dense > kMaxWalkDecodeBytes / elem) return;
        if (stored * elem != data.size()) return;
        std::vector<std::byte> out(static_cast<std::size_t>(dense * elem));
        densify(*sparsity, t.shape(), data, elem, out);
        stats_.decoded_values += dense;
        return;
      }
      const std::uint64_t n = t.element_count();
      if (n > kMaxWalkDecodeBytes / 4) return;
      const auto count = static_cast<std::size_t>(n);
      switch (type) {
        case DType::string: {
          const auto strings = split_strings(data);
          if (strings.size() != stored) violation(fmt::format("{}: {} strings for {} elements", where, strings.size(), stored));
          for (auto s : strings) {
            check_text(s, where + " string");
            stats_.checksum += s.size();
          }
          stats_.decoded_values += strings.size();
          return;
        }
        case DType::float16:
        case DType::bfloat16:
        case DType::float8_e4m3fn:
        case DType::float8_e5m2: {
          std::vector<float> out(count);
          if (type == DType::float16) widen_float16(data, out);
          else if (type == DType::bfloat16) widen_bfloat16(data, out);
          else if (type == DType::float8_e4m3fn) widen_float8_e4m3fn(data, out);
          else widen_float8_e5m2(data, out);
          stats_.decoded_values += out.size();
          return;
        }
        case DType::int4:
        case DType::uint4:
        case DType::int2: {
          if (data.size() == count && count > 1 && type != DType::int2) return;  // old unpacked layout
          std::vector<std::int8_t> out(count);
          if (type == DType::int4) unpack_int4(data, out);
          else if (type == DType::int2) unpack_int2(data, out);
          else unpack_uint4(data, std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(out.data()), out.size()));
          stats_.decoded_values += out.size();
          return;
        }
        case DType::int8: dequantize_as<std::int8_t>(t, data, count); return;
        case DType::uint8: dequantize_as<std::uint8_t>(t, data, count); return;
        case DType::int16: dequantize_as<std::int16_t>(t, data, count); return;
        case DType::int32: dequantize_as<std::int32_t>(t, data, count); return;
        case DType::int64: dequantize_as<std::int64_t>(t, data, count); return;
        default: return;
      }
    } catch (const std::invalid_argument& e) {
      violation(fmt::format("{}: a decode kernel refused data that open accepted: {}", where, e.what()));
    }
  }

  // Affine dequantization, when the parameters meet the kernel's contract (open only warns
  // about some mismatches the runtime tolerates, such as extra scales).
  template <class T>
  void dequantize_as(const Tensor& t, std::span<const std::byte> data, std::size_t count) {
    const auto q = t.quantization();
    if (!q || q->scheme != Quantization::Scheme::affine || q->scale.empty()) return;
    if (q->zero_point.size() != 1 && q->zero_point.size() != q->scale.size()) return;
    const auto shape = t.shape();
    if (q->scale.size() > 1) {
      const auto axis = q->quantized_dimension;
      if (axis < 0 || static_cast<std::size_t>(axis) >= shape.size()) return;
      if (static_cast<std::size_t>(shape[static_cast<std::size_t>(axis)]) != q->scale.size()) return;
    }
    if (data.size() != count * sizeof(T)) return;
    std::vector<T> values(count);
    if (count) std::memcpy(values.data(), data.data(), count * sizeof(T));
    std::vector<float> out(count);
    dequantize(std::span<const T>(values), shape, AffineQuant{q->scale, q->zero_point, q->quantized_dimension}, out);
    stats_.decoded_values += out.size();
  }

  void walk_quantization(const Subgraph& sg, const Tensor& t, const std::string& where) {
    const auto q = t.quantization();
    if (!q) return;
    fold(std::span<const float>(q->scale));
    fold(std::span<const std::int64_t>(q->zero_point));
    fold(std::span<const float>(q->min));
    fold(std::span<const float>(q->max));
    fold(std::span<const std::int32_t>(q->quantized_dimensions));
    fold(std::span<const std::uint8_t>(q->custom));
    (void)scheme_name(q->scheme);
    const std::size_t rank = t.shape().size();
    switch (q->scheme) {
      case Quantization::Scheme::affine:
        if (q->scale.size() > 1) {
          if (q->quantized_dimension < 0 || static_cast<std::size_t>(q->quantized_dimension) >= rank)
            violation(where + ": per-axis quantization with quantized_dimension outside the rank");
          if (static_cast<std::uint64_t>(std::max(t.shape()[static_cast<std::size_t>(q->quantized_dimension)], 0)) >
              q->scale.size())
            violation(where + ": fewer scales than slices");
        }
        if (!q->scale.empty() && q->zero_point.size() > 1 && q->zero_point.size() != q->scale.size())
          violation(where + ": zero_point count disagrees with scale count");
        return;
      case Quantization::Scheme::blockwise:
      case Quantization::Scheme::multi_axis: {
        const auto n = static_cast<int>(sg.tensor_count());
        if (q->scales_tensor < 0 || q->scales_tensor >= n) violation(where + ": scales tensor out of range");
        (void)sg.tensor(q->scales_tensor).data();
        if (q->zero_points_tensor != -1) {
          if (q->zero_points_tensor < 0 || q->zero_points_tensor >= n) violation(where + ": zero-point tensor out of range");
          (void)sg.tensor(q->zero_points_tensor).data();
        }
        for (std::int32_t d : q->quantized_dimensions)
          if (d < 0 || static_cast<std::size_t>(d) >= rank) violation(where + ": quantized dimension outside the rank");
        if (q->scheme == Quantization::Scheme::blockwise && q->block_size <= 0) violation(where + ": block size <= 0");
        // Decoding blockwise/multi-axis weights belongs to the layers feature (pending).
        return;
      }
      case Quantization::Scheme::custom:
      case Quantization::Scheme::unknown:
        return;
    }
  }

  // ---- operators ----------------------------------------------------------------------------
  void walk_operator(const Subgraph& sg, const Operator& op) {
    ++stats_.operators;
    const std::string where = fmt::format("subgraph {} operator {}", sg.index(), op.index());
    const std::size_t n = sg.tensor_count();
    check_indices(op.inputs(), n, where + " inputs");
    check_indices(op.outputs(), n, where + " outputs");
    check_indices(op.intermediates(), n, where + " intermediates");
    fold(op.inputs());
    fold(op.outputs());
    fold(op.intermediates());
    const auto mutating = op.mutating_variable_inputs();
    copied_ += mutating.size();
    (void)op.opcode();
    (void)op.version();
    if (op.op_name().empty()) violation(where + ": empty op name");
    check_text(op.custom_code(), where + " custom code");
    if (!op.is_custom() && !op.custom_code().empty() && op.op_name() != "UNKNOWN") {
      // A builtin with a custom_code string is odd but legal; nothing to check.
    }
    (void)summary_name(op);
    const auto options_type = op.options_type();
    fold_text(options_type);
    const auto raw = op.custom_options();
    check_inside(raw.data(), raw.size(), where + " custom options");
    read_bytes(raw);
    const Value options = op.options();
    // Builtin options are always a map; a custom op's FlexBuffer root may be any value.
    if (!op.is_custom() && !options.is_map()) violation(where + ": builtin options() is not a map");
    count_value(options, 0);
  }

  static std::string summary_name(const Operator& op) { return display_op_name(op); }

  void count_value(const Value& v, int depth) {
    if (depth > 200) violation("options nest deeper than 200 levels");
    ++stats_.option_nodes;
    ++copied_;
    if (v.is_string()) fold_text(v.as_string());
    else if (v.is_list())
      for (const auto& item : v.as_list()) count_value(item, depth + 1);
    else if (v.is_map())
      for (const auto& [key, item] : v.as_map()) {
        fold_text(key);
        count_value(item, depth + 1);
      }
  }

  // ---- metadata and the appended archive -------------------------------------------------------
  // Open does not look inside metadata buffers or the archive (include/litelens/metadata.h), so
  // on a model that opened they may still be broken: Error(invalid_metadata), one line, naming
  // the model, is the only failure allowed. Anything else breaks the promise.
  template <class F>
  bool metadata_call(const char* what, F&& f) {
    try {
      f();
      return true;
    } catch (const Error& e) {
      const std::string_view text = e.what();
      if (e.kind() != ErrorKind::invalid_metadata)
        violation(fmt::format("{}: {} error: {}", what, error_kind_name(e.kind()), text));
      if (text.find('\n') != std::string_view::npos || text.find('\r') != std::string_view::npos)
        violation(fmt::format("{}: error message spans several lines: {}", what, text));
      if (e.label() != model_.label()) violation(fmt::format("{}: error does not name the model: {}", what, text));
      if (e.offset() && *e.offset() > file_.size())
        violation(fmt::format("{}: error offset {} beyond {} bytes", what, *e.offset(), file_.size()));
      fold_metadata(text);
      return false;
    }
  }

  void fold_metadata(std::string_view s) {
    metadata_copied_ += s.size() + 1;
    for (char c : s) stats_.checksum = stats_.checksum * 31 + static_cast<unsigned char>(c);
  }
  void fold_metadata(const AssociatedFileInfo& f) {
    for (const auto* s : {&f.name, &f.description, &f.type_name, &f.locale, &f.version}) fold_metadata(*s);
  }
  void fold_metadata(const ProcessUnitInfo& u) {
    fold_metadata(process_unit_kind_name(u.kind));
    metadata_copied_ += u.mean.size() + u.std.size();
    fold_metadata(u.score_transformation);
    fold_metadata(u.delim_regex_pattern);
    for (const auto& f : u.vocab_files) fold_metadata(f);
    for (const auto& f : u.sentence_piece_models) fold_metadata(f);
  }
  void fold_metadata(const TensorMetadataInfo& t) {
    fold_metadata(t.name);
    fold_metadata(t.description);
    for (const auto& d : t.dimension_names) fold_metadata(d);
    if (t.content) {
      fold_metadata(content_kind_name(t.content->kind));
      fold_metadata(t.content->color_space);
      metadata_copied_ += t.content->box_index.size();
    }
    for (const auto& u : t.process_units) fold_metadata(u);
    metadata_copied_ += t.stats_max.size() + t.stats_min.size();
    for (const auto& f : t.associated_files) fold_metadata(f);
  }

  void walk_metadata() {
    // Never throws for content.
    try {
      if (const auto v = read_min_runtime_version(model_)) fold_metadata(v->version);
      for (const MetadataEntry& e : model_.metadata()) fold_metadata(metadata_bytes_text(e.data));
    } catch (const std::exception& e) {
      violation(fmt::format("min_runtime_version or metadata_bytes_text threw: {}", e.what()));
    }
    metadata_call("read_model_metadata", [&] {
      const auto info = read_model_metadata(model_);
      if (!info) return;
      for (const auto* s : {&info->name, &info->description, &info->version, &info->author, &info->license,
                            &info->min_parser_version})
        fold_metadata(*s);
      for (const auto& sg : info->subgraphs) {
        fold_metadata(sg.name);
        fold_metadata(sg.description);
        for (const auto* list : {&sg.inputs, &sg.outputs})
          for (const auto& t : *list) fold_metadata(t);
        for (const auto* list : {&sg.input_process_units, &sg.output_process_units})
          for (const auto& u : *list) fold_metadata(u);
        for (const auto* list : {&sg.input_tensor_groups, &sg.output_tensor_groups})
          for (const auto& g : *list) {
            fold_metadata(g.name);
            for (const auto& n : g.tensor_names) fold_metadata(n);
          }
        for (const auto& f : sg.associated_files) fold_metadata(f);
        for (const auto& c : sg.custom_metadata) {
          fold_metadata(c.name);
          metadata_copied_ += c.data.size();
        }
      }
      for (const auto& f : info->associated_files) fold_metadata(f);
      for (const auto& f : info->all_associated_files()) fold_metadata(f.name);
    });
    metadata_call("read_conversion_metadata", [&] {
      const auto c = read_conversion_metadata(model_);
      if (!c) return;
      fold_metadata(c->tensorflow_version);
      fold_metadata(c->model_type);
      for (const auto& m : c->optimization_modes) fold_metadata(m);
      for (const auto& b : c->sparsity_block_sizes) metadata_copied_ += b.size() + 1;
    });
    std::vector<AssociatedFile> files;
    if (!metadata_call("associated_files", [&] { files = associated_files(model_); })) return;
    if (!files.empty() && model_.file_size() == model_.flatbuffer_size())
      violation("associated files in a model with nothing after its FlatBuffer");
    for (const AssociatedFile& f : files) {
      if (f.name.empty()) violation("an associated file without a name");
      if (f.compressed_size > file_.size() || f.offset > file_.size() - f.compressed_size ||
          f.offset < model_.flatbuffer_size() || f.header_offset < model_.flatbuffer_size() || f.header_offset > f.offset)
        violation(fmt::format("associated file '{}': {} bytes at {} (header at {}) outside the archive region", f.name,
                              f.compressed_size, f.offset, f.header_offset));
      if (f.is_stored() && f.size != f.compressed_size) violation("a stored associated file whose sizes differ");
      fold_metadata(f.name);
      metadata_call("find_associated_file", [&] {
        const auto found = find_associated_file(model_, f.name);
        if (!found || found->offset != f.offset || found->size != f.size)
          violation(fmt::format("find_associated_file('{}') disagrees with the listing", f.name));
      });
      if (!f.is_supported()) {
        // Refused, with the documented error, when read.
        if (metadata_call("read_associated_file", [&] { (void)read_associated_file(model_, f); }))
          violation(fmt::format("associated file '{}' with method {} was read", f.name, f.compression));
        continue;
      }
      if (f.is_stored()) {
        metadata_call("associated_file_data", [&] {
          const auto data = associated_file_data(model_, f);
          if (data.size() != f.size) violation("associated_file_data() size differs from the listing");
          check_inside(data.data(), data.size(), "associated file '" + f.name + "'");
          read_bytes(data);
        });
      } else if (f.size <= kMaxWalkDecodeBytes) {  // declared sizes are not bounded by the file
        metadata_call("read_associated_file", [&] {
          const auto data = read_associated_file(model_, f);
          if (data.size() != f.size) violation("read_associated_file() size differs from the listing");
          read_bytes(data);
        });
      }
    }
    // The decoded metadata stays proportional to the file (metadata.h bounds each buffer's
    // decoding by a multiple of its size).
    const std::uint64_t limit = 64 * file_.size() + (std::uint64_t{4} << 20);
    if (metadata_copied_ > limit)
      violation(fmt::format("decoding the metadata of a {}-byte file produced {} values (limit {})", file_.size(),
                            metadata_copied_, limit));
  }

  // Everything the walk copied out of the model (names, shapes, quantization and sparsity
  // vectors, options) must stay proportional to the file: a small file must not be able to
  // expand into gigabytes through shared tables or payloads.
  void check_expansion() const {
    const std::uint64_t limit = 64 * file_.size() + (std::uint64_t{4} << 20);
    if (copied_ > limit)
      violation(fmt::format("reading a {}-byte file produced {} values (limit {})", file_.size(), copied_, limit));
  }

  const Model& model_;
  std::span<const std::byte> file_;
  WalkStats stats_;
  std::uint64_t copied_ = 0;
  std::uint64_t metadata_copied_ = 0;
};

}  // namespace

WalkStats walk(const Model& model) { return Walker(model).run(); }

int fuzz_open(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  auto result = Model::try_from_bytes(bytes, "fuzz.tflite");
  if (result.ok()) return 0;
  const Error& e = result.error();
  // The CLI prints what() as its one stderr line: it must be one line and name the input.
  const std::string_view what = e.what();
  if (what.find('\n') != std::string_view::npos || what.find('\r') != std::string_view::npos)
    violation(fmt::format("error message spans several lines: {}", what));
  if (!what.starts_with("fuzz.tflite: ")) violation(fmt::format("error message does not name the input: {}", what));
  if (e.message().empty()) violation("error without a message");
  if (e.kind() == ErrorKind::io || e.kind() == ErrorKind::output)
    violation(fmt::format("bytes in memory gave an {} error", error_kind_name(e.kind())));
  if (e.offset() && *e.offset() > size) violation(fmt::format("error offset {} beyond {} bytes", *e.offset(), size));
  return 0;
}

int fuzz_walk(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  std::optional<Model> model;
  try {
    model.emplace(Model::from_bytes(bytes, "fuzz.tflite"));
  } catch (const Error&) {
    return 0;
  }
  walk(*model);
  return 0;
}

namespace {

std::optional<Model> open_or_skip(const std::uint8_t* data, std::size_t size) {
  auto result = Model::try_from_bytes({reinterpret_cast<const std::byte*>(data), size}, "fuzz.tflite");
  if (!result.ok()) return std::nullopt;
  return std::move(result).value();
}

// Decodes whose dense output stays within the walk's bound (sparse tensors can expand).
bool decodable(const Model& model, const Layer& l, const Param& p) {
  if (p.is_runtime()) return false;
  const Tensor t = model.subgraph(l.subgraph).tensor(p.stored_tensor);
  if (!is_known(t.dtype()) || dtype_info(t.dtype()).bits == 0) return false;  // documented refusal
  return t.element_count() <= kMaxWalkDecodeBytes / 8;
}

// Dequantizing is refused, by design, for schemes without a float mapping and for blockwise
// layouts other than 2-D int4/int8 weights whose scale table fits (the only layout defined).
bool may_refuse_dequantize(const Model& model, const Layer& l, const Param& p) {
  const auto q = model.subgraph(l.subgraph).tensor(p.stored_tensor).quantization();
  return q && q->scheme != Quantization::Scheme::affine;
}

}  // namespace

int fuzz_layers(const std::uint8_t* data, std::size_t size) {
  const auto model = open_or_skip(data, size);
  if (!model) return 0;
  for (const Layer& l : layers(*model)) {
    for (const Param& p : l.params) {
      for (Framework f : {Framework::keras, Framework::torch}) (void)layout_conversion(*model, l, p, f);
      if (!decodable(*model, l, p)) continue;
      for (DecodeMode mode : {DecodeMode::stored, DecodeMode::widened, DecodeMode::dequantized}) {
        std::optional<Array> values;
        try {
          values = param_values(*model, l, p, mode);
        } catch (const std::invalid_argument&) {
          if (mode != DecodeMode::dequantized || !may_refuse_dequantize(*model, l, p)) throw;
          continue;
        }
        for (Framework f : {Framework::keras, Framework::torch}) (void)to_layout(*model, l, p, *values, f);
        if (values->dtype() != DType::float16 && values->dtype() != DType::bfloat16 &&
            values->dtype() != DType::float8_e4m3fn && values->dtype() != DType::float8_e5m2 &&
            values->dtype() != DType::complex64 && values->dtype() != DType::complex128)
          (void)statistics(*values);
      }
    }
  }
  return 0;
}

int fuzz_export(const std::uint8_t* data, std::size_t size) {
  const auto model = open_or_skip(data, size);
  if (!model) return 0;
  std::vector<ExportItem> items;
  std::uint64_t total = 0;
  for (auto& item : export_items(layers(*model))) {
    if (!decodable(*model, *item.layer, item.param) || may_refuse_dequantize(*model, *item.layer, item.param)) continue;
    total += model->subgraph(item.layer->subgraph).tensor(item.param.stored_tensor).element_count();
    // Export's paths are the same for 64 Ki values as for millions; text formats of millions of
    // values under ASan made each run take seconds, and the fuzzer learns from runs, not volume.
    if (total > kMaxExportElements) break;
    items.push_back(std::move(item));
  }
  for (ExportFormat format : {ExportFormat::npz, ExportFormat::safetensors, ExportFormat::json, ExportFormat::c_header})
    for (DecodeMode mode : {DecodeMode::stored, DecodeMode::dequantized}) {
      ExportOptions options;
      options.format = format;
      options.mode = mode;
      try {
        (void)export_to_memory(*model, items, options);
      } catch (const Error& e) {
        // The one documented refusal: a dtype the format cannot hold (complex in safetensors...).
        if (e.kind() != ErrorKind::output) throw;
      }
    }
  return 0;
}

std::span<const FuzzTarget> targets() {
  static constexpr FuzzTarget kTargets[] = {
      {"open", &fuzz_open},
      {"walk", &fuzz_walk},
      {"layers", &fuzz_layers},
      {"export", &fuzz_export},
  };
  return kTargets;
}

}  // namespace litelens::fuzzing
