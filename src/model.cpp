// Model construction and the views' accessors. Everything here trusts what validate() checked.
#include "litelens/model.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstring>
#include <new>

#include "model_data.h"
#include "options_internal.h"

namespace litelens {

using detail::ModelData;

namespace detail {

std::string_view builtin_op_name(std::int32_t code) noexcept {
  if (code < 0 || code > max_builtin_code()) return "UNKNOWN";
  const char* name = tflite::EnumNameBuiltinOperator(static_cast<tflite::BuiltinOperator>(code));
  return (name && *name) ? std::string_view(name) : std::string_view("UNKNOWN");
}

std::int32_t max_builtin_code() noexcept { return tflite::BuiltinOperator_MAX; }

// Prepares a fresh, not yet touched allocation for being written in full: asks the kernel to
// back its 2 MiB-aligned interior with huge pages, then to map every page of it in one call.
// Touching the pages one by one otherwise costs a page fault per 4 KiB, which dominates
// from_bytes (66 MB: 60-85 ms, 11 ms with huge pages; bench/decode_bench BM_from_bytes) and
// decoding into new arrays (src/array.cpp: widening pose_landmark_heavy's 116 fp16 filters, 52 MB
// of float32 kept alive at once, went from 36 ms to 27 ms with the pre-faulting). Only hints:
// a kernel without them (MADV_POPULATE_WRITE is Linux 5.14) changes nothing but the speed.
void prepare_fresh_pages(std::byte* p, std::size_t n) noexcept {
  constexpr std::uintptr_t kHuge = std::uintptr_t{2} << 20;
  const auto first = reinterpret_cast<std::uintptr_t>(p), last = first + n;
#ifdef MADV_HUGEPAGE
  if (n >= 2 * kHuge) {
    const auto begin = (first + kHuge - 1) & ~(kHuge - 1), end = last & ~(kHuge - 1);
    if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
  }
#endif
#ifdef MADV_POPULATE_WRITE
  // Below 64 KiB a buffer is a few pages, often already mapped (malloc's heap): not worth a call.
  if (n >= (std::size_t{64} << 10)) {
    const auto page = detail::page_size();
    const auto begin = (first + page - 1) / page * page, end = last / page * page;
    if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE);
  }
#endif
}

}  // namespace detail

namespace {

const tflite::SubGraph* subgraph_table(const ModelData* m, int index) {
  return m->root->subgraphs()->Get(static_cast<flatbuffers::uoffset_t>(index));
}
const tflite::Tensor* tensor_table(const ModelData* m, int sg, int index) {
  return subgraph_table(m, sg)->tensors()->Get(static_cast<flatbuffers::uoffset_t>(index));
}
const tflite::Operator* operator_table(const ModelData* m, int sg, int index) {
  return subgraph_table(m, sg)->operators()->Get(static_cast<flatbuffers::uoffset_t>(index));
}

template <class T>
std::span<const T> as_span(const flatbuffers::Vector<T>* v) {
  if (!v) return {};
  return {v->data(), v->size()};
}

std::string_view as_view(const flatbuffers::String* s) { return s ? s->string_view() : std::string_view(); }

// float and int64 vectors may sit unaligned in files rewritten by other tools: copy bytewise.
template <class T>
std::vector<T> copy_vector(const flatbuffers::Vector<T>* v) {
  std::vector<T> out;
  if (!v) return out;
  out.resize(v->size());
  if (!out.empty()) std::memcpy(out.data(), v->Data(), out.size() * sizeof(T));
  return out;
}

void check_index(int index, std::size_t count, const char* what) {
  if (index < 0 || static_cast<std::size_t>(index) >= count)
    throw std::out_of_range(std::string(what) + " index " + std::to_string(index) + " out of range (have " +
                            std::to_string(count) + ")");
}

std::unique_ptr<ModelData> validated(std::unique_ptr<ModelData> m) {
  detail::validate(*m);
  return m;
}

}  // namespace

std::string_view scheme_name(Quantization::Scheme scheme) noexcept {
  switch (scheme) {
    case Quantization::Scheme::affine: return "affine";
    case Quantization::Scheme::custom: return "custom";
    case Quantization::Scheme::blockwise: return "blockwise";
    case Quantization::Scheme::multi_axis: return "multi_axis";
    case Quantization::Scheme::unknown: return "unknown";
  }
  return "unknown";
}

bool same_bits(std::span<const float> a, std::span<const float> b) noexcept {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size_bytes()) == 0);
}

bool same_as_written(const Quantization& a, const Quantization& b) noexcept {
  return a.scheme == b.scheme && same_bits(a.scale, b.scale) && a.zero_point == b.zero_point &&
         same_bits(a.min, b.min) && same_bits(a.max, b.max) && a.quantized_dimension == b.quantized_dimension &&
         a.scales_tensor == b.scales_tensor && a.zero_points_tensor == b.zero_points_tensor &&
         a.block_size == b.block_size && a.quantized_dimensions == b.quantized_dimensions && a.custom == b.custom;
}

