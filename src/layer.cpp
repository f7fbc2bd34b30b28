// Layers: operators grouped with their options and parameters, parameters resolved to constants.
#include "litelens/layer.h"

#include <fmt/format.h>
#include <fnmatch.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <unordered_set>

#include "edit_distance.h"
#include "layer_roles.h"
#include "tflite_generated.h"

namespace litelens {

namespace {

constexpr int kMaxChain = 8;  // DEQUANTIZE/DENSIFY chains are 1-2 long in practice

// Which operator writes each tensor of a subgraph (-1: none, i.e. an input or a constant).
std::vector<int> producers(const Subgraph& sg) {
  std::vector<int> producer(sg.tensor_count(), -1);
  for (const Operator op : sg.operators())
    for (std::int32_t t : op.outputs())
      if (t >= 0 && producer[t] < 0) producer[t] = op.index();
  return producer;
}

// Follows DEQUANTIZE / DENSIFY back from `tensor` to the constant that holds the values.
void resolve(const Subgraph& sg, const std::vector<int>& producer, Param& p) {
  int t = p.tensor;
  for (int step = 0; step < kMaxChain; ++step) {
    if (sg.tensor(t).is_constant()) {
      p.stored_tensor = t;
      return;
    }
    const int op_index = producer[t];
    if (op_index < 0) break;
    const Operator op = sg.op(op_index);
    const auto code = op.opcode();
    if (code != tflite::BuiltinOperator_DEQUANTIZE && code != tflite::BuiltinOperator_DENSIFY) break;
    if (op.inputs().empty() || op.inputs()[0] < 0) break;
    p.via.emplace_back(op.op_name());
    p.via_ops.push_back(op_index);
    t = op.inputs()[0];
  }
  p.via.clear();  // fed at run time: no path to report
  p.via_ops.clear();
}

std::vector<std::string> split_name(const std::string& name) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= name.size()) {
    const std::size_t end = name.find(';', start);
    const std::string part = name.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!part.empty()) parts.push_back(part);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return parts;
}

Layer build_layer(const Model& model, const Subgraph& sg, const std::vector<int>& producer, int index) {
  const Operator op = sg.op(index);
  Layer layer;
  layer.subgraph = sg.index();
  layer.index = index;
  layer.op = std::string(op.op_name());
  layer.custom_code = std::string(op.custom_code());
  if (!op.outputs().empty() && op.outputs()[0] >= 0) layer.name = std::string(sg.tensor(op.outputs()[0]).name());
  layer.name_parts = split_name(layer.name);
  layer.options = op.options();
  const auto inputs = op.inputs();
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i] < 0) continue;  // an absent optional input is an absent role
    Param p;
    p.role = detail::input_role(op.opcode(), layer.options, inputs.size(), i);
    p.input_index = static_cast<int>(i);
    p.tensor = inputs[i];
    resolve(sg, producer, p);
    const Tensor shown = sg.tensor(p.is_runtime() ? p.tensor : p.stored_tensor);
    if (auto rule = detail::layout_rule(op.opcode(), p.role, shown.shape().size())) p.layout = rule->label;
    layer.params.push_back(std::move(p));
  }
  (void)model;
  return layer;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Checked on the operator before its layer is built: building decodes every option, which
// made selecting 35 convolutions out of 150 operators cost as much as building all 150.
bool op_matches(const Operator& op, const std::vector<std::string>& ops) {
  if (ops.empty()) return true;
  const std::string name = lower(op.op_name());
  const std::string custom = lower(op.custom_code());
  for (const auto& wanted : ops) {
    const std::string w = lower(wanted);
    if (w == name) return true;
    if (name == "custom" && (w == custom || w == "custom:" + custom)) return true;
  }
  return false;
}

// Everything a name pattern is tried against: the layer name, its fused parts, param names.
// Only parameters held in the file count: a runtime input (the activation) carries the name of
// the layer that produced it, and matching it would select every layer's consumers too.
std::vector<std::string> name_candidates(const Model& model, const Layer& layer) {
  std::vector<std::string> names{layer.name};
  names.insert(names.end(), layer.name_parts.begin(), layer.name_parts.end());
  const Subgraph sg = model.subgraph(layer.subgraph);
  for (const auto& p : layer.params) {
    if (p.is_runtime()) continue;
    names.emplace_back(sg.tensor(p.tensor).name());
    if (p.stored_tensor >= 0 && p.stored_tensor != p.tensor) names.emplace_back(sg.tensor(p.stored_tensor).name());
  }
  return names;
}

