// Model comparison: layer matching and value metrics (see litelens/diff.h).
#include "litelens/diff.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>

#include "litelens/decode.h"

namespace litelens {

namespace {

std::vector<double> to_doubles(const Array& a) {
  std::vector<double> out;
  out.reserve(a.size());
  const auto widened = [&](void (*fn)(std::span<const std::byte>, std::span<float>)) {
    std::vector<float> f(a.size());
    fn(a.bytes(), f);
    out.assign(f.begin(), f.end());
  };
  switch (a.dtype()) {
    case DType::float16: widened(widen_float16); break;
    case DType::bfloat16: widened(widen_bfloat16); break;
    case DType::float8_e4m3fn: widened(widen_float8_e4m3fn); break;
    case DType::float8_e5m2: widened(widen_float8_e5m2); break;
    default:
      try {
        for_each_number(a, a.size(), [&](double v) { out.push_back(v); });
      } catch (const std::invalid_argument&) {
        throw std::invalid_argument(fmt::format("compare_values: {} values are not numeric", dtype_name(a.dtype())));
      }
  }
  return out;
}

bool same_quantization(const std::optional<Quantization>& a, const std::optional<Quantization>& b) {
  const bool qa = a && !(a->scheme == Quantization::Scheme::affine && a->scale.empty());
  const bool qb = b && !(b->scheme == Quantization::Scheme::affine && b->scale.empty());
  if (qa != qb) return false;
  if (!qa) return true;
  if (a->scheme != b->scheme || !same_bits(a->scale, b->scale)) return false;
  // A missing zero point list means zeros.
  const auto zp = [](const Quantization& q) {
    std::vector<std::int64_t> z = q.zero_point;
    if (z.empty()) z.assign(q.scale.size(), 0);
    if (z.size() == 1 && q.scale.size() > 1) z.assign(q.scale.size(), z[0]);
    return z;
  };
  if (zp(*a) != zp(*b)) return false;
  if (a->scale.size() > 1 && a->quantized_dimension != b->quantized_dimension) return false;
  if (a->scheme != Quantization::Scheme::affine)
    return a->block_size == b->block_size && a->quantized_dimensions == b->quantized_dimensions;
  return true;
}

// Layers that carry parameters, without the ops that only convert them.
std::vector<Layer> param_layers(const Model& model, int subgraph) {
  LayerQuery q;
  q.subgraph = subgraph;
  std::vector<Layer> out;
  for (auto& l : layers(model, q)) {
    if (l.op == "DEQUANTIZE" || l.op == "DENSIFY" || l.op == "QUANTIZE") continue;
    if (std::none_of(l.params.begin(), l.params.end(), [](const Param& p) { return !p.is_runtime(); })) continue;
    out.push_back(std::move(l));
  }
  return out;
}

LayerRef ref_of(const Layer& l) { return {l.subgraph, l.index, l.key(), l.op, l.name}; }

ParamInfo info_of(const Model& model, const Layer& l, const Param& p) {
  const Tensor t = model.subgraph(l.subgraph).tensor(p.is_runtime() ? p.tensor : p.stored_tensor);
  ParamInfo i;
  i.tensor = t.index();
  i.name = std::string(t.name());
  i.shape.assign(t.shape().begin(), t.shape().end());
  i.dtype = t.dtype();
  i.quantization = t.quantization();
  i.via = p.via;
  i.runtime = p.is_runtime();
  return i;
}

bool numeric(DType t) {
  return is_known(t) && dtype_info(t).bits > 0 && t != DType::string && t != DType::complex64 && t != DType::complex128;
}

ParamDiff diff_param(const Model& ma, const Layer& la, const Param* pa, const Model& mb, const Layer& lb,
                     const Param* pb, const DiffOptions& options) {
  ParamDiff d;
  d.role = pa ? pa->role : pb->role;
  if (pa) d.a = info_of(ma, la, *pa);
  if (pb) d.b = info_of(mb, lb, *pb);
  if (!pa || !pb) {
    d.note = pa ? "only in A" : "only in B";
    return d;
  }
  d.shape_changed = d.a->shape != d.b->shape;
  d.dtype_changed = d.a->dtype != d.b->dtype;
  d.quantization_changed = !same_quantization(d.a->quantization, d.b->quantization);
  if (d.a->runtime || d.b->runtime) {
    d.note = d.a->runtime && d.b->runtime ? "fed at run time" : "fed at run time on one side";
    return d;
  }
  if (d.shape_changed) {
    d.note = "shapes differ";
    return d;
  }
  if (!numeric(d.a->dtype) || !numeric(d.b->dtype)) {
    d.note = "not numeric";
    const auto x = ma.subgraph(la.subgraph).tensor(pa->stored_tensor).data();
    const auto y = mb.subgraph(lb.subgraph).tensor(pb->stored_tensor).data();
    d.bytes_equal = std::equal(x.begin(), x.end(), y.begin(), y.end());
    return d;
  }
  if (!options.values) return d;
  try {
    // Integers without quantization compare as stored: float32 would merge 2^24 and 2^24 + 1.
    const Array va = param_values(ma, la, *pa, exact_real_mode(ma.subgraph(la.subgraph).tensor(pa->stored_tensor)));
    const Array vb = param_values(mb, lb, *pb, exact_real_mode(mb.subgraph(lb.subgraph).tensor(pb->stored_tensor)));
    d.values = compare_values(va, vb);
  } catch (const std::invalid_argument& e) {
    // Values that cannot be decoded (a blockwise layout dequantization refuses, say) are still
    // compared as stored, so that a model compared with itself is identical.
    d.note = std::string(e.what()) + "; stored bytes compared";
    const auto x = ma.subgraph(la.subgraph).tensor(pa->stored_tensor).data();
    const auto y = mb.subgraph(lb.subgraph).tensor(pb->stored_tensor).data();
    d.bytes_equal = std::equal(x.begin(), x.end(), y.begin(), y.end());
  }
  return d;
}

LayerDiff diff_layer(const Model& ma, const Layer& la, const Model& mb, const Layer& lb, std::string matched_by,
                     const DiffOptions& options) {
  LayerDiff d;
  d.a = ref_of(la);
  d.b = ref_of(lb);
  d.matched_by = std::move(matched_by);
  const auto stored_or_named = [](const Layer& l) {
    std::vector<const Param*> out;
    for (const auto& p : l.params) out.push_back(&p);
    return out;
  };
  const auto pas = stored_or_named(la), pbs = stored_or_named(lb);
  std::vector<bool> used(pbs.size(), false);
  for (const Param* pa : pas) {
    const Param* pb = nullptr;
    for (std::size_t j = 0; j < pbs.size(); ++j)
      if (!used[j] && pbs[j]->role == pa->role) {
        pb = pbs[j];
        used[j] = true;
        break;
      }
    if (pa->is_runtime() && (!pb || pb->is_runtime())) continue;  // activations on both sides
    d.params.push_back(diff_param(ma, la, pa, mb, lb, pb, options));
  }
  for (std::size_t j = 0; j < pbs.size(); ++j)
    if (!used[j] && !pbs[j]->is_runtime()) d.params.push_back(diff_param(ma, la, nullptr, mb, lb, pbs[j], options));
  return d;
}

}  // namespace

bool ParamDiff::identical() const noexcept {
  return a && b && !shape_changed && !dtype_changed && !quantization_changed &&
         ((values && values->differing == 0) || bytes_equal.value_or(false) || (a->runtime && b->runtime));
}

DiffSummary summarize(const ModelDiff& diff) {
  DiffSummary s;
  s.matched_layers = diff.layers.size();
  s.only_in_a = diff.only_in_a.size();
  s.only_in_b = diff.only_in_b.size();
  for (const auto& l : diff.layers) {
    ++s.matched_by[l.matched_by];
    for (const auto& p : l.params) {
      ++s.params;
      s.identical_params += p.identical();
      s.values_changed += (p.values && p.values->differing > 0) || (p.bytes_equal && !*p.bytes_equal);
      s.shape_changed += p.shape_changed;
      s.dtype_changed += p.dtype_changed;
      s.quantization_changed += p.quantization_changed;
    }
  }
  return s;
}

bool LayerDiff::identical() const noexcept {
  return a.op == b.op && std::all_of(params.begin(), params.end(), [](const ParamDiff& p) { return p.identical(); });
}

ValueComparison compare_values(const Array& a, const Array& b) {
  if (a.size() != b.size())
    throw std::invalid_argument(fmt::format("compare_values: {} vs {} elements", a.size(), b.size()));
  const auto x = to_doubles(a);
  const auto y = to_doubles(b);
  ValueComparison c;
  double d2 = 0, x2 = 0, y2 = 0, xy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const bool nx = std::isnan(x[i]), ny = std::isnan(y[i]);
    ++c.count;
    if (nx || ny) {
      if (nx != ny) {
        ++c.nan_mismatch;
        ++c.differing;
      }
      continue;
    }
    if (x[i] != y[i]) ++c.differing;
    const double diff = x[i] - y[i];
    const double ad = std::isinf(x[i]) && x[i] == y[i] ? 0.0 : std::fabs(diff);
    c.max_abs_diff = std::max(c.max_abs_diff, ad);
    d2 += ad * ad;
    x2 += x[i] * x[i];
    y2 += y[i] * y[i];
    xy += x[i] * y[i];
  }
  c.norm_a = std::sqrt(x2);
  c.norm_b = std::sqrt(y2);
  if (x2 > 0) c.rel_error = std::sqrt(d2) / c.norm_a;
  else c.rel_error = d2 > 0 ? std::numeric_limits<double>::infinity() : 0.0;
  if (x2 == 0 && y2 == 0) c.cosine = 1;
  else if (x2 == 0 || y2 == 0) c.cosine = 0;
  else c.cosine = std::clamp(xy / (c.norm_a * c.norm_b), -1.0, 1.0);
  return c;
}