// ---- Model ------------------------------------------------------------------------------

Model::Model(std::unique_ptr<ModelData> data) : m_(std::move(data)) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

Model Model::open(const std::filesystem::path& path) {
  auto m = std::make_unique<ModelData>();
  m->label = path.string();
  m->mapping = std::make_unique<detail::MappedFile>(m->label);
  m->base = m->mapping->data();
  m->size = m->mapping->size();
  auto checked = validated(std::move(m));
  // The weights get normal read-ahead once the checks are done: a view of a large tensor read
  // from a cold cache would otherwise fault in one page at a time (see MappedFile).
  std::vector<std::pair<std::uint64_t, std::uint64_t>> weights;  // [begin, end) in the file
  for (const auto& buffer : checked->buffers)
    if (buffer.present) weights.emplace_back(buffer.offset, buffer.offset + buffer.size);
  checked->mapping->read_ahead_normally(std::move(weights));
  return Model(std::move(checked));
}

Model Model::from_bytes(std::span<const std::byte> bytes, std::string label) {
  auto m = std::make_unique<ModelData>();
  m->label = std::move(label);
  // operator new[] aligns to at least 16 bytes, keeping the writer's data alignment.
  m->owned = std::make_unique_for_overwrite<std::byte[]>(bytes.size() ? bytes.size() : 1);
  detail::prepare_fresh_pages(m->owned.get(), bytes.size());
  if (!bytes.empty()) std::memcpy(m->owned.get(), bytes.data(), bytes.size());
  m->base = m->owned.get();
  m->size = bytes.size();
  return Model(validated(std::move(m)));
}

Result<Model> Model::try_open(const std::filesystem::path& path) noexcept {
  try {
    return open(path);
  } catch (const Error& e) {
    return e;
  } catch (const std::bad_alloc&) {
    return Error(ErrorKind::io, path.string(), "out of memory");
  }
}

Result<Model> Model::try_from_bytes(std::span<const std::byte> bytes, std::string label) noexcept {
  try {
    return from_bytes(bytes, label);
  } catch (const Error& e) {
    return e;
  } catch (const std::bad_alloc&) {
    return Error(ErrorKind::io, label, "out of memory");
  }
}

const std::string& Model::label() const noexcept { return m_->label; }
std::uint64_t Model::file_size() const noexcept { return m_->size; }
std::uint64_t Model::flatbuffer_size() const noexcept { return m_->flatbuffer_size; }
std::uint32_t Model::version() const { return m_->root->version(); }
std::string_view Model::description() const { return as_view(m_->root->description()); }
std::span<const std::byte> Model::bytes() const noexcept { return {m_->base, static_cast<std::size_t>(m_->size)}; }
std::size_t Model::subgraph_count() const { return m_->subgraphs.size(); }
std::size_t Model::buffer_count() const { return m_->buffers.size(); }
std::span<const Warning> Model::warnings() const noexcept { return m_->warnings; }

const ModelData& detail::data_of(const Model& model) noexcept { return *model.m_; }

Subgraph Model::subgraph(int index) const {
  check_index(index, m_->subgraphs.size(), "subgraph");
  return Subgraph(m_.get(), index);
}

std::vector<OperatorCode> Model::operator_codes() const {
  std::vector<OperatorCode> out;
  const auto* codes = m_->root->operator_codes();
  for (std::size_t i = 0; i < m_->opcodes.size(); ++i) {
    const auto* c = codes->Get(static_cast<flatbuffers::uoffset_t>(i));
    out.push_back({m_->opcodes[i], detail::builtin_op_name(m_->opcodes[i]), as_view(c->custom_code()), c->version()});
  }
  return out;
}

std::vector<SignatureDef> Model::signatures() const {
  std::vector<SignatureDef> out;
  const auto* sigs = m_->root->signature_defs();
  if (!sigs) return out;
  for (const auto* s : *sigs) {
    SignatureDef def;
    def.key = std::string(as_view(s->signature_key()));
    def.subgraph = static_cast<int>(s->subgraph_index());
    const auto bind = [](const auto* list, std::vector<SignatureDef::Binding>& into) {
      if (!list) return;
      for (const auto* map : *list)
        into.push_back({std::string(as_view(map->name())), static_cast<std::int32_t>(map->tensor_index())});
    };
    bind(s->inputs(), def.inputs);
    bind(s->outputs(), def.outputs);
    out.push_back(std::move(def));
  }
  return out;
}