bool is_glob(const std::string& pattern) { return pattern.find_first_of("*?[") != std::string::npos; }

bool name_matches(const Model& model, const Layer& layer, const LayerQuery& q) {
  if (q.name.empty()) return true;
  const bool glob = !q.exact && is_glob(q.name);
  for (const auto& candidate : name_candidates(model, layer)) {
    if (q.exact ? candidate == q.name
                : glob ? fnmatch(q.name.c_str(), candidate.c_str(), 0) == 0
                       : candidate.find(q.name) != std::string::npos)
      return true;
  }
  return false;
}

// Edit distance between `pattern` and the best-matching substring of `text` (a typo in a
// fragment of a long fused name still scores low).
std::size_t substring_distance(std::string_view pattern, std::string_view text) {
  std::vector<std::size_t> prev(text.size() + 1, 0), cur(text.size() + 1);
  for (std::size_t i = 1; i <= pattern.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= text.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (pattern[i - 1] == text[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return *std::min_element(prev.begin(), prev.end());
}

// "sg0.op3.ADD (model/add)": how the messages name a layer without building it.
std::string layer_label(const Subgraph& sg, int index) {
  const Operator op = sg.op(index);
  std::string out = fmt::format("sg{}.op{}.{}", sg.index(), index, op.op_name());
  if (!op.outputs().empty() && op.outputs()[0] >= 0)
    if (const auto name = sg.tensor(op.outputs()[0]).name(); !name.empty()) out += fmt::format(" ({})", name);
  return out;
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

// The valid operator indices of `sg` and the layers at the end of it, for an index past it.
std::string index_range_text(const Subgraph& sg) {
  const int n = static_cast<int>(sg.operator_count());
  if (n == 0) return fmt::format("subgraph {} has no operators", sg.index());
  std::vector<std::string> last;
  for (int i = std::max(0, n - 3); i < n; ++i) last.push_back(layer_label(sg, i));
  return fmt::format("subgraph {} has {} operator{}, 0 to {}; the last: {}", sg.index(), n, n == 1 ? "" : "s", n - 1,
                     join(last));
}

}  // namespace

std::string Layer::key() const { return fmt::format("sg{}.op{}.{}", subgraph, index, op); }

const Param* Layer::param(std::string_view role) const {
  for (const auto& p : params)
    if (p.role == role) return &p;
  // The generic name of a position stays valid after its op gets a role table, so keys of older
  // exports ("ADD/input_1", now "ADD/y") still find their parameter.
  constexpr std::string_view generic = "input_";
  if (role.substr(0, generic.size()) != generic || role.size() == generic.size() || role.size() > generic.size() + 9)
    return nullptr;
  int position = 0;
  for (const char c : role.substr(generic.size())) {
    if (c < '0' || c > '9') return nullptr;
    position = position * 10 + (c - '0');
  }
  for (const auto& p : params)
    if (p.input_index == position) return &p;
  return nullptr;
}

Layer layer(const Model& model, int subgraph, int index) {
  const Subgraph sg = model.subgraph(subgraph);
  (void)sg.op(index);  // range check
  return build_layer(model, sg, producers(sg), index);
}

std::vector<Layer> layers(const Model& model, const LayerQuery& query) {
  std::vector<Layer> out;
  if (query.index && !query.subgraph) {
    LayerQuery q = query;
    q.subgraph = 0;
    return layers(model, q);
  }
  for (const Subgraph sg : model.subgraphs()) {
    if (query.subgraph && sg.index() != *query.subgraph) continue;
    if (query.index && (*query.index < 0 || static_cast<std::size_t>(*query.index) >= sg.operator_count()))
      throw std::out_of_range(
          fmt::format("operator index {} is out of range: {}", *query.index, index_range_text(sg)));
    const auto producer = producers(sg);
    for (int i = 0; i < static_cast<int>(sg.operator_count()); ++i) {
      if (query.index && i != *query.index) continue;
      if (!op_matches(sg.op(i), query.ops)) continue;
      Layer l = build_layer(model, sg, producer, i);
      if (!name_matches(model, l, query)) continue;
      out.push_back(std::move(l));
      if (query.first) return out;
    }
  }
  if (query.subgraph && *query.subgraph >= static_cast<int>(model.subgraph_count()))
    throw std::out_of_range(fmt::format("subgraph {} is out of range: the model has {} subgraph{}{}", *query.subgraph,
                                        model.subgraph_count(), model.subgraph_count() == 1 ? "" : "s",
                                        model.subgraph_count() ? fmt::format(", 0 to {}", model.subgraph_count() - 1)
                                                               : std::string()));
  return out;
}

std::vector<std::string> closest_layer_names(const Model& model, const LayerQuery& query, std::size_t limit) {
  LayerQuery scope;
  scope.ops = query.ops;
  scope.subgraph = query.subgraph;
  std::vector<std::pair<std::size_t, std::string>> scored;
  for (const Layer& l : layers(model, scope)) {
    std::size_t best = std::string::npos;
    for (const auto& candidate : name_candidates(model, l))
      best = std::min(best, substring_distance(lower(query.name), lower(candidate)));
    scored.emplace_back(best, l.name.empty() ? l.key() : l.name);
  }
  std::stable_sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> out;
  for (auto& [score, name] : scored) {
    if (out.size() >= limit) break;
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(std::move(name));
  }
  return out;
}

std::string no_match_message(const Model& model, const LayerQuery& query) {
  std::string out = "no layer matches the selection";

  // --op naming no operator of the model: the op names and custom codes it does have, nearest first.
  if (!query.ops.empty()) {
    bool present = false;
    std::vector<std::string> names;  // every distinct op name and custom code, in file order
    std::unordered_set<std::string> seen;  // a hostile file may hold very many distinct custom codes
    for (const Subgraph sg : model.subgraphs())
      for (const Operator op : sg.operators()) {
        present = present || op_matches(op, query.ops);
        std::string candidate(op.custom_code().empty() ? op.op_name() : op.custom_code());
        if (seen.insert(candidate).second) names.push_back(std::move(candidate));
      }
    if (!present) {
      std::vector<std::pair<std::size_t, std::string>> scored;
      for (const auto& n : names) {
        std::size_t best = std::string::npos;
        for (const auto& wanted : query.ops) best = std::min(best, detail::edit_distance(lower(wanted), lower(n)));
        scored.emplace_back(best, n);
      }
      std::stable_sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      std::vector<std::string> closest;
      for (std::size_t i = 0; i < scored.size() && i < 5; ++i) closest.push_back(scored[i].second);
      out += closest.empty() ? std::string("; the model has no operators") : "; closest ops: " + join(closest);
    }
  }

  // The layers the op and name criteria do match, for --index / --subgraph to be weighed against.
  LayerQuery loose;
  loose.ops = query.ops;
  loose.name = query.name;
  loose.exact = query.exact;
  if (query.index || query.subgraph) {
    const int s = query.subgraph.value_or(0);
    if (s >= 0 && static_cast<std::size_t>(s) < model.subgraph_count()) {
      const Subgraph sg = model.subgraph(s);
      const auto matching = layers(model, loose);
      if (query.index) {
        const int i = *query.index;
        if (i >= 0 && static_cast<std::size_t>(i) < sg.operator_count())
          out += fmt::format("; subgraph {} has operators 0 to {}, and {} is {}", s, sg.operator_count() - 1, i,
                             layer_label(sg, i));
        else
          out += "; " + index_range_text(sg);
        // The matching layers of that subgraph nearest the index.
        std::vector<const Layer*> near;
        for (const auto& l : matching)
          if (l.subgraph == s) near.push_back(&l);
        std::stable_sort(near.begin(), near.end(), [i](const Layer* a, const Layer* b) {
          return std::abs(a->index - i) < std::abs(b->index - i);
        });
        std::vector<std::string> labels;
        for (std::size_t k = 0; k < near.size() && k < 5; ++k) labels.push_back(layer_label(sg, near[k]->index));
        if (!labels.empty()) out += "; nearest matching layers: " + join(labels);
      }
      std::vector<std::string> elsewhere;
      for (const auto& l : matching)
        if (l.subgraph != s && elsewhere.size() < 5)
          elsewhere.push_back(layer_label(model.subgraph(l.subgraph), l.index));
      if (query.subgraph) out += fmt::format("; the model has subgraphs 0 to {}", model.subgraph_count() - 1);
      if (!elsewhere.empty()) out += "; matching layers in other subgraphs: " + join(elsewhere);
    } else {
      out += fmt::format("; the model has {} subgraphs", model.subgraph_count());
    }
  }

  // --name: the nearest names within the op / subgraph scope, else in the whole model. Last, so
  // the list runs to the end of the message.
  if (!query.name.empty()) {
    const bool valid_subgraph =
        !query.subgraph || (*query.subgraph >= 0 && static_cast<std::size_t>(*query.subgraph) < model.subgraph_count());
    // Widened step by step when a scope holds no layer at all: first any subgraph, then any op.
    LayerQuery scope = query;
    if (!valid_subgraph) scope.subgraph.reset();
    auto close = closest_layer_names(model, scope);
    if (close.empty() && scope.subgraph) {
      scope.subgraph.reset();
      close = closest_layer_names(model, scope);
    }
    if (close.empty()) {
      scope.ops.clear();
      close = closest_layer_names(model, scope);
    }
    if (!close.empty()) out += "; closest names: " + join(close);
  }
  return out;
}

Array param_values(const Model& model, const Layer& layer, const Param& param, DecodeMode mode) {
  if (param.is_runtime())
    throw std::invalid_argument(fmt::format("{} '{}' is fed at run time and has no values in the file", layer.key(),
                                            param.role));
  return decode(model, model.subgraph(layer.subgraph).tensor(param.stored_tensor), mode);
}

Array consumed_values(const Model& model, const Layer& layer, const Param& param) {
  const bool dequantized = std::find(param.via.begin(), param.via.end(), "DEQUANTIZE") != param.via.end();
  return param_values(model, layer, param, dequantized ? DecodeMode::dequantized : DecodeMode::stored);
}

std::optional<LayoutConversion> layout_conversion(const Model& model, const Layer& layer, const Param& param,
                                                  Framework framework) {
  const Subgraph sg = model.subgraph(layer.subgraph);
  const Tensor t = sg.tensor(param.is_runtime() ? param.tensor : param.stored_tensor);
  const Operator op = sg.op(layer.index);
  const auto rule = detail::layout_rule(op.opcode(), param.role, t.shape().size());
  if (!rule) return std::nullopt;
  // A depthwise filter is [1,H,W,C*M]; any other leading extent has no keras or torch meaning
  // (and would not survive the reshape below), so such a filter converts to nothing.
  if (rule->depthwise && framework != Framework::tflite && t.shape()[0] != 1) return std::nullopt;
  LayoutConversion c;
  switch (framework) {
    case Framework::tflite:
      c.label = rule->label;
      return c;
    case Framework::torch:
      c.perm = rule->torch_perm;
      c.label = rule->torch_label;
      return c;
    case Framework::keras:
      c.perm = rule->keras_perm;
      c.label = rule->keras_label;
      break;
  }
  if (rule->depthwise) {
    // [1,H,W,C*M] -> [H,W,C*M,1] -> [H,W,C,M]. C comes from the op's input, else from the
    // (possibly stale) depth_multiplier option.
    const auto shape = t.shape();
    const std::int64_t cm = shape[3];
    std::int64_t channels = 0;
    if (const auto inputs = op.inputs(); !inputs.empty() && inputs[0] >= 0) {
      const auto in_shape = sg.tensor(inputs[0]).shape();
      if (!in_shape.empty() && in_shape.back() > 0 && cm % in_shape.back() == 0) channels = in_shape.back();
    }
    if (channels == 0) {
      const Value* m = layer.options.find("depth_multiplier");
      const std::int64_t mult = (m && m->is_int() && m->as_int() > 0) ? m->as_int() : 1;
      channels = (cm % mult == 0) ? cm / mult : cm;
    }
    if (channels <= 0) channels = 1;  // an empty filter (C*M = 0): [H,W,1,0]
    c.shape = {shape[1], shape[2], channels, cm / channels};
  }
  return c;
}

Array to_layout(const Model& model, const Layer& layer, const Param& param, const Array& values, Framework framework) {
  if (framework == Framework::tflite) return values;
  const auto c = layout_conversion(model, layer, param, framework);
  if (!c) return values;
  Array out = c->perm.empty() ? values : transpose(values, c->perm);
  return c->shape.empty() ? out : out.reshape(c->shape);
}

int converted_axis(const LayoutConversion& conversion, int axis) {
  if (conversion.perm.empty()) return axis;
  for (std::size_t i = 0; i < conversion.perm.size(); ++i)
    if (conversion.perm[i] == axis) return static_cast<int>(i);
  return axis;
}

}  // namespace litelens