namespace {

std::string normalize(std::string_view name, bool stem) {
  static const std::vector<std::string_view> suffixes = {
      "_int8", "_uint8", "_int16", "_int4", "_fp16", "_float16", "_f16", "_quantized", "_quant",
      "/dequantize", "_dequantize", "/Dequantize", "_dequant", "/quantize", "_requantize"};
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= name.size()) {
    const auto semi = name.find(';', start);
    std::string_view part = name.substr(start, semi == std::string_view::npos ? std::string_view::npos : semi - start);
    bool stripped = true;
    while (stripped) {
      stripped = false;
      for (auto s : suffixes)
        if (part.size() > s.size() && part.ends_with(s)) {
          part.remove_suffix(s.size());
          stripped = true;
        }
    }
    if (stem) {
      // The converter makes names unique by appending digits ("Conv2D" -> "Conv2D2"); keep
      // "_<n>" suffixes, which name distinct layers ("conv2d_1").
      std::size_t end = part.size();
      while (end > 0 && std::isdigit(static_cast<unsigned char>(part[end - 1]))) --end;
      if (end > 0 && end < part.size() && part[end - 1] != '_') part = part.substr(0, end);
    }
    if (!part.empty()) parts.emplace_back(part);
    if (semi == std::string_view::npos) break;
    start = semi + 1;
  }
  std::sort(parts.begin(), parts.end());
  parts.erase(std::unique(parts.begin(), parts.end()), parts.end());
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ";") + p;
  return out;
}

}  // namespace

