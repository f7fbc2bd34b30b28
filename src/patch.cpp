// Patching, part 1: selectors, turning new values into stored bytes, and --set-quant specs.
// The rewriting of the file is in patch_write.cpp, reading values files in patch_files.cpp.
#include "litelens/patch.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "litelens/decode.h"
#include "edit_distance.h"
#include "patch_internal.h"

namespace litelens {

using Kind = PatchError::Kind;

std::string_view patch_error_kind_name(PatchError::Kind kind) noexcept {
  switch (kind) {
    case Kind::unknown_selector: return "unknown_selector";
    case Kind::ambiguous_selector: return "ambiguous_selector";
    case Kind::not_constant: return "not_constant";
    case Kind::shape_mismatch: return "shape_mismatch";
    case Kind::dtype_mismatch: return "dtype_mismatch";
    case Kind::value_out_of_range: return "value_out_of_range";
    case Kind::sparsity_mismatch: return "sparsity_mismatch";
    case Kind::bad_quantization: return "bad_quantization";
    case Kind::unsupported: return "unsupported";
    case Kind::duplicate: return "duplicate";
    case Kind::in_place_required: return "in_place_required";
    case Kind::bad_values_file: return "bad_values_file";
    case Kind::manifest_mismatch: return "manifest_mismatch";
  }
  return "unknown";
}

namespace {

std::string tensor_label(const Model& model, int sg, int t) {
  return fmt::format("sg{} #{} '{}'", sg, t, model.subgraph(sg).tensor(t).name());
}

std::string shape_text(std::span<const std::int64_t> s) { return fmt::format("[{}]", fmt::join(s, ",")); }
std::string shape_text(std::span<const std::int32_t> s) { return fmt::format("[{}]", fmt::join(s, ",")); }

std::vector<std::string> closest(std::string_view wanted, const std::vector<std::string>& names, std::size_t limit) {
  std::vector<std::pair<std::size_t, const std::string*>> scored;
  for (const auto& n : names) scored.emplace_back(detail::edit_distance(wanted, n), &n);
  std::stable_sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> out;
  for (const auto& [d, n] : scored) {
    if (out.size() >= limit) break;
    if (std::find(out.begin(), out.end(), *n) == out.end()) out.push_back(*n);
  }
  return out;
}

// Follows DEQUANTIZE / DENSIFY producers back from a non-constant tensor to its constant.
void follow_to_constant(const Subgraph& sg, PatchTarget& target) {
  int t = target.selected_tensor;
  for (int step = 0; step < 8; ++step) {
    if (sg.tensor(t).is_constant()) {
      target.tensor = t;
      return;
    }
    int producer = -1;
    for (const Operator op : sg.operators()) {
      for (std::int32_t out : op.outputs())
        if (out == t) producer = op.index();
      if (producer >= 0) break;
    }
    if (producer < 0) break;
    const Operator op = sg.op(producer);
    if (op.op_name() != "DEQUANTIZE" && op.op_name() != "DENSIFY") break;
    if (op.inputs().empty() || op.inputs()[0] < 0) break;
    target.via.emplace_back(op.op_name());
    t = op.inputs()[0];
  }
  target.via.clear();
  target.tensor = -1;
}

// "sg3.op12.CONV_2D/filter" -> (3, 12, "CONV_2D", "filter")
struct KeyParts {
  int subgraph = 0;
  int op = 0;
  std::string op_name;
  std::string role;
};

std::optional<KeyParts> parse_layer_key(std::string_view s) {
  const auto slash = s.find('/');
  if (slash == std::string_view::npos || s.substr(0, 2) != "sg") return std::nullopt;
  const std::string_view key = s.substr(0, slash);
  KeyParts k;
  k.role = std::string(s.substr(slash + 1));
  const char* p = key.data() + 2;
  const char* end = key.data() + key.size();
  auto r = std::from_chars(p, end, k.subgraph);
  if (r.ec != std::errc() || r.ptr + 3 > end || std::string_view(r.ptr, 3) != ".op") return std::nullopt;
  r = std::from_chars(r.ptr + 3, end, k.op);
  if (r.ec != std::errc() || r.ptr >= end || *r.ptr != '.') return std::nullopt;
  k.op_name.assign(r.ptr + 1, end);
  if (k.op_name.empty() || k.role.empty() || k.subgraph < 0 || k.op < 0) return std::nullopt;
  return k;
}

}  // namespace

std::string PatchTarget::describe(const Model& model) const {
  const int t = tensor >= 0 ? tensor : selected_tensor;
  std::string out = tensor_label(model, subgraph, t);
  if (!via.empty()) out += fmt::format(" (via {} from #{})", fmt::join(via, ", "), selected_tensor);
  return out;
}

PatchTarget resolve_selector(const Model& model, std::string_view selector, std::optional<int> subgraph) {
  if (subgraph && (*subgraph < 0 || static_cast<std::size_t>(*subgraph) >= model.subgraph_count()))
    throw PatchError(Kind::unknown_selector, fmt::format("subgraph {} does not exist (the model has {})", *subgraph,
                                                         model.subgraph_count()));
  PatchTarget target;
  if (selector.empty()) throw PatchError(Kind::unknown_selector, "empty selector");

  // "#N"
  if (selector[0] == '#') {
    int index = -1;
    const auto r = std::from_chars(selector.data() + 1, selector.data() + selector.size(), index);
    if (r.ec != std::errc() || r.ptr != selector.data() + selector.size() || index < 0)
      throw PatchError(Kind::unknown_selector, fmt::format("'{}' is not a tensor index (#N)", selector));
    target.subgraph = subgraph.value_or(0);
    const Subgraph sg = model.subgraph(target.subgraph);
    if (static_cast<std::size_t>(index) >= sg.tensor_count())
      throw PatchError(Kind::unknown_selector, fmt::format("tensor #{} does not exist in subgraph {} (it has {} tensors)",
                                                           index, target.subgraph, sg.tensor_count()));
    target.selected_tensor = index;
    follow_to_constant(sg, target);
    return target;
  }

  // "<layer key>/<role>"
  if (const auto key = parse_layer_key(selector)) {
    if (static_cast<std::size_t>(key->subgraph) < model.subgraph_count() &&
        static_cast<std::size_t>(key->op) < model.subgraph(key->subgraph).operator_count()) {
      Layer l = layer(model, key->subgraph, key->op);
      if (l.op != key->op_name)
        throw PatchError(Kind::unknown_selector, fmt::format("'{}': operator {} of subgraph {} is {}, not {} (key {})",
                                                             selector, key->op, key->subgraph, l.op, key->op_name, l.key()));
      const Param* p = l.param(key->role);
      if (!p) {
        std::vector<std::string> roles;
        for (const auto& q : l.params) roles.push_back(q.role);
        throw PatchError(Kind::unknown_selector,
                         fmt::format("'{}': layer {} has no parameter '{}' (it has: {})", selector, l.key(), key->role,
                                     fmt::join(roles, ", ")));
      }
      target.subgraph = key->subgraph;
      target.selected_tensor = p->tensor;
      target.tensor = p->stored_tensor;
      target.via = p->via;
      target.param = *p;
      target.layer = std::move(l);
      return target;
    }
    // Not a layer of this model: it may still be a tensor name; fall through.
  }

  // A tensor name.
  std::vector<std::pair<int, int>> found;
  std::vector<std::string> names;
  for (const Subgraph sg : model.subgraphs()) {
    if (subgraph && sg.index() != *subgraph) continue;
    for (const Tensor t : sg.tensors()) {
      if (t.name() == selector) found.emplace_back(sg.index(), t.index());
      if (found.empty() && names.size() < 100000) names.emplace_back(t.name());
    }
  }
  if (found.empty()) {
    std::string message = fmt::format("no tensor or layer parameter matches '{}'", selector);
    if (parse_layer_key(selector)) message += " (it looks like a layer key, but that layer does not exist)";
    const auto close = closest(selector, names, 5);
    if (!close.empty()) message += fmt::format("; closest tensor names: {}", fmt::join(close, ", "));
    throw PatchError(Kind::unknown_selector, message);
  }
  if (found.size() > 1) {
    std::vector<std::string> where;
    for (const auto& [s, t] : found) where.push_back(fmt::format("sg{} #{}", s, t));
    throw PatchError(Kind::ambiguous_selector,
                     fmt::format("the name '{}' is used by {} tensors ({}); select one with #N (and --subgraph)",
                                 selector, found.size(), fmt::join(where, ", ")));
  }
  target.subgraph = found[0].first;
  target.selected_tensor = found[0].second;
  follow_to_constant(model.subgraph(target.subgraph), target);
  return target;
}

// ---- values -> stored bytes -------------------------------------------------------------------

namespace {

template <class T>
T load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

template <class T>
void store(std::byte* p, T v) {
  std::memcpy(p, &v, sizeof(T));
}

// Dense element type of a stored dtype: packed types as one byte per value.
DType element_type(DType stored) {
  if (stored == DType::int4 || stored == DType::int2) return DType::int8;
  if (stored == DType::uint4) return DType::uint8;
  return stored;
}

bool is_quantizable_int(DType t) {
  switch (t) {
    case DType::int8:
    case DType::uint8:
    case DType::int16:
    case DType::uint16:
    case DType::int32:
    case DType::uint32:
    case DType::int64:
    case DType::int4:
    case DType::uint4:
    case DType::int2: return true;
    default: return false;
  }
}

// The value range a stored integer dtype can hold.
std::pair<double, double> int_range(DType t) {
  switch (t) {
    case DType::int8: return {-128, 127};
    case DType::uint8: return {0, 255};
    case DType::int16: return {-32768, 32767};
    case DType::uint16: return {0, 65535};
    case DType::int32: return {-2147483648.0, 2147483647.0};
    case DType::uint32: return {0, 4294967295.0};
    case DType::int64: return {-9223372036854775808.0, 9223372036854775807.0};
    case DType::int4: return {-8, 7};
    case DType::uint4: return {0, 15};
    case DType::int2: return {-2, 1};
    default: return {0, 0};
  }
}

// Writes integer `v` (already in range) as element type `e`.
void store_int(std::byte* p, DType e, std::int64_t v) {
  switch (e) {
    case DType::int8: store<std::int8_t>(p, static_cast<std::int8_t>(v)); break;
    case DType::uint8: store<std::uint8_t>(p, static_cast<std::uint8_t>(v)); break;
    case DType::int16: store<std::int16_t>(p, static_cast<std::int16_t>(v)); break;
    case DType::uint16: store<std::uint16_t>(p, static_cast<std::uint16_t>(v)); break;
    case DType::int32: store<std::int32_t>(p, static_cast<std::int32_t>(v)); break;
    case DType::uint32: store<std::uint32_t>(p, static_cast<std::uint32_t>(v)); break;
    case DType::int64: store<std::int64_t>(p, v); break;
    default: throw std::logic_error("store_int: not an integer element type");
  }
}

// The TFLite runtime's affine quantizer (reference_ops::AffineQuantize and the per-channel
// variant): q = round(x / scale) + zero_point in single precision, rounding half away from zero
// (std::round), then clamped to the stored type's range.
std::vector<std::byte> quantize_values(const std::vector<float>& x, std::span<const std::int32_t> shape,
                                       const Quantization& q, DType stored, const std::string& what,
                                       std::uint64_t& clamped) {
  const DType e = element_type(stored);
  const std::size_t width = dtype_info(e).bits / 8;
  std::vector<std::byte> out(x.size() * width);
  const auto [lo, hi] = int_range(stored);
  const bool per_axis = q.scale.size() > 1;
  std::uint64_t inner = 1, extent = 1;
  if (per_axis) {
    const auto axis = static_cast<std::size_t>(q.quantized_dimension);
    extent = static_cast<std::uint64_t>(shape[axis]);
    for (std::size_t d = axis + 1; d < shape.size(); ++d) inner *= static_cast<std::uint64_t>(shape[d]);
  }
  for (std::size_t i = 0; i < x.size(); ++i) {
    const std::size_t c = per_axis ? static_cast<std::size_t>((i / inner) % extent) : 0;
    const float scale = q.scale[c];
    const std::int64_t zp = q.zero_point.empty() ? 0 : q.zero_point[q.zero_point.size() == 1 ? 0 : c];
    if (std::isnan(x[i]))
      throw PatchError(Kind::value_out_of_range, fmt::format("{}: element {} is NaN and cannot be quantized", what, i));
    const float r = std::round(x[i] / scale);
    double v = static_cast<double>(r) + static_cast<double>(zp);
    if (!(v >= lo)) {  // also catches NaN from inf/inf
      v = lo;
      ++clamped;
    } else if (v > hi) {
      v = hi;
      ++clamped;
    }
    // v is an integer-valued double in [lo, hi]; the int64 upper bound rounds up to 2^63.
    const std::int64_t iv = v >= 9223372036854775807.0 ? std::numeric_limits<std::int64_t>::max()
                                                        : static_cast<std::int64_t>(v);
    store_int(out.data() + i * width, e, iv);
  }
  return out;
}

// Values as float32 (from float32 only: other float widths are a dtype mismatch).
std::vector<float> floats_of(const Array& a) {
  std::vector<float> out(a.size());
  if (!out.empty()) std::memcpy(out.data(), a.bytes().data(), out.size() * sizeof(float));
  return out;
}

// Range check of integer values for a packed dtype.
void check_packed_range(std::span<const std::byte> bytes, DType stored, const std::string& what) {
  const auto [lo, hi] = int_range(stored);
  const bool is_unsigned = stored == DType::uint4;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const int v = is_unsigned ? static_cast<int>(std::to_integer<std::uint8_t>(bytes[i]))
                              : static_cast<int>(static_cast<std::int8_t>(std::to_integer<std::uint8_t>(bytes[i])));
    if (v < lo || v > hi)
      throw PatchError(Kind::value_out_of_range,
                       fmt::format("{}: element {} is {}, outside the {} range [{}, {}]", what, i, v,
                                   dtype_name(stored), lo, hi));
  }
}

// For each stored value of a sparse tensor, its position in the dense tensor (-1 when a later
// duplicate index shadows it). Runs the densify kernel over the value indices.
std::vector<std::int64_t> sparse_positions(const SparsitySpec& spec, std::span<const std::int32_t> shape,
                                           std::uint64_t dense_count) {
  std::uint64_t stored_count = 0;
  if (auto problem = check_sparsity(spec, shape, stored_count)) throw std::logic_error("validated sparsity: " + *problem);
  std::vector<std::byte> ids(stored_count * 8);
  for (std::uint64_t i = 0; i < stored_count; ++i) store<std::uint64_t>(ids.data() + i * 8, i + 1);
  std::vector<std::byte> dense(dense_count * 8);
  densify(spec, shape, ids, 8, dense);
  std::vector<std::int64_t> pos(stored_count, -1);
  for (std::uint64_t p = 0; p < dense_count; ++p) {
    const auto id = load<std::uint64_t>(dense.data() + p * 8);
    if (id) pos[id - 1] = static_cast<std::int64_t>(p);
  }
  return pos;
}

// Reorders values given in a framework layout back to the stored one.
Array invert_layout(const Model& model, const PatchTarget& target, const Array& values, Framework layout,
                    const std::string& what, std::string& conversion) {
  if (layout == Framework::tflite) return values;
  if (!target.layer || !target.param)
    throw PatchError(Kind::unsupported, fmt::format("{}: a {} layout can only be undone for '<layer key>/<role>' selectors",
                                                    what, framework_name(layout)));
  const auto c = layout_conversion(model, *target.layer, *target.param, layout);
  if (!c) return values;
  const Tensor t = model.subgraph(target.subgraph).tensor(target.tensor);
  std::vector<std::int64_t> permuted(t.shape().begin(), t.shape().end());
  if (!c->perm.empty())
    for (std::size_t i = 0; i < permuted.size(); ++i) permuted[i] = t.shape()[c->perm[i]];
  const std::vector<std::int64_t> exported = c->shape.empty() ? permuted : c->shape;
  if (values.shape() != exported)
    throw PatchError(Kind::shape_mismatch,
                     fmt::format("{}: values have shape {}, but the {} layout ({}) of this parameter is {}", what,
                                 shape_text(values.shape()), framework_name(layout), c->label, shape_text(exported)));
  Array a = c->shape.empty() ? values : values.reshape(permuted);
  if (!c->perm.empty()) {
    std::vector<int> inverse(c->perm.size());
    for (std::size_t i = 0; i < c->perm.size(); ++i) inverse[c->perm[i]] = static_cast<int>(i);
    a = transpose(a, inverse);
  }
  conversion += fmt::format("{} layout {} inverted; ", framework_name(layout), c->label);
  return a;
}

}  // namespace

