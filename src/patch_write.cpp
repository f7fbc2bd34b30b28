// Patching, part 2: rebuilding the file.
//
// The FlatBuffer is unpacked with the generated object API (tflite::ModelT, except the buffers,
// whose bytes are copied straight from the input into the new FlatBuffer so that weights are not
// held twice), changed, and packed again with FlatBufferBuilder. Buffers stored after the
// FlatBuffer are written after the new one, each 16-byte aligned, and their offsets patched into
// the finished FlatBuffer in place (the fields are written with a placeholder value, so they are
// present and fixed-size). The associated-file archive follows, its absolute offsets shifted.
// The result is re-opened with Model and compared with the input before it is handed out.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <tuple>

#include "litelens/atomic_file.h"
#include "litelens/patch.h"
#include "patch_internal.h"
#include "tflite_generated.h"
#include "zip_archive.h"

namespace litelens {

using Kind = PatchError::Kind;

namespace {

constexpr std::uint64_t kAlign = 16;
constexpr std::uint64_t kMaxFlatBuffer = FLATBUFFERS_MAX_BUFFER_SIZE - 1;

std::uint64_t align_up(std::uint64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

std::string tensor_label(const Model& model, int sg, int t) {
  return fmt::format("sg{} #{} '{}'", sg, t, model.subgraph(sg).tensor(t).name());
}

// ---- fields this build does not know ------------------------------------------------------------
//
// The object API carries only the fields of our schema. A file written against a newer schema
// could hold more; rewriting it would drop them silently, so such files are refused. The walk
// uses the generated mini-reflection tables.

const flatbuffers::TypeTable* union_member(const flatbuffers::TypeTable* u, std::int64_t tag) {
  std::size_t index = static_cast<std::size_t>(tag);
  if (u->values) {
    index = u->num_elems;
    for (std::size_t i = 0; i < u->num_elems; ++i)
      if (u->values[i] == tag) index = i;
  }
  if (index >= u->num_elems) return nullptr;
  const auto code = u->type_codes[index];
  if (code.sequence_ref < 0) return nullptr;
  return u->type_refs[code.sequence_ref]();
}

std::optional<std::string> unknown_field(const std::uint8_t* table, const flatbuffers::TypeTable* tt,
                                         const std::string& path, int depth) {
  if (depth > 32) return std::nullopt;
  const auto* t = reinterpret_cast<const flatbuffers::Table*>(table);
  const std::uint8_t* vtable = t->GetVTable();
  const auto vsize = flatbuffers::ReadScalar<flatbuffers::voffset_t>(vtable);
  const std::size_t slots = vsize >= 4 ? (vsize - 4) / 2 : 0;
  for (std::size_t id = tt->num_elems; id < slots; ++id)
    if (flatbuffers::ReadScalar<flatbuffers::voffset_t>(vtable + 4 + 2 * id) != 0)
      return fmt::format("{} has field id {}, unknown to this build's schema", path, id);
  for (std::size_t id = 0; id < tt->num_elems; ++id) {
    const auto field = static_cast<flatbuffers::voffset_t>(4 + 2 * id);
    if (!t->GetOptionalFieldOffset(field)) continue;
    const auto code = tt->type_codes[id];
    if (code.base_type != flatbuffers::ET_SEQUENCE || code.sequence_ref < 0) continue;
    const flatbuffers::TypeTable* ref = tt->type_refs[code.sequence_ref]();
    const std::string name = tt->names ? tt->names[id] : fmt::format("field{}", id);
    if (ref->st == flatbuffers::ST_TABLE) {
      if (code.is_repeating) {
        const auto* v = t->GetPointer<const flatbuffers::Vector<flatbuffers::Offset<flatbuffers::Table>>*>(field);
        for (flatbuffers::uoffset_t i = 0; v && i < v->size(); ++i)
          if (auto r = unknown_field(reinterpret_cast<const std::uint8_t*>(v->Get(i)), ref,
                                     fmt::format("{}.{}[{}]", path, name, i), depth + 1))
            return r;
      } else if (const auto* sub = t->GetPointer<const std::uint8_t*>(field)) {
        if (auto r = unknown_field(sub, ref, path + "." + name, depth + 1)) return r;
      }
    } else if (ref->st == flatbuffers::ST_UNION && !code.is_repeating && id > 0) {
      const std::int64_t tag = t->GetField<std::uint8_t>(static_cast<flatbuffers::voffset_t>(field - 2), 0);
      const flatbuffers::TypeTable* member = union_member(ref, tag);
      if (!member)
        return fmt::format("{}.{} holds union member {}, unknown to this build's schema", path, name, tag);
      if (member->st == flatbuffers::ST_TABLE)
        if (auto r = unknown_field(t->GetPointer<const std::uint8_t*>(field), member, path + "." + name, depth + 1))
          return r;
    }
  }
  return std::nullopt;
}

// The packing below mirrors the generated Create*(fbb, const *T*) functions for these tables;
// a schema that grows them must be reflected here.
void check_schema_shape() {
  if (tflite::ModelTypeTable()->num_elems != 10 || tflite::SubGraphTypeTable()->num_elems != 6 ||
      tflite::OperatorTypeTable()->num_elems != 14 || tflite::BufferTypeTable()->num_elems != 3 ||
      tflite::TensorTypeTable()->num_elems != 11 || tflite::QuantizationParametersTypeTable()->num_elems != 7 ||
      tflite::SparsityParametersTypeTable()->num_elems != 3 || tflite::DimensionMetadataTypeTable()->num_elems != 6)
    throw std::logic_error("patch: the tflite schema changed; update the packing in src/patch_write.cpp");
}

// ---- the plan -----------------------------------------------------------------------------------

struct Change {
  int subgraph = 0;
  int tensor = 0;
  std::optional<std::vector<std::byte>> bytes;  // new stored bytes
  std::optional<Quantization> quant;
  std::size_t report = 0;                       // index into PatchReport::tensors
};

// A range of bytes written after the FlatBuffer.
struct Payload {
  std::span<const std::byte> bytes;
  std::uint64_t out_offset = 0;
};

struct Relocation {
  std::uint64_t at = 0;     // offset inside the copied archive
  std::uint64_t value = 0;
  unsigned width = 4;
};

struct Output {
  flatbuffers::DetachedBuffer flatbuffer_owner;
  std::span<const std::byte> flatbuffer;
  std::vector<Payload> weights;
  std::vector<Payload> customs;
  std::span<const std::byte> archive;
  std::uint64_t archive_offset = 0;
  std::vector<Relocation> relocations;
  std::span<const std::byte> tail;  // unrecognised trailing bytes copied verbatim
  std::uint64_t tail_offset = 0;
  std::uint64_t size = 0;
};

struct Plan {
  std::map<std::pair<int, int>, Change> changes;
  std::vector<std::uint32_t> split_buffer;  // per new buffer: the buffer it was split from
  std::map<std::pair<int, int>, std::uint32_t> new_buffer_of;  // tensor -> its (new or reused) buffer
};

Plan prepare(const Model& model, const PatchSpec& spec, const PatchOptions& options, PatchReport& report) {
  Plan plan;
  const auto entry = [&](const PatchTarget& target, int tensor, const std::string& selector) -> Change& {
    auto [it, fresh] = plan.changes.try_emplace({target.subgraph, tensor});
    Change& c = it->second;
    if (fresh) {
      c.subgraph = target.subgraph;
      c.tensor = tensor;
      c.report = report.tensors.size();
      PatchedTensor r;
      r.selector = selector;
      r.subgraph = target.subgraph;
      r.tensor = tensor;
      r.name = std::string(model.subgraph(target.subgraph).tensor(tensor).name());
      r.via = target.via;
      r.buffer = model.subgraph(target.subgraph).tensor(tensor).buffer();
      report.tensors.push_back(std::move(r));
    } else if (report.tensors[c.report].selector != selector) {
      report.tensors[c.report].selector += ", " + selector;
    }
    return c;
  };

  for (const auto& u : spec.quantization) {
    const PatchTarget target = resolve_selector(model, u.selector, options.subgraph);
    const int tensor = target.tensor >= 0 ? target.tensor : target.selected_tensor;
    Change& c = entry(target, tensor, u.selector);
    if (c.quant)
      throw PatchError(Kind::duplicate, fmt::format("--set-quant {}: {} already gets new quantization parameters", u.selector,
                                                    tensor_label(model, target.subgraph, tensor)));
    c.quant = detail::apply_quant_update(model, target, tensor, u);
    report.tensors[c.report].quantization = true;
    const DType type = model.subgraph(target.subgraph).tensor(tensor).dtype();
    if (type == DType::float32 || type == DType::float16 || type == DType::bfloat16 || type == DType::float64)
      report.warnings.push_back(fmt::format("--set-quant {}: {} is {}; quantization parameters on a float tensor are "
                                            "unusual (the runtime may ignore them)",
                                            u.selector, tensor_label(model, target.subgraph, tensor), dtype_name(type)));
  }
  for (const auto& u : spec.values) {
    const PatchTarget target = resolve_selector(model, u.selector, options.subgraph);
    if (target.tensor < 0) (void)encode_values(model, target, u, options.quantize);  // throws not_constant
    const Tensor t = model.subgraph(target.subgraph).tensor(target.tensor);
    if (t.external_buffer() != 0)
      throw PatchError(Kind::not_constant, fmt::format("{}: {} is stored in an external file", u.selector,
                                                       target.describe(model)));
    Change& c = entry(target, target.tensor, u.selector);
    auto& r = report.tensors[c.report];
    std::string conversion;
    std::uint64_t clamped = 0;
    auto bytes = encode_values(model, target, u, options.quantize, c.quant, &conversion, &clamped);
    if (c.bytes) {
      // One constant reached by several selectors (a constant shared by several layers is
      // exported once per layer): updates that keep the stored bytes give way; others must agree.
      const auto old = t.data();
      const auto same_as_old = [&](const std::vector<std::byte>& b) { return std::ranges::equal(b, old); };
      if (same_as_old(bytes) || bytes == *c.bytes) continue;
      if (!same_as_old(*c.bytes))
        throw PatchError(Kind::duplicate, fmt::format("{}: {} already gets other new values (from {})", u.selector,
                                                      target.describe(model), r.selector));
    }
    c.bytes = std::move(bytes);
    r.conversion = std::move(conversion);
    r.clamped = clamped;
    r.values = true;
    r.bytes = c.bytes->size();
    if (r.clamped)
      report.warnings.push_back(fmt::format("{}: {} of {} quantized values were clamped to the {} range", u.selector,
                                            r.clamped, t.element_count(), dtype_name(t.dtype())));
  }
  // Values equal to the stored bytes change nothing (and need no buffer split).
  for (auto& [key, c] : plan.changes) {
    if (!c.bytes) continue;
    const auto old = model.subgraph(c.subgraph).tensor(c.tensor).data();
    if (c.bytes->size() == old.size() && std::equal(old.begin(), old.end(), c.bytes->begin())) {
      c.bytes.reset();
      report.tensors[c.report].unchanged = !c.quant;
    }
  }
  return plan;
}

// Decides which tensors get a buffer of their own: a buffer is split when some of its users
// keep the old bytes or users get different new bytes.
void assign_buffers(const Model& model, Plan& plan, PatchReport& report) {
  const std::size_t n_buffers = model.buffer_count();
  std::map<std::uint32_t, std::vector<std::pair<int, int>>> users;
  for (const Subgraph sg : model.subgraphs())
    for (const Tensor t : sg.tensors())
      users[t.buffer()].emplace_back(sg.index(), t.index());  // buffer 0 too: it may hold data
  std::set<std::uint32_t> metadata_buffers;
  for (const auto& m : model.metadata()) metadata_buffers.insert(m.buffer);
  if (const auto* legacy = tflite::GetModel(model.bytes().data())->metadata_buffer())
    for (std::int32_t b : *legacy)
      if (b >= 0) metadata_buffers.insert(static_cast<std::uint32_t>(b));

  std::map<std::uint32_t, std::vector<Change*>> patched;
  for (auto& [key, c] : plan.changes)
    if (c.bytes) patched[model.subgraph(c.subgraph).tensor(c.tensor).buffer()].push_back(&c);

  for (auto& [buffer, changes] : patched) {
    const auto& all = users[buffer];
    const bool others_keep = all.size() > changes.size() || metadata_buffers.count(buffer);
    // Group the patched users by their new bytes.
    std::vector<std::vector<Change*>> groups;
    for (Change* c : changes) {
      auto g = std::find_if(groups.begin(), groups.end(), [&](const auto& grp) { return *grp[0]->bytes == *c->bytes; });
      if (g == groups.end()) groups.push_back({c});
      else g->push_back(c);
    }
    for (std::size_t gi = 0; gi < groups.size(); ++gi) {
      std::uint32_t target = buffer;
      if (others_keep || gi > 0) {
        target = static_cast<std::uint32_t>(n_buffers + plan.split_buffer.size());
        plan.split_buffer.push_back(buffer);
      }
      for (Change* c : groups[gi]) {
        plan.new_buffer_of[{c->subgraph, c->tensor}] = target;
        auto& r = report.tensors[c->report];
        r.buffer = target;
        r.split = target != buffer;
      }
      if (target != buffer) {
        std::vector<std::string> sharers, moved;
        for (const auto& [s, t] : all) {
          if (sharers.size() == 8) {
            sharers.push_back(fmt::format("{} more tensors", all.size() - 8));
            break;
          }
          sharers.push_back(tensor_label(model, s, t));
        }
        if (metadata_buffers.count(buffer)) sharers.push_back("a metadata entry");
        for (Change* c : groups[gi]) moved.push_back(tensor_label(model, c->subgraph, c->tensor));
        report.warnings.push_back(fmt::format("buffer {} is shared by {}; split: {} now use{} new buffer {}", buffer,
                                              fmt::join(sharers, ", "), fmt::join(moved, ", "),
                                              moved.size() == 1 ? "s" : "", target));
      }
    }
  }
}

// ---- packing ------------------------------------------------------------------------------------

// A union's table. The verifier accepts a union tag whose table is absent (the object API then
// unpacks a null value, which the generated Pack dereferences); such a tag is written back as it
// was, tag without table, since readers treat the two forms differently (an absent options table
// means zero-initialized parameters to the runtime, an empty one the schema's defaults).
template <class Union>
flatbuffers::Offset<void> pack_union(flatbuffers::FlatBufferBuilder& fbb, const Union& u) {
  return u.value ? u.Pack(fbb) : flatbuffers::Offset<void>();
}

// The generated Create* functions for the tables below, with pack_union for their unions.
flatbuffers::Offset<tflite::QuantizationParameters> pack_quantization(flatbuffers::FlatBufferBuilder& fbb,
                                                                      const tflite::QuantizationParametersT& q) {
  const auto min = q.min.size() ? fbb.CreateVector(q.min) : 0;
  const auto max = q.max.size() ? fbb.CreateVector(q.max) : 0;
  const auto scale = q.scale.size() ? fbb.CreateVector(q.scale) : 0;
  const auto zero_point = q.zero_point.size() ? fbb.CreateVector(q.zero_point) : 0;
  const auto details = pack_union(fbb, q.details);
  return tflite::CreateQuantizationParameters(fbb, min, max, scale, zero_point, q.details.type, details,
                                              q.quantized_dimension);
}

flatbuffers::Offset<tflite::SparsityParameters> pack_sparsity(flatbuffers::FlatBufferBuilder& fbb,
                                                              const tflite::SparsityParametersT& s) {
  const auto order = s.traversal_order.size() ? fbb.CreateVector(s.traversal_order) : 0;
  const auto block_map = s.block_map.size() ? fbb.CreateVector(s.block_map) : 0;
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<tflite::DimensionMetadata>>> levels = 0;
  if (s.dim_metadata.size()) {
    std::vector<flatbuffers::Offset<tflite::DimensionMetadata>> offs;
    for (const auto& d : s.dim_metadata) {
      const auto segments = pack_union(fbb, d->array_segments);
      const auto indices = pack_union(fbb, d->array_indices);
      offs.push_back(tflite::CreateDimensionMetadata(fbb, d->format, d->dense_size, d->array_segments.type, segments,
                                                     d->array_indices.type, indices));
    }
    levels = fbb.CreateVector(offs);
  }
  return tflite::CreateSparsityParameters(fbb, order, block_map, levels);
}

flatbuffers::Offset<tflite::Tensor> pack_tensor(flatbuffers::FlatBufferBuilder& fbb, const tflite::TensorT& t) {
  const auto shape = t.shape.size() ? fbb.CreateVector(t.shape) : 0;
  const auto name = t.name.empty() ? 0 : fbb.CreateString(t.name);
  const auto quantization = t.quantization ? pack_quantization(fbb, *t.quantization) : 0;
  const auto sparsity = t.sparsity ? pack_sparsity(fbb, *t.sparsity) : 0;
  const auto signature = t.shape_signature.size() ? fbb.CreateVector(t.shape_signature) : 0;
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<tflite::VariantSubType>>> variants = 0;
  if (t.variant_tensors.size()) {
    std::vector<flatbuffers::Offset<tflite::VariantSubType>> offs;
    for (const auto& v : t.variant_tensors) offs.push_back(tflite::CreateVariantSubType(fbb, v.get()));
    variants = fbb.CreateVector(offs);
  }
  return tflite::CreateTensor(fbb, shape, t.type, t.buffer, name, quantization, t.is_variable, sparsity, signature,
                              t.has_rank, variants, t.external_buffer);
}

// As the generated CreateOperator, but the input and output lists are always written (the
// generated code omits empty vectors, and a reader may require the lists).
flatbuffers::Offset<tflite::Operator> pack_operator(flatbuffers::FlatBufferBuilder& fbb, const tflite::OperatorT& o) {
  const auto inputs = fbb.CreateVector(o.inputs);
  const auto outputs = fbb.CreateVector(o.outputs);
  const auto options = pack_union(fbb, o.builtin_options);
  const auto custom = o.custom_options.size() ? fbb.CreateVector(o.custom_options) : 0;
  const auto mutating = o.mutating_variable_inputs.size() ? fbb.CreateVector(o.mutating_variable_inputs) : 0;
  const auto intermediates = o.intermediates.size() ? fbb.CreateVector(o.intermediates) : 0;
  const auto options2 = pack_union(fbb, o.builtin_options_2);
  return tflite::CreateOperator(fbb, o.opcode_index, inputs, outputs, o.builtin_options.type, options, custom,
                                o.custom_options_format, mutating, intermediates, o.large_custom_options_offset,
                                o.large_custom_options_size, o.builtin_options_2.type, options2, o.debug_metadata_index);
}

flatbuffers::Offset<tflite::SubGraph> pack_subgraph(flatbuffers::FlatBufferBuilder& fbb, const tflite::SubGraphT& s) {
  std::vector<flatbuffers::Offset<tflite::Tensor>> tensors;
  for (const auto& t : s.tensors) tensors.push_back(pack_tensor(fbb, *t));
  std::vector<flatbuffers::Offset<tflite::Operator>> ops;
  for (const auto& o : s.operators) ops.push_back(pack_operator(fbb, *o));
  const auto tv = tensors.empty() ? 0 : fbb.CreateVector(tensors);
  const auto inputs = s.inputs.size() ? fbb.CreateVector(s.inputs) : 0;
  const auto outputs = s.outputs.size() ? fbb.CreateVector(s.outputs) : 0;
  const auto ov = ops.empty() ? 0 : fbb.CreateVector(ops);
  const auto name = s.name.empty() ? 0 : fbb.CreateString(s.name);
  return tflite::CreateSubGraph(fbb, tv, inputs, outputs, ov, name, s.debug_metadata_index);
}

template <class T, class TT>
std::vector<std::unique_ptr<TT>> unpack_all(const flatbuffers::Vector<flatbuffers::Offset<T>>* v) {
  std::vector<std::unique_ptr<TT>> out;
  if (v)
    for (const auto* e : *v) out.emplace_back(e->UnPack());
  return out;
}

template <class TT>
flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<typename TT::TableType>>> pack_all(
    flatbuffers::FlatBufferBuilder& fbb, const std::vector<std::unique_ptr<TT>>& items) {
  if (items.empty()) return 0;
  std::vector<flatbuffers::Offset<typename TT::TableType>> offs;
  for (const auto& i : items) offs.push_back(TT::TableType::Pack(fbb, i.get()));
  return fbb.CreateVector(offs);
}

void set_u64(flatbuffers::Table* table, flatbuffers::voffset_t field, std::uint64_t value) {
  if (!table->SetField<std::uint64_t>(field, value, 0))
    throw std::logic_error("patch: an offset field to rewrite is missing from the new FlatBuffer");
}

std::uint16_t rd16(const std::byte* p) {
  return static_cast<std::uint16_t>(std::to_integer<unsigned>(p[0]) | (std::to_integer<unsigned>(p[1]) << 8));
}
std::uint32_t rd32(const std::byte* p) { return rd16(p) | (static_cast<std::uint32_t>(rd16(p + 2)) << 16); }
std::uint64_t rd64(const std::byte* p) { return rd32(p) | (static_cast<std::uint64_t>(rd32(p + 4)) << 32); }

// Where the archive's absolute offsets sit, with their new values after moving it by `delta`.
std::vector<Relocation> archive_relocations(const Model& model, const detail::ZipDirectory& dir, std::int64_t delta) {
  std::vector<Relocation> out;
  const auto file = model.bytes();
  const std::uint64_t start = dir.archive_start;
  const auto moved = [&](std::uint64_t v, unsigned width, const char* what) {
    const std::int64_t nv = static_cast<std::int64_t>(v) + delta;
    if (nv < 0 || (width == 4 && nv >= 0xFFFFFFFFLL))
      throw PatchError(Kind::unsupported, fmt::format("the associated-file archive's {} would not fit its 32-bit field "
                                                      "after moving it (the archive would need ZIP64 records)", what));
    return static_cast<std::uint64_t>(nv);
  };
  std::uint64_t pos = dir.central_directory;
  for (std::size_t i = 0; i < dir.members.size(); ++i) {
    const std::byte* c = file.data() + pos;
    const std::uint64_t name_len = rd16(c + 28), extra_len = rd16(c + 30), comment_len = rd16(c + 32);
    const std::uint32_t off32 = rd32(c + 42);
    if (off32 != 0xFFFFFFFFu) {
      out.push_back({pos + 42 - start, moved(off32, 4, "member offset"), 4});
    } else {
      // ZIP64 extra field: 64-bit values for the fields set to all ones, in the order size,
      // compressed size, header offset.
      std::uint64_t k = 46 + name_len;
      const std::uint64_t end = k + extra_len;
      while (k + 4 <= end) {
        const std::uint16_t id = rd16(c + k), len = rd16(c + k + 2);
        if (id == 1) {
          std::uint64_t at = k + 4;
          if (rd32(c + 24) == 0xFFFFFFFFu) at += 8;
          if (rd32(c + 20) == 0xFFFFFFFFu) at += 8;
          out.push_back({pos + at - start, moved(rd64(c + at), 8, "member offset"), 8});
          break;
        }
        k += 4 + len;
      }
    }
    pos += 46 + name_len + extra_len + comment_len;
  }
  // The end record: the last 22 bytes plus a comment reaching the end of the file.
  std::uint64_t eocd = 0;
  for (std::uint64_t p = file.size() - 22 + 1; p-- > start;) {
    if (rd32(file.data() + p) == 0x06054b50 && p + 22 + rd16(file.data() + p + 20) == file.size()) {
      eocd = p;
      break;
    }
  }
  const std::uint32_t cd32 = rd32(file.data() + eocd + 16);
  if (cd32 != 0xFFFFFFFFu) out.push_back({eocd + 16 - start, moved(cd32, 4, "directory offset"), 4});
  if (dir.zip64 && eocd >= start + 20 && rd32(file.data() + eocd - 20) == 0x07064b50) {
    const std::uint64_t locator = eocd - 20;
    const std::uint64_t record_at = rd64(file.data() + locator + 8);
    out.push_back({locator + 8 - start, moved(record_at, 8, "ZIP64 record offset"), 8});
    std::uint64_t record = locator >= start + 56 && rd32(file.data() + locator - 56) == 0x06064b50 ? locator - 56 : record_at;
    if (record >= start && record + 56 <= file.size() && rd32(file.data() + record) == 0x06064b50)
      out.push_back({record + 48 - start, moved(rd64(file.data() + record + 48), 8, "directory offset"), 8});
  }
  return out;
}

Output build(const Model& model, const Plan& plan, PatchReport& report) {
  check_schema_shape();
  const auto file = model.bytes();
  const tflite::Model* root = tflite::GetModel(file.data());
  if (auto problem = unknown_field(reinterpret_cast<const std::uint8_t*>(root), tflite::ModelTypeTable(), "model", 0))
    throw PatchError(Kind::unsupported,
                     fmt::format("{}: {}; rewriting the model would drop it", model.label(), *problem));

  // Object API copy of everything but the buffers.
  tflite::ModelT m;
  m.version = root->version();
  m.operator_codes = unpack_all<tflite::OperatorCode, tflite::OperatorCodeT>(root->operator_codes());
  m.subgraphs = unpack_all<tflite::SubGraph, tflite::SubGraphT>(root->subgraphs());
  if (root->description()) m.description = root->description()->str();
  if (root->metadata_buffer()) m.metadata_buffer.assign(root->metadata_buffer()->begin(), root->metadata_buffer()->end());
  m.metadata = unpack_all<tflite::Metadata, tflite::MetadataT>(root->metadata());
  m.signature_defs = unpack_all<tflite::SignatureDef, tflite::SignatureDefT>(root->signature_defs());
  m.external_buffer_groups = unpack_all<tflite::ExternalBufferGroup, tflite::ExternalBufferGroupT>(root->external_buffer_groups());
  m.external_buffers = unpack_all<tflite::ExternalBuffer, tflite::ExternalBufferT>(root->external_buffers());

  // Tensor changes: new buffers and quantization.
  for (const auto& [key, c] : plan.changes) {
    auto& t = *m.subgraphs[c.subgraph]->tensors[c.tensor];
    if (auto it = plan.new_buffer_of.find(key); it != plan.new_buffer_of.end()) t.buffer = it->second;
    if (c.quant) {
      if (!t.quantization) t.quantization = std::make_unique<tflite::QuantizationParametersT>();
      auto& q = *t.quantization;
      q.scale = c.quant->scale;
      q.zero_point = c.quant->zero_point;
      q.quantized_dimension = c.quant->quantized_dimension;
      q.min = c.quant->min;
      q.max = c.quant->max;
    }
  }

  // Bytes per buffer: new ones where patched.
  const std::size_t n_old = model.buffer_count();
  const std::size_t n_all = n_old + plan.split_buffer.size();
  std::vector<const std::vector<std::byte>*> new_bytes(n_all, nullptr);
  for (const auto& [key, c] : plan.changes) {
    if (!c.bytes) continue;
    const auto it = plan.new_buffer_of.find(key);
    const std::uint32_t b = it != plan.new_buffer_of.end() ? it->second : model.subgraph(c.subgraph).tensor(c.tensor).buffer();
    new_bytes[b] = &*c.bytes;
  }

  // Size guard: the FlatBuffer holds every inline byte.
  std::uint64_t extra = 0;
  for (std::size_t b = n_old; b < n_all; ++b) extra += new_bytes[b]->size() + kAlign;
  for (const auto& [key, c] : plan.changes)
    if (c.quant) extra += 64 + 12 * c.quant->scale.size() + 4 * (c.quant->min.size() + c.quant->max.size());
  if (model.flatbuffer_size() + extra + (1u << 20) > kMaxFlatBuffer)
    throw PatchError(Kind::unsupported, "the rewritten FlatBuffer would exceed the 2 GB FlatBuffers limit");

  flatbuffers::FlatBufferBuilder fbb(static_cast<std::size_t>(model.flatbuffer_size() + extra + 4096));

  // Outside payloads: original ranges deduplicated (the converter shares identical constants).
  Output out;
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::size_t> weight_index, custom_index;
  std::vector<std::pair<std::uint32_t, std::size_t>> buffer_payload;  // buffer -> weights[i]
  std::vector<std::tuple<int, int, std::size_t>> op_payload;          // (sg, op) -> customs[i]

  const auto* buffers = root->buffers();
  std::vector<flatbuffers::Offset<tflite::Buffer>> buffer_offsets;
  buffer_offsets.reserve(n_all);
  // Outside payloads in the order of their original offsets (new splits last).
  std::vector<std::uint32_t> outside_order;
  for (std::uint32_t b = 0; b < n_all; ++b) {
    const std::uint32_t src = b < n_old ? b : plan.split_buffer[b - n_old];
    const auto* buf = buffers->Get(src);
    if (!buf->data() && buf->offset() > 1 && buf->size() > 0) outside_order.push_back(b);
  }
  std::stable_sort(outside_order.begin(), outside_order.end(), [&](std::uint32_t x, std::uint32_t y) {
    if ((x >= n_old) != (y >= n_old)) return x < n_old;
    if (x >= n_old) return x < y;
    return buffers->Get(x)->offset() < buffers->Get(y)->offset();
  });
  for (std::uint32_t b : outside_order) {
    if (new_bytes[b]) {
      out.weights.push_back({*new_bytes[b], 0});
      buffer_payload.emplace_back(b, out.weights.size() - 1);
      continue;
    }
    const auto* buf = buffers->Get(b);
    const auto key = std::make_pair(buf->offset(), buf->size());
    auto [it, fresh] = weight_index.try_emplace(key, out.weights.size());
    if (fresh) out.weights.push_back({file.subspan(buf->offset(), buf->size()), 0});
    buffer_payload.emplace_back(b, it->second);
  }
  std::set<std::uint32_t> outside(outside_order.begin(), outside_order.end());

  for (std::uint32_t b = 0; b < n_all; ++b) {
    const std::uint32_t src = b < n_old ? b : plan.split_buffer[b - n_old];
    const auto* buf = buffers->Get(src);
    flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>> data = 0;
    std::uint64_t offset = 0, size = 0;
    if (outside.count(b)) {
      offset = 1;  // placeholder, rewritten below
      size = new_bytes[b] ? new_bytes[b]->size() : buf->size();
    } else if (buf->data()) {
      std::span<const std::byte> bytes;
      if (new_bytes[b]) bytes = *new_bytes[b];
      else bytes = {reinterpret_cast<const std::byte*>(buf->data()->data()), buf->data()->size()};
      if (!bytes.empty()) {
        fbb.ForceVectorAlignment(bytes.size(), sizeof(std::uint8_t), 16);
        data = fbb.CreateVector(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
      }
    } else if (buf->offset() <= 1) {
      offset = buf->offset();  // "not set" placeholders stay as they were
      size = buf->size();
    }
    buffer_offsets.push_back(tflite::CreateBuffer(fbb, data, offset, size));
  }

  // Custom options stored after the FlatBuffer.
  for (std::size_t s = 0; s < m.subgraphs.size(); ++s) {
    for (std::size_t o = 0; o < m.subgraphs[s]->operators.size(); ++o) {
      auto& op = *m.subgraphs[s]->operators[o];
      if (op.large_custom_options_offset <= 1 || op.large_custom_options_size == 0) continue;
      const std::uint64_t off = op.large_custom_options_offset, size = op.large_custom_options_size;
      if (size > file.size() || off > file.size() - size) continue;  // unused by readers; left as it is
      auto [it, fresh] = custom_index.try_emplace({off, size}, out.customs.size());
      if (fresh) out.customs.push_back({file.subspan(off, size), 0});
      op_payload.emplace_back(static_cast<int>(s), static_cast<int>(o), it->second);
      op.large_custom_options_offset = 1;  // placeholder
    }
  }

  // The Model table, in the generated CreateModel's order.
  const auto codes = pack_all(fbb, m.operator_codes);
  std::vector<flatbuffers::Offset<tflite::SubGraph>> sg_offsets;
  for (const auto& sg : m.subgraphs) sg_offsets.push_back(pack_subgraph(fbb, *sg));
  const auto subgraphs = sg_offsets.empty() ? 0 : fbb.CreateVector(sg_offsets);
  const auto description = m.description.empty() ? 0 : fbb.CreateString(m.description);
  const auto buffer_vec = buffer_offsets.empty() ? 0 : fbb.CreateVector(buffer_offsets);
  const auto metadata_buffer = m.metadata_buffer.size() ? fbb.CreateVector(m.metadata_buffer) : 0;
  const auto metadata = pack_all(fbb, m.metadata);
  const auto signatures = pack_all(fbb, m.signature_defs);
  const auto groups = pack_all(fbb, m.external_buffer_groups);
  const auto externals = pack_all(fbb, m.external_buffers);
  fbb.Finish(tflite::CreateModel(fbb, m.version, codes, subgraphs, description, buffer_vec, metadata_buffer, metadata,
                                 signatures, groups, externals),
             tflite::ModelIdentifier());
  const std::uint64_t fb_size = fbb.GetSize();
  if (fb_size > kMaxFlatBuffer)
    throw PatchError(Kind::unsupported, "the rewritten FlatBuffer exceeds the 2 GB FlatBuffers limit");

  // Layout after the FlatBuffer (as the converter writes it: padding to 16, the weights each
  // aligned to 16, 16 bytes of slack, the custom options each aligned to 16, padding to 16).
  std::uint64_t pos = fb_size;
  if (!out.weights.empty() || !out.customs.empty()) {
    pos = fb_size + (kAlign - fb_size % kAlign);
    for (auto& p : out.weights) {
      pos = align_up(pos);
      p.out_offset = pos;
      pos += p.bytes.size();
    }
    if (!out.weights.empty()) pos += kAlign;
    for (auto& p : out.customs) {
      pos = align_up(pos);
      p.out_offset = pos;
      pos += p.bytes.size();
    }
    pos = align_up(pos);
  }
  report.outside_payloads = out.weights.size();

  // Patch the real offsets into the finished FlatBuffer.
  out.flatbuffer_owner = fbb.Release();
  std::uint8_t* fb = out.flatbuffer_owner.data();
  auto* new_root = flatbuffers::GetMutableRoot<tflite::Model>(fb);
  for (const auto& [b, i] : buffer_payload)
    set_u64(reinterpret_cast<flatbuffers::Table*>(const_cast<tflite::Buffer*>(new_root->buffers()->Get(b))),
            tflite::Buffer::VT_OFFSET, out.weights[i].out_offset);
  for (const auto& [s, o, i] : op_payload) {
    const auto* op = new_root->subgraphs()->Get(s)->operators()->Get(o);
    set_u64(reinterpret_cast<flatbuffers::Table*>(const_cast<tflite::Operator*>(op)),
            tflite::Operator::VT_LARGE_CUSTOM_OPTIONS_OFFSET, out.customs[i].out_offset);
  }
  out.flatbuffer = {reinterpret_cast<const std::byte*>(fb), static_cast<std::size_t>(fb_size)};
  report.flatbuffer_size = fb_size;

  // What follows the referenced data in the input: an archive, or other bytes.
  std::uint64_t referenced_end = model.flatbuffer_size();
  for (const auto* buf : *buffers)
    if (!buf->data() && buf->offset() > 1 && buf->size() <= file.size() && buf->offset() <= file.size() - buf->size())
      referenced_end = std::max<std::uint64_t>(referenced_end, buf->offset() + buf->size());
  for (const auto& [range, i] : custom_index) referenced_end = std::max(referenced_end, range.first + range.second);
  const auto dir = detail::read_zip_directory(file, model.flatbuffer_size(), model.label());
  std::uint64_t tail_start = referenced_end;
  std::uint64_t tail_end = file.size();
  if (dir) {
    report.archive = true;
    out.archive = file.subspan(dir->archive_start);
    out.archive_offset = pos;
    const std::int64_t delta = static_cast<std::int64_t>(pos) - static_cast<std::int64_t>(dir->archive_start);
    if (dir->offset_base == 0 && delta != 0) {
      out.relocations = archive_relocations(model, *dir, delta);
      report.archive_offsets_rewritten = true;
    }
    pos += out.archive.size();
    tail_end = std::max(tail_start, dir->archive_start);
  }
  if (tail_end > tail_start) {
    const auto tail = file.subspan(tail_start, tail_end - tail_start);
    const auto nonzero = static_cast<std::uint64_t>(
        std::count_if(tail.begin(), tail.end(), [](std::byte b) { return b != std::byte{0}; }));
    if (nonzero && !dir) {
      out.tail = tail;
      out.tail_offset = pos;
      pos += tail.size();
      report.warnings.push_back(fmt::format("{} bytes after the model's data are neither weights nor an archive; copied "
                                            "verbatim to the end of the output",
                                            tail.size()));
    } else if (nonzero) {
      report.warnings.push_back(fmt::format("{} bytes between the model's data and its archive belong to neither; "
                                            "not copied",
                                            tail.size()));
    }
  }
  out.size = pos;
  return out;
}

template <class Write>
void write_output(const Output& out, Write&& write) {
  static const std::array<std::byte, kAlign * 2> zeros{};
  std::uint64_t pos = 0;
  const auto pad_to = [&](std::uint64_t target) {
    while (pos < target) {
      const std::uint64_t n = std::min<std::uint64_t>(target - pos, zeros.size());
      write(std::span<const std::byte>(zeros.data(), n));
      pos += n;
    }
  };
  const auto put = [&](std::span<const std::byte> bytes) {
    write(bytes);
    pos += bytes.size();
  };
  put(out.flatbuffer);
  for (const auto& p : out.weights) {
    pad_to(p.out_offset);
    put(p.bytes);
  }
  for (const auto& p : out.customs) {
    pad_to(p.out_offset);
    put(p.bytes);
  }
  if (!out.archive.empty()) {
    pad_to(out.archive_offset);
    std::vector<Relocation> rel = out.relocations;
    std::sort(rel.begin(), rel.end(), [](const auto& a, const auto& b) { return a.at < b.at; });
    std::uint64_t done = 0;
    for (const auto& r : rel) {
      put(out.archive.subspan(done, r.at - done));
      std::array<std::byte, 8> v{};
      for (unsigned i = 0; i < r.width; ++i) v[i] = static_cast<std::byte>((r.value >> (8 * i)) & 0xff);
      put(std::span<const std::byte>(v.data(), r.width));
      done = r.at + r.width;
    }
    put(out.archive.subspan(done));
  }
  if (!out.tail.empty()) {
    pad_to(out.tail_offset);
    put(out.tail);
  }
  pad_to(out.size);
}

// ---- checking the result ------------------------------------------------------------------------

// Whether a constant's bytes are stored by offset (Buffer.offset/size) rather than inline.
bool stored_by_offset(const Model& model, const Tensor& t) {
  const auto* buf = tflite::GetModel(model.bytes().data())->buffers()->Get(t.buffer());
  return !buf->data() && buf->offset() > 1;
}

// Oddities of layout that a rewrite repairs: every payload is written once, after the new
// FlatBuffer. What the tensors read does not change; only the warning goes.
bool repaired_by_rewrite(std::string_view code) {
  return code == "buffer_inside_flatbuffer" || code == "overlapping_buffers";
}

// Oddities of a tensor's quantization parameters, which --set-quant replaces with clean ones.
bool quantization_oddity(std::string_view code) {
  return code == "zero_point_count" || code == "extra_scales" || code == "scales_on_scalar";
}

// The warnings the output must show: the input's, less the repaired ones and the quantization
// oddities of tensors that get new parameters. Offsets are left out: they move.
std::vector<std::string> expected_warnings(const Model& model, const Plan& plan) {
  std::vector<std::string> out;
  for (const Warning& w : model.warnings()) {
    if (repaired_by_rewrite(w.code)) continue;
    if (w.tensor >= 0 && quantization_oddity(w.code)) {
      const auto change = plan.changes.find({w.subgraph, w.tensor});
      if (change != plan.changes.end() && change->second.quant) continue;
    }
    out.push_back(fmt::format("[{}] {}", w.code, w.message));
  }
  return out;
}

void verify(const Model& in, const Model& out, const Plan& plan,
            const std::map<std::pair<int, int>, std::span<const std::byte>>& expected, const std::string& label) {
  const auto fail = [&](const std::string& why) {
    throw Error(ErrorKind::output, label, "the patched model does not check out (a litelens bug): " + why);
  };
  if (in.subgraph_count() != out.subgraph_count()) fail("subgraph count changed");
  if (in.description() != out.description()) fail("description changed");
  // Warnings are kept at most 1000 (validate.cpp); past that the lists are cut at different places.
  auto want_warnings = expected_warnings(in, plan);
  auto got_warnings = expected_warnings(out, Plan{});
  if (in.warnings().size() >= 1000 || out.warnings().size() >= 1000) {
    const std::size_t n = std::min(want_warnings.size(), got_warnings.size());
    want_warnings.resize(n);
    got_warnings.resize(n);
  }
  if (want_warnings != got_warnings) {
    const auto [x, y] = std::ranges::mismatch(want_warnings, got_warnings);
    fail(fmt::format("its warnings differ from the input's: expected {}, got {}",
                     x == want_warnings.end() ? "nothing more" : *x, y == got_warnings.end() ? "nothing more" : *y));
  }
  for (const Subgraph a : in.subgraphs()) {
    const Subgraph b = out.subgraph(a.index());
    if (a.tensor_count() != b.tensor_count() || a.operator_count() != b.operator_count())
      fail(fmt::format("subgraph {} changed size", a.index()));
    for (const Tensor ta : a.tensors()) {
      const Tensor tb = b.tensor(ta.index());
      const std::string where = fmt::format("sg{} #{}", a.index(), ta.index());
      if (ta.name() != tb.name() || ta.dtype_code() != tb.dtype_code() ||
          !std::ranges::equal(ta.shape(), tb.shape()) || !std::ranges::equal(ta.shape_signature(), tb.shape_signature()) ||
          ta.is_constant() != tb.is_constant() || ta.is_variable() != tb.is_variable() ||
          ta.is_sparse() != tb.is_sparse() || ta.external_buffer() != tb.external_buffer())
        fail(where + " changed name, dtype, shape, constness or storage");
      const auto key = std::make_pair(a.index(), ta.index());
      const auto want = expected.count(key) ? expected.at(key) : ta.data();
      if (!std::ranges::equal(want, tb.data())) fail(where + " does not hold the expected bytes");
      if (tb.is_constant() && *tb.data_offset() % kAlign != 0) fail(where + " data is not 16-byte aligned");
      // Data stored by offset stays stored by offset, and in the output it follows the FlatBuffer
      // (an input may point such a buffer into its own FlatBuffer: warning buffer_inside_flatbuffer).
      if (ta.is_constant() && (stored_by_offset(in, ta) != stored_by_offset(out, tb) ||
                               (stored_by_offset(out, tb) && *tb.data_offset() < out.flatbuffer_size())))
        fail(where + " moved between the FlatBuffer and the data after it");
      const auto change = plan.changes.find(key);
      const auto qa = change != plan.changes.end() && change->second.quant ? change->second.quant : ta.quantization();
      const auto qb = tb.quantization();
      // Compared as written: a damaged file may hold NaN scales, which must survive unchanged.
      if (qa.has_value() != qb.has_value() || (qa && !same_as_written(*qa, *qb)))
        fail(where + " has unexpected quantization parameters");
    }
    for (const Operator oa : a.operators()) {
      const Operator ob = b.op(oa.index());
      if (oa.opcode() != ob.opcode() || !std::ranges::equal(oa.inputs(), ob.inputs()) ||
          !std::ranges::equal(oa.outputs(), ob.outputs()) || !std::ranges::equal(oa.custom_options(), ob.custom_options()))
        fail(fmt::format("sg{} operator {} changed", a.index(), oa.index()));
    }
  }
  const auto ma = in.metadata(), mb = out.metadata();
  if (ma.size() != mb.size()) fail("metadata entries changed");
  for (std::size_t i = 0; i < ma.size(); ++i)
    if (ma[i].name != mb[i].name || !std::ranges::equal(ma[i].data, mb[i].data)) fail("metadata '" + ma[i].name + "' changed");
  const auto sa = in.signatures(), sb = out.signatures();
  if (sa.size() != sb.size()) fail("signatures changed");
  for (std::size_t i = 0; i < sa.size(); ++i)
    if (sa[i].key != sb[i].key || sa[i].subgraph != sb[i].subgraph || sa[i].inputs.size() != sb[i].inputs.size() ||
        sa[i].outputs.size() != sb[i].outputs.size())
      fail("signature '" + sa[i].key + "' changed");
  const auto za = detail::read_zip_directory(in.bytes(), in.flatbuffer_size(), in.label());
  const auto zb = detail::read_zip_directory(out.bytes(), out.flatbuffer_size(), out.label());
  if (za.has_value() != zb.has_value()) fail("the associated-file archive was not carried over");
  if (za) {
    if (za->members.size() != zb->members.size()) fail("the archive's member count changed");
    for (std::size_t i = 0; i < za->members.size(); ++i) {
      const auto& x = za->members[i];
      const auto& y = zb->members[i];
      if (x.name != y.name || x.crc32 != y.crc32 || x.compressed_size != y.compressed_size ||
          !std::ranges::equal(in.bytes().subspan(x.data_offset, x.compressed_size),
                              out.bytes().subspan(y.data_offset, y.compressed_size)))
        fail("archive member '" + x.name + "' changed");
    }
  }
}

struct Prepared {
  Plan plan;
  Output output;
  std::map<std::pair<int, int>, std::span<const std::byte>> expected;  // tensors whose bytes change
};

std::unique_ptr<Prepared> prepare_all(const Model& model, const PatchSpec& spec, const PatchOptions& options,
                                      PatchReport& report) {
  auto p = std::make_unique<Prepared>();
  p->plan = prepare(model, spec, options, report);
  assign_buffers(model, p->plan, report);
  p->output = build(model, p->plan, report);
  // A buffer is rewritten in place only when every tensor using it gets the same new bytes (see
  // assign_buffers), so the tensors with new bytes are exactly the patched ones.
  for (const auto& [key, c] : p->plan.changes)
    if (c.bytes) p->expected[key] = *c.bytes;
  report.output_size = p->output.size;
  return p;
}

std::function<void(const std::filesystem::path&)>& output_hook_for_testing() {
  static std::function<void(const std::filesystem::path&)> hook;
  return hook;
}

}  // namespace

void detail::set_patch_output_hook_for_testing(std::function<void(const std::filesystem::path& temp)> hook) {
  output_hook_for_testing() = std::move(hook);
}

std::vector<std::byte> patch_to_memory(const Model& model, const PatchSpec& spec, const PatchOptions& options,
                                       PatchReport* report_out) {
  PatchReport report;
  auto p = prepare_all(model, spec, options, report);
  std::vector<std::byte> bytes;
  bytes.reserve(p->output.size);
  write_output(p->output, [&](std::span<const std::byte> s) { bytes.insert(bytes.end(), s.begin(), s.end()); });
  const Model out = Model::from_bytes(bytes, "<patched>");
  verify(model, out, p->plan, p->expected, "<patched>");
  if (report_out) *report_out = std::move(report);
  return bytes;
}

PatchReport patch_model(const Model& model, const PatchSpec& spec, const std::filesystem::path& output,
                        const PatchOptions& options) {
  std::error_code ec;
  if (std::filesystem::exists(output, ec) && std::filesystem::equivalent(model.label(), output, ec) && !ec &&
      !options.in_place)
    throw PatchError(Kind::in_place_required,
                     fmt::format("{} is the input model; pass --in-place (in_place) to replace it", output.string()));
  PatchReport report;
  auto p = prepare_all(model, spec, options, report);
  // Writing over a file keeps its permissions: a 0600 model must not come back world-readable.
  // Links are followed only in place, to the input itself: an -o path that is a link planted by
  // someone else (in /tmp, say) must not redirect the write to a file of the caller's; it is
  // replaced by the new file instead.
  const bool through_link = options.in_place && std::filesystem::equivalent(model.label(), output, ec) && !ec;
  AtomicFile file(output, {.follow_symlinks = through_link, .keep_attributes = true});
  write_output(p->output, [&](std::span<const std::byte> s) { file.write(s); });
  if (output_hook_for_testing()) output_hook_for_testing()(file.temp_path());
  {
    Result<Model> reopened = Model::try_open(file.temp_path());
    if (!reopened)
      throw Error(ErrorKind::output, output.string(),
                  "the patched model does not validate (a litelens bug): " + reopened.error().message());
    verify(model, reopened.value(), p->plan, p->expected, output.string());
  }
  file.commit();
  return report;
}

}  // namespace litelens