std::string normalize_layer_name(std::string_view name) { return normalize(name, false); }

std::string layer_name_stem(std::string_view name) { return normalize(name, true); }

ModelDiff diff_models(const Model& a, const Model& b, const DiffOptions& options) {
  ModelDiff out;
  out.subgraphs_a = a.subgraph_count();
  out.subgraphs_b = b.subgraph_count();
  std::vector<int> subgraphs;
  if (options.subgraph) {
    (void)a.subgraph(*options.subgraph);  // std::out_of_range when missing
    (void)b.subgraph(*options.subgraph);
    subgraphs.push_back(*options.subgraph);
  } else {
    for (std::size_t s = 0; s < std::max(a.subgraph_count(), b.subgraph_count()); ++s) subgraphs.push_back(static_cast<int>(s));
  }
  for (int s : subgraphs) {
    const auto la = static_cast<std::size_t>(s) < a.subgraph_count() ? param_layers(a, s) : std::vector<Layer>{};
    const auto lb = static_cast<std::size_t>(s) < b.subgraph_count() ? param_layers(b, s) : std::vector<Layer>{};
    std::vector<int> match(la.size(), -1);
    std::vector<std::string> how(la.size());
    std::vector<bool> taken(lb.size(), false);

    const auto by_key = [&](auto key_of, const char* label) {
      std::map<std::string, std::vector<std::size_t>> ka, kb;
      for (std::size_t i = 0; i < la.size(); ++i)
        if (match[i] < 0) ka[key_of(la[i])].push_back(i);
      for (std::size_t j = 0; j < lb.size(); ++j)
        if (!taken[j]) kb[key_of(lb[j])].push_back(j);
      for (const auto& [k, is] : ka) {
        if (k.empty() || is.size() != 1) continue;
        const auto it = kb.find(k);
        if (it == kb.end() || it->second.size() != 1) continue;
        match[is[0]] = static_cast<int>(it->second[0]);
        how[is[0]] = label;
        taken[it->second[0]] = true;
      }
    };
    by_key([](const Layer& l) { return l.name; }, "name");
    by_key([](const Layer& l) { return normalize_layer_name(l.name); }, "normalized_name");
    by_key([](const Layer& l) { return layer_name_stem(l.name); }, "name_stem");
    // Position within each op type.
    std::map<std::string, std::vector<std::size_t>> rest_b;
    for (std::size_t j = 0; j < lb.size(); ++j)
      if (!taken[j]) rest_b[lb[j].op].push_back(j);
    std::map<std::string, std::size_t> next;
    for (std::size_t i = 0; i < la.size(); ++i) {
      if (match[i] >= 0) continue;
      auto& queue = rest_b[la[i].op];
      auto& k = next[la[i].op];
      if (k < queue.size()) {
        match[i] = static_cast<int>(queue[k++]);
        how[i] = "position";
        taken[match[i]] = true;
      }
    }
    for (std::size_t i = 0; i < la.size(); ++i) {
      if (match[i] < 0) out.only_in_a.push_back(ref_of(la[i]));
      else out.layers.push_back(diff_layer(a, la[i], b, lb[match[i]], how[i], options));
    }
    for (std::size_t j = 0; j < lb.size(); ++j)
      if (!taken[j]) out.only_in_b.push_back(ref_of(lb[j]));
  }
  return out;
}

}  // namespace litelens