std::vector<std::byte> encode_values(const Model& model, const PatchTarget& target, const ValueUpdate& update,
                                     bool quantize, const std::optional<Quantization>& quantization,
                                     std::string* conversion_out, std::uint64_t* clamped_out) {
  const std::string what = update.source.empty() ? update.selector : fmt::format("{} ({})", update.selector, update.source);
  if (target.tensor < 0)
    throw PatchError(Kind::not_constant,
                     fmt::format("{}: {} has no values in the file (it is fed or computed at run time)", what,
                                 target.describe(model)));
  const Tensor t = model.subgraph(target.subgraph).tensor(target.tensor);
  const DType stored = t.dtype();
  if (!is_known(stored) || dtype_info(stored).bits == 0) {
    // Types without a fixed element size hold opaque bytes: nothing to encode new values into.
    // Resource, variant and unknown types with data open with a warning; name it.
    const bool oddity = stored != DType::string;
    throw PatchError(Kind::unsupported,
                     fmt::format("{}: {} holds {} data{}, which cannot be patched", what, target.describe(model),
                                 dtype_name(stored), oddity ? " (warning data_without_size: no fixed element size)" : ""));
  }

  std::string conversion;
  const Array values = invert_layout(model, target, update.values, update.layout, what, conversion);

  const std::vector<std::int64_t> shape(t.shape().begin(), t.shape().end());
  if (values.shape() != shape)
    throw PatchError(Kind::shape_mismatch, fmt::format("{}: values have shape {}, but {} has shape {}", what,
                                                       shape_text(values.shape()), target.describe(model),
                                                       shape_text(t.shape())));
  const std::uint64_t n = t.element_count();
  if (values.bytes().size() != n * (dtype_info(values.dtype()).bits / 8))
    throw std::invalid_argument(fmt::format("{}: the values' byte size does not match their shape", what));

  // 1. Dense elements of the stored dtype (packed dtypes one value per byte).
  const DType e = element_type(stored);
  const std::size_t width = dtype_info(e).bits / 8;
  std::vector<std::byte> dense;
  std::uint64_t clamped = 0;
  const std::optional<Quantization> q = quantization ? quantization : t.quantization();
  const bool affine = q && q->scheme == Quantization::Scheme::affine && !q->scale.empty();
  const DType v = values.dtype();
  if (v == e || (v == stored && !is_packed(stored))) {
    dense.assign(values.bytes().begin(), values.bytes().end());
    conversion += "copied";
    if (is_packed(stored)) check_packed_range(dense, stored, what);
  } else if (v == DType::float32 && stored == DType::float16) {
    dense.resize(n * 2);
    narrow_to_float16(floats_of(values), dense);
    conversion += "narrowed to float16";
  } else if (v == DType::float32 && stored == DType::bfloat16) {
    dense.resize(n * 2);
    narrow_to_bfloat16(floats_of(values), dense);
    conversion += "narrowed to bfloat16";
  } else if (v == DType::float32 && is_quantizable_int(stored) && (affine || (q && q->scheme != Quantization::Scheme::affine))) {
    if (!affine)
      throw PatchError(Kind::unsupported, fmt::format("{}: {} uses {} quantization; only affine (per-tensor or per-axis) "
                                                      "parameters can be used to quantize new values",
                                                      what, target.describe(model), scheme_name(q->scheme)));
    if (!quantize && !update.quantize)
      throw PatchError(Kind::dtype_mismatch,
                       fmt::format("{}: values are float32, but {} stores quantized {}; pass --quantize to quantize them "
                                   "with the tensor's scales and zero points, or give {} values",
                                   what, target.describe(model), dtype_name(stored), dtype_name(e)));
    dense = quantize_values(floats_of(values), t.shape(), *q, stored, what, clamped);
    conversion += q->scale.size() > 1 ? fmt::format("quantized per axis {}", q->quantized_dimension) : "quantized";
  } else {
    std::string hint;
    if (v == DType::float32 && is_quantizable_int(stored)) hint = "; the tensor has no quantization parameters to quantize with";
    else hint = fmt::format("; convert them first (numpy: .astype('{}'))", dtype_info(e).numpy);
    throw PatchError(Kind::dtype_mismatch, fmt::format("{}: values are {}, but {} stores {}{}", what, dtype_name(v),
                                                       target.describe(model), dtype_name(stored), hint));
  }

  // 2. Sparse constants: the new values must fit the stored pattern; gather them in stored order.
  if (const auto spec = t.sparsity()) {
    const auto pos = sparse_positions(*spec, t.shape(), n);
    std::vector<bool> kept(n, false);
    for (auto p : pos)
      if (p >= 0) kept[static_cast<std::size_t>(p)] = true;
    std::uint64_t outside = 0, first = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
      if (kept[i]) continue;
      const std::byte* el = dense.data() + i * width;
      if (std::any_of(el, el + width, [](std::byte b) { return b != std::byte{0}; })) {
        if (outside++ == 0) first = i;
      }
    }
    if (outside)
      throw PatchError(Kind::sparsity_mismatch,
                       fmt::format("{}: {} is sparse and {} new non-zero values (the first at flat index {}) fall outside "
                                   "its stored pattern; litelens keeps the sparsity structure, so only values at stored "
                                   "positions can change",
                                   what, target.describe(model), outside, first));
    std::vector<std::byte> gathered(pos.size() * width, std::byte{0});
    for (std::size_t s = 0; s < pos.size(); ++s)
      if (pos[s] >= 0) std::memcpy(gathered.data() + s * width, dense.data() + pos[s] * width, width);
    dense = std::move(gathered);
    conversion += ", gathered to the sparse pattern";
  }

  // 3. Packing.
  std::vector<std::byte> out;
  const std::uint64_t count = dense.size() / width;
  if (is_packed(stored)) {
    const bool one_per_byte = t.data().size() == count && count > 1 && stored != DType::int2 &&
                              t.data().size() != packed_byte_count(count, 4);
    if (one_per_byte) {
      out = std::move(dense);
      conversion += ", one value per byte (as stored)";
    } else {
      const unsigned bits = stored == DType::int2 ? 2 : 4;
      out.resize(packed_byte_count(count, bits));
      const std::span<const std::int8_t> s8(reinterpret_cast<const std::int8_t*>(dense.data()), count);
      if (stored == DType::int4) pack_int4(s8, out);
      else if (stored == DType::int2) pack_int2(s8, out);
      else pack_uint4({reinterpret_cast<const std::uint8_t*>(dense.data()), count}, out);
      conversion += fmt::format(", packed to {}", dtype_name(stored));
    }
  } else {
    out = std::move(dense);
  }
  if (out.size() != t.data().size())
    throw std::logic_error(fmt::format("{}: encoded {} bytes for a {}-byte constant", what, out.size(), t.data().size()));
  if (conversion_out) *conversion_out = conversion;
  if (clamped_out) *clamped_out = clamped;
  return out;
}