std::vector<MetadataEntry> Model::metadata() const {
  std::vector<MetadataEntry> out;
  const auto* meta = m_->root->metadata();
  if (!meta) return out;
  for (const auto* e : *meta) {
    const auto& range = m_->buffers[e->buffer()];
    MetadataEntry entry{std::string(as_view(e->name())), e->buffer(), m_->bytes(range), std::nullopt};
    if (range.present) entry.data_offset = range.offset;
    out.push_back(std::move(entry));
  }
  return out;
}

std::optional<std::span<const std::byte>> Model::metadata(std::string_view name) const {
  const auto* meta = m_->root->metadata();
  if (!meta) return std::nullopt;
  for (const auto* e : *meta)
    if (as_view(e->name()) == name) return m_->bytes(m_->buffers[e->buffer()]);
  return std::nullopt;
}

// ---- Subgraph ---------------------------------------------------------------------------

std::string_view Subgraph::name() const { return as_view(subgraph_table(m_, index_)->name()); }
std::span<const std::int32_t> Subgraph::inputs() const { return as_span(subgraph_table(m_, index_)->inputs()); }
std::span<const std::int32_t> Subgraph::outputs() const { return as_span(subgraph_table(m_, index_)->outputs()); }
std::size_t Subgraph::tensor_count() const { return m_->subgraphs[index_].tensors.size(); }
std::size_t Subgraph::operator_count() const { return m_->subgraphs[index_].operators.size(); }

Tensor Subgraph::tensor(int index) const {
  check_index(index, tensor_count(), "tensor");
  return Tensor(m_, index_, index);
}

Operator Subgraph::op(int index) const {
  check_index(index, operator_count(), "operator");
  return Operator(m_, index_, index);
}

// ---- Tensor -----------------------------------------------------------------------------

std::string_view Tensor::name() const { return as_view(tensor_table(m_, subgraph_, index_)->name()); }
std::span<const std::int32_t> Tensor::shape() const { return as_span(tensor_table(m_, subgraph_, index_)->shape()); }
std::span<const std::int32_t> Tensor::shape_signature() const {
  return as_span(tensor_table(m_, subgraph_, index_)->shape_signature());
}
bool Tensor::has_rank() const { return tensor_table(m_, subgraph_, index_)->has_rank(); }
DType Tensor::dtype() const { return static_cast<DType>(tensor_table(m_, subgraph_, index_)->type()); }
int Tensor::dtype_code() const { return static_cast<int>(tensor_table(m_, subgraph_, index_)->type()); }
std::uint32_t Tensor::buffer() const { return tensor_table(m_, subgraph_, index_)->buffer(); }
std::uint32_t Tensor::external_buffer() const { return tensor_table(m_, subgraph_, index_)->external_buffer(); }

std::optional<ExternalData> Tensor::external_data() const {
  const std::uint32_t id = external_buffer();
  if (id == 0) return std::nullopt;
  const auto position = m_->external_buffer_position(id);
  if (!position) return std::nullopt;  // open refuses unknown ids; kept total for safety
  const auto* e = m_->root->external_buffers()->Get(*position);
  ExternalData out;
  out.id = id;
  out.group = e->group();
  if (const auto* name = m_->root->external_buffer_groups()->Get(e->group())->name()) out.group_name = as_view(name);
  out.offset = e->offset();
  out.length = e->length();
  out.packing = as_view(e->packing());
  return out;
}
bool Tensor::is_variable() const { return tensor_table(m_, subgraph_, index_)->is_variable(); }
bool Tensor::is_sparse() const { return tensor_table(m_, subgraph_, index_)->sparsity() != nullptr; }

const detail::TensorRecord& record(const ModelData* m, int sg, int index) { return m->subgraphs[sg].tensors[index]; }

bool Tensor::is_constant() const { return record(m_, subgraph_, index_).data.present; }
std::uint64_t Tensor::element_count() const { return record(m_, subgraph_, index_).element_count; }
std::span<const std::byte> Tensor::data() const { return m_->bytes(record(m_, subgraph_, index_).data); }
void Tensor::will_need() const noexcept { detail::will_need(data()); }
std::optional<std::uint64_t> Tensor::data_offset() const {
  const auto& r = record(m_, subgraph_, index_).data;
  if (!r.present) return std::nullopt;
  return r.offset;
}

bool Tensor::dtype_accepts(std::size_t size, bool is_float, bool is_signed) const {
  switch (dtype()) {
    case DType::float32: return is_float && size == 4;
    case DType::float64: return is_float && size == 8;
    case DType::complex64: return is_float && size == 4;
    case DType::complex128: return is_float && size == 8;
    case DType::int8: return !is_float && size == 1 && is_signed;
    case DType::int16: return !is_float && size == 2 && is_signed;
    case DType::int32: return !is_float && size == 4 && is_signed;
    case DType::int64: return !is_float && size == 8 && is_signed;
    case DType::uint16:
    case DType::float16:
    case DType::bfloat16: return !is_float && size == 2 && !is_signed;
    case DType::uint32: return !is_float && size == 4 && !is_signed;
    case DType::uint64: return !is_float && size == 8 && !is_signed;
    case DType::uint8:
    case DType::bool_:
    case DType::string:
    case DType::int4:
    case DType::uint4:
    case DType::int2:
    case DType::float8_e4m3fn:
    case DType::float8_e5m2: return !is_float && size == 1 && !is_signed;
    default: return false;
  }
}

std::optional<Quantization> Tensor::quantization() const {
  const auto* q = tensor_table(m_, subgraph_, index_)->quantization();
  if (!q) return std::nullopt;
  Quantization out;
  out.scale = copy_vector(q->scale());
  out.zero_point = copy_vector(q->zero_point());
  out.min = copy_vector(q->min());
  out.max = copy_vector(q->max());
  out.quantized_dimension = q->quantized_dimension();
  if (out.scale.size() > 1 && shape().empty()) {
    // Several scales on a scalar [scales_on_scalar]: the runtime reads the first, and so does every reader here.
    out.scale.resize(1);
    if (out.zero_point.size() > 1) out.zero_point.resize(1);
  }
  switch (q->details_type()) {
    case tflite::QuantizationDetails_NONE:
      if (out.scale.empty() && out.min.empty() && out.max.empty()) return std::nullopt;
      break;
    case tflite::QuantizationDetails_CustomQuantization:
      out.scheme = Quantization::Scheme::custom;
      // The verifier accepts a union tag without its table.
      if (const auto* cq = q->details_as_CustomQuantization())
        if (const auto* c = cq->custom()) out.custom.assign(c->begin(), c->end());
      break;
    case tflite::QuantizationDetails_BlockwiseQuantization: {
      const auto* b = q->details_as_BlockwiseQuantization();
      out.scheme = Quantization::Scheme::blockwise;
      out.scales_tensor = b->scales();
      out.zero_points_tensor = b->zero_points();
      out.block_size = b->block_size();
      break;
    }
    case tflite::QuantizationDetails_MultiAxisQuantization: {
      const auto* mq = q->details_as_MultiAxisQuantization();
      out.scheme = Quantization::Scheme::multi_axis;
      out.scales_tensor = mq->scales();
      out.zero_points_tensor = mq->zero_points();
      out.block_size = mq->block_size();
      out.quantized_dimensions = copy_vector(mq->quantized_dimensions());
      break;
    }
    default:
      out.scheme = Quantization::Scheme::unknown;
      break;
  }
  return out;
}

std::optional<SparsitySpec> Tensor::sparsity() const {
  const auto* sp = tensor_table(m_, subgraph_, index_)->sparsity();
  if (!sp) return std::nullopt;
  return detail::to_sparsity_spec(sp);
}

// ---- Operator ---------------------------------------------------------------------------

std::int32_t Operator::opcode() const { return m_->opcodes[operator_table(m_, subgraph_, index_)->opcode_index()]; }
std::string_view Operator::op_name() const { return detail::builtin_op_name(opcode()); }
bool Operator::is_custom() const { return opcode() == tflite::BuiltinOperator_CUSTOM; }

std::string_view Operator::custom_code() const {
  const auto* code = m_->root->operator_codes()->Get(operator_table(m_, subgraph_, index_)->opcode_index());
  return as_view(code->custom_code());
}

std::int32_t Operator::version() const {
  return m_->root->operator_codes()->Get(operator_table(m_, subgraph_, index_)->opcode_index())->version();
}

std::span<const std::int32_t> Operator::inputs() const { return as_span(operator_table(m_, subgraph_, index_)->inputs()); }
std::span<const std::int32_t> Operator::outputs() const { return as_span(operator_table(m_, subgraph_, index_)->outputs()); }
std::span<const std::int32_t> Operator::intermediates() const {
  return as_span(operator_table(m_, subgraph_, index_)->intermediates());
}

std::vector<bool> Operator::mutating_variable_inputs() const {
  std::vector<bool> out;
  if (const auto* v = operator_table(m_, subgraph_, index_)->mutating_variable_inputs())
    for (std::uint8_t b : *v) out.push_back(b != 0);
  return out;
}

std::string_view Operator::options_type() const {
  return detail::options_type_name(operator_table(m_, subgraph_, index_));
}

std::span<const std::byte> Operator::custom_options() const {
  return m_->bytes(m_->subgraphs[subgraph_].operators[index_].custom_options);
}

Value Operator::options() const {
  const auto& rec = m_->subgraphs[subgraph_].operators[index_];
  if (is_custom()) {
    if (rec.flexbuffer_ok) return detail::decode_flexbuffer(m_->bytes(rec.custom_options));
    return Value(Value::Map{});
  }
  return detail::decode_builtin_options(operator_table(m_, subgraph_, index_));
}

}  // namespace litelens