// ---- --set-quant --------------------------------------------------------------------------------

namespace {

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

template <class T>
std::vector<T> parse_list(std::string_view text, std::string_view key, const std::string& selector) {
  std::vector<T> out;
  std::string s = trim(text);
  if (!s.empty() && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
  std::size_t start = 0;
  while (start <= s.size()) {
    const auto comma = s.find(',', start);
    const std::string item = trim(std::string_view(s).substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (item.empty() && comma == std::string::npos && out.empty()) break;
    try {
      std::size_t used = 0;
      if constexpr (std::is_floating_point_v<T>) out.push_back(static_cast<T>(std::stod(item, &used)));
      else out.push_back(static_cast<T>(std::stoll(item, &used)));
      if (used != item.size()) throw std::invalid_argument("trailing text");
    } catch (const std::exception&) {
      throw PatchError(Kind::bad_quantization, fmt::format("--set-quant {}: '{}' in {} is not a number", selector, item, key));
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace

QuantUpdate parse_quant_spec(std::string selector, std::string_view spec) {
  QuantUpdate u;
  u.selector = std::move(selector);
  const std::string text = trim(spec);
  const auto bad = [&](const std::string& why) { return PatchError(Kind::bad_quantization, fmt::format("--set-quant {}: {}", u.selector, why)); };
  if (!text.empty() && text.front() == '{') {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const std::exception& e) {
      throw bad(fmt::format("invalid JSON ({})", e.what()));
    }
    try {
      for (const auto& [k, v] : j.items()) {
        if (k == "scale") u.scale = v.get<std::vector<float>>();
        else if (k == "zero_point" || k == "zp") u.zero_point = v.get<std::vector<std::int64_t>>();
        else if (k == "quantized_dimension" || k == "axis") u.quantized_dimension = v.get<std::int32_t>();
        else if (k == "min") u.min = v.get<std::vector<float>>();
        else if (k == "max") u.max = v.get<std::vector<float>>();
        else if (k == "scheme") {
          if (v != "affine") throw bad(fmt::format("only affine quantization can be set, not {}", v.dump()));
        } else throw bad(fmt::format("unknown key '{}' (scale, zero_point, quantized_dimension, min, max)", k));
      }
    } catch (const nlohmann::json::exception& e) {
      throw bad(fmt::format("a value has the wrong type ({})", e.what()));
    }
  } else {
    std::size_t start = 0;
    while (start < text.size()) {
      const auto semi = text.find(';', start);
      const std::string part = trim(std::string_view(text).substr(start, semi == std::string::npos ? std::string::npos : semi - start));
      start = semi == std::string::npos ? text.size() : semi + 1;
      if (part.empty()) continue;
      const auto colon = part.find_first_of(":=");
      if (colon == std::string::npos) throw bad(fmt::format("'{}' is not KEY:VALUES", part));
      const std::string key = trim(std::string_view(part).substr(0, colon));
      const std::string_view val = std::string_view(part).substr(colon + 1);
      if (key == "scale") u.scale = parse_list<float>(val, key, u.selector);
      else if (key == "zero_point" || key == "zp") u.zero_point = parse_list<std::int64_t>(val, key, u.selector);
      else if (key == "axis" || key == "quantized_dimension") {
        const auto v = parse_list<std::int64_t>(val, key, u.selector);
        if (v.size() != 1) throw bad("axis takes one value");
        u.quantized_dimension = static_cast<std::int32_t>(v[0]);
      } else if (key == "min") u.min = parse_list<float>(val, key, u.selector);
      else if (key == "max") u.max = parse_list<float>(val, key, u.selector);
      else throw bad(fmt::format("unknown key '{}' (scale, zero_point, axis, min, max)", key));
    }
  }
  if (u.scale.empty()) throw bad("no scale given");
  return u;
}

namespace detail {

Quantization apply_quant_update(const Model& model, const PatchTarget& target, int tensor, const QuantUpdate& u) {
  const Tensor t = model.subgraph(target.subgraph).tensor(tensor);
  const std::string what = fmt::format("--set-quant {} ({})", u.selector, tensor_label(model, target.subgraph, tensor));
  const auto bad = [&](const std::string& why) { return PatchError(Kind::bad_quantization, fmt::format("{}: {}", what, why)); };
  const auto old = t.quantization();
  if (old && old->scheme != Quantization::Scheme::affine)
    throw PatchError(Kind::unsupported, fmt::format("{}: the tensor uses {} quantization, which --set-quant does not replace",
                                                    what, scheme_name(old->scheme)));
  Quantization q = old.value_or(Quantization{});
  q.scheme = Quantization::Scheme::affine;
  q.scale = u.scale;
  if (u.quantized_dimension) q.quantized_dimension = *u.quantized_dimension;
  if (u.min) q.min = *u.min;
  if (u.max) q.max = *u.max;
  for (float s : q.scale)
    if (!std::isfinite(s) || s <= 0) throw bad(fmt::format("scale {} is not a positive finite number", s));
  if (u.zero_point.empty()) q.zero_point.assign(q.scale.size(), 0);
  else if (u.zero_point.size() == 1) q.zero_point.assign(q.scale.size(), u.zero_point[0]);
  else if (u.zero_point.size() == q.scale.size()) q.zero_point = u.zero_point;
  else throw bad(fmt::format("{} scales but {} zero points", q.scale.size(), u.zero_point.size()));
  const auto shape = t.shape();
  if (q.scale.size() > 1) {
    if (q.quantized_dimension < 0 || static_cast<std::size_t>(q.quantized_dimension) >= shape.size())
      throw bad(fmt::format("axis {} is outside the tensor's rank {}", q.quantized_dimension, shape.size()));
    if (static_cast<std::int64_t>(q.scale.size()) != shape[q.quantized_dimension])
      throw bad(fmt::format("{} scales, but dimension {} of shape {} has {} slices", q.scale.size(), q.quantized_dimension,
                            shape_text(shape), shape[q.quantized_dimension]));
  }
  if (is_quantizable_int(t.dtype())) {
    const auto [lo, hi] = int_range(t.dtype());
    for (auto z : q.zero_point)
      if (static_cast<double>(z) < lo || static_cast<double>(z) > hi)
        throw bad(fmt::format("zero point {} is outside the {} range", z, dtype_name(t.dtype())));
  }
  if (u.min && u.max && u.min->size() != u.max->size()) throw bad("min and max have different lengths");
  return q;
}

}  // namespace detail

}  // namespace litelens
