#include "metadata_view.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

namespace litelens::cli {

using json = nlohmann::ordered_json;

namespace {

// Everything the metadata views show, each part decoded on its own so one broken entry does not
// hide the others.
struct Report {
  std::optional<RuntimeVersion> min_runtime_version;
  std::optional<ConversionInfo> conversion;
  std::optional<std::string> buffer_location;
  std::optional<std::string> reduced_precision_support;
  std::optional<ModelInfo> info;
  std::vector<AssociatedFile> files;
  bool archive_ok = true;
  struct Problem {
    std::string entry;
    Error error;
  };
  std::vector<Problem> problems;
};

template <class F>
void attempt(Report& r, const char* entry, F&& f) {
  try {
    f();
  } catch (const Error& e) {
    r.problems.push_back({entry, e});
  }
}

Report collect(const Model& model) {
  Report r;
  r.min_runtime_version = read_min_runtime_version(model);
  if (auto b = model.metadata("buffer_location")) r.buffer_location = metadata_bytes_text(*b);
  if (auto b = model.metadata("reduced_precision_support")) r.reduced_precision_support = metadata_bytes_text(*b);
  attempt(r, "CONVERSION_METADATA", [&] { r.conversion = read_conversion_metadata(model); });
  attempt(r, "TFLITE_METADATA", [&] { r.info = read_model_metadata(model); });
  attempt(r, "associated files", [&] {
    try {
      r.files = associated_files(model);
    } catch (...) {
      r.archive_ok = false;
      throw;
    }
  });
  for (const auto& p : r.problems)
    fmt::print(stderr, "litelens: warning: {} [{}]\n", p.error.what(), error_kind_name(p.error.kind()));
  return r;
}

template <class Span>
json list(const Span& values) {
  json out = json::array();
  for (const auto& v : values) out.push_back(v);
  return out;
}

json nullable(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

json file_info_json(const AssociatedFileInfo& f, const std::set<std::string>& archived, bool archive_ok) {
  json out = {{"name", f.name},
              {"description", nullable(f.description)},
              {"type", f.type_name},
              {"locale", nullable(f.locale)},
              {"version", nullable(f.version)}};
  out["in_archive"] = archive_ok ? json(archived.count(f.name) > 0) : json(nullptr);
  return out;
}

json file_infos_json(const std::vector<AssociatedFileInfo>& files, const std::set<std::string>& archived,
                     bool archive_ok) {
  json out = json::array();
  for (const auto& f : files) out.push_back(file_info_json(f, archived, archive_ok));
  return out;
}

json content_json(const std::optional<ContentInfo>& c) {
  if (!c) return nullptr;
  json out = {{"kind", content_kind_name(c->kind)}};
  switch (c->kind) {
    case ContentInfo::Kind::image:
      out["color_space"] = c->color_space;
      out["default_size"] = c->default_width ? json{{"width", *c->default_width}, {"height", *c->default_height}}
                                             : json(nullptr);
      break;
    case ContentInfo::Kind::bounding_box:
      out["index"] = list(c->box_index);
      out["type"] = c->box_type;
      out["coordinate_type"] = c->coordinate_type;
      break;
    case ContentInfo::Kind::audio:
      out["sample_rate"] = c->sample_rate;
      out["channels"] = c->channels;
      break;
    case ContentInfo::Kind::unknown:
      out["code"] = c->kind_code;
      break;
    default:
      break;
  }
  out["range"] = c->range ? json{{"min", c->range->min}, {"max", c->range->max}} : json(nullptr);
  return out;
}

json process_units_json(const std::vector<ProcessUnitInfo>& units, const std::set<std::string>& archived,
                        bool archive_ok) {
  json out = json::array();
  for (const auto& u : units) {
    json j = {{"kind", process_unit_kind_name(u.kind)}};
    switch (u.kind) {
      case ProcessUnitInfo::Kind::normalization:
        j["mean"] = list(u.mean);
        j["std"] = list(u.std);
        break;
      case ProcessUnitInfo::Kind::score_calibration:
        j["score_transformation"] = u.score_transformation;
        j["default_score"] = u.default_score;
        break;
      case ProcessUnitInfo::Kind::score_thresholding:
        j["global_score_threshold"] = u.global_score_threshold;
        break;
      case ProcessUnitInfo::Kind::regex_tokenizer:
        j["delim_regex_pattern"] = u.delim_regex_pattern;
        j["vocab_files"] = file_infos_json(u.vocab_files, archived, archive_ok);
        break;
      case ProcessUnitInfo::Kind::sentence_piece_tokenizer:
        j["sentence_piece_models"] = file_infos_json(u.sentence_piece_models, archived, archive_ok);
        j["vocab_files"] = file_infos_json(u.vocab_files, archived, archive_ok);
        break;
      case ProcessUnitInfo::Kind::bert_tokenizer:
        j["vocab_files"] = file_infos_json(u.vocab_files, archived, archive_ok);
        break;
      case ProcessUnitInfo::Kind::unknown:
        j["code"] = u.kind_code;
        break;
      case ProcessUnitInfo::Kind::none:
        break;
    }
    out.push_back(std::move(j));
  }
  return out;
}

json tensors_json(const std::vector<TensorMetadataInfo>& tensors, const std::set<std::string>& archived,
                  bool archive_ok) {
  json out = json::array();
  for (const auto& t : tensors) {
    json stats = nullptr;
    if (!t.stats_min.empty() || !t.stats_max.empty()) stats = {{"min", list(t.stats_min)}, {"max", list(t.stats_max)}};
    out.push_back({{"name", t.name},
                   {"description", nullable(t.description)},
                   {"dimension_names", list(t.dimension_names)},
                   {"content", content_json(t.content)},
                   {"process_units", process_units_json(t.process_units, archived, archive_ok)},
                   {"stats", std::move(stats)},
                   {"associated_files", file_infos_json(t.associated_files, archived, archive_ok)}});
  }
  return out;
}

json groups_json(const std::vector<TensorGroupInfo>& groups) {
  json out = json::array();
  for (const auto& g : groups) out.push_back({{"name", g.name}, {"tensor_names", list(g.tensor_names)}});
  return out;
}

json model_info_json(const ModelInfo& m, const std::set<std::string>& archived, bool archive_ok) {
  json subgraphs = json::array();
  for (const auto& sg : m.subgraphs) {
    json custom = json::array();
    for (const auto& c : sg.custom_metadata) custom.push_back({{"name", c.name}, {"bytes", c.data.size()}});
    subgraphs.push_back({{"name", nullable(sg.name)},
                         {"description", nullable(sg.description)},
                         {"inputs", tensors_json(sg.inputs, archived, archive_ok)},
                         {"outputs", tensors_json(sg.outputs, archived, archive_ok)},
                         {"input_process_units", process_units_json(sg.input_process_units, archived, archive_ok)},
                         {"output_process_units", process_units_json(sg.output_process_units, archived, archive_ok)},
                         {"input_tensor_groups", groups_json(sg.input_tensor_groups)},
                         {"output_tensor_groups", groups_json(sg.output_tensor_groups)},
                         {"associated_files", file_infos_json(sg.associated_files, archived, archive_ok)},
                         {"custom_metadata", std::move(custom)}});
  }
  return {{"name", nullable(m.name)},
          {"description", nullable(m.description)},
          {"version", nullable(m.version)},
          {"author", nullable(m.author)},
          {"license", nullable(m.license)},
          {"min_parser_version", nullable(m.min_parser_version)},
          {"subgraphs", std::move(subgraphs)},
          {"associated_files", file_infos_json(m.associated_files, archived, archive_ok)}};
}

json conversion_json(const std::optional<ConversionInfo>& c) {
  if (!c) return nullptr;
  json out = json::object();
  if (c->has_environment)
    out["environment"] = {{"tensorflow_version", c->tensorflow_version},
                          {"api_version", c->api_version},
                          {"model_type", c->model_type},
                          {"model_hash", c->model_hash}};
  if (c->has_options) {
    json blocks = json::array();
    for (const auto& b : c->sparsity_block_sizes) blocks.push_back(list(b));
    out["options"] = {{"model_optimization_modes", list(c->optimization_modes)},
                      {"allow_custom_ops", c->allow_custom_ops},
                      {"enable_select_tf_ops", c->enable_select_tf_ops},
                      {"force_select_tf_ops", c->force_select_tf_ops},
                      {"sparsity_block_sizes", std::move(blocks)}};
  }
  return out;
}

std::set<std::string> archived_names(const Report& r) {
  std::set<std::string> out;
  for (const auto& f : r.files) out.insert(f.name);
  return out;
}

// ---- table helpers ----

std::string floats_text(const std::vector<float>& v) {
  std::vector<std::string> parts;
  for (std::size_t i = 0; i < v.size() && i < 8; ++i) parts.push_back(fmt::format("{:g}", v[i]));
  if (v.size() > 8) parts.push_back(fmt::format("... ({} values)", v.size()));
  return fmt::format("[{}]", fmt::join(parts, ", "));
}

std::string file_ref_text(const AssociatedFileInfo& f, const std::set<std::string>& archived, bool archive_ok) {
  std::string s = fmt::format("{} ({}", f.name, f.type_name);
  if (!f.locale.empty()) s += ", locale " + f.locale;
  if (!f.version.empty()) s += ", version " + f.version;
  s += ")";
  if (archive_ok && !archived.count(f.name)) s += " [not in the archive]";
  if (!f.description.empty()) s += ": " + f.description;
  return s;
}

std::string content_text(const ContentInfo& c) {
  std::string s(content_kind_name(c.kind));
  switch (c.kind) {
    case ContentInfo::Kind::image:
      s += " " + c.color_space;
      if (c.default_width) s += fmt::format(" {}x{}", *c.default_width, *c.default_height);
      break;
    case ContentInfo::Kind::bounding_box:
      s += fmt::format(" {} {}", c.box_type, c.coordinate_type);
      if (!c.box_index.empty()) s += fmt::format(" index [{}]", fmt::join(c.box_index, ","));
      break;
    case ContentInfo::Kind::audio:
      s += fmt::format(" {} Hz, {} channels", c.sample_rate, c.channels);
      break;
    case ContentInfo::Kind::unknown:
      s += fmt::format(" (code {})", c.kind_code);
      break;
    default:
      break;
  }
  if (c.range) s += fmt::format(", dims {}..{}", c.range->min, c.range->max);
  return s;
}

// "[vocab.txt, extra.txt (not in the archive)]": the files a tokenizer names, by name only (their
// types and locales are in --json).
std::string names_text(const std::vector<AssociatedFileInfo>& files, const std::set<std::string>& archived,
                       bool archive_ok) {
  std::vector<std::string> names;
  for (const auto& f : files)
    names.push_back(archive_ok && !archived.count(f.name) ? f.name + " (not in the archive)" : f.name);
  return fmt::format("[{}]", fmt::join(names, ", "));
}

std::string unit_text(const ProcessUnitInfo& u, const std::set<std::string>& archived, bool archive_ok) {
  const auto names = [&](const std::vector<AssociatedFileInfo>& files) { return names_text(files, archived, archive_ok); };
  switch (u.kind) {
    case ProcessUnitInfo::Kind::normalization:
      return fmt::format("normalize mean {} std {}", floats_text(u.mean), floats_text(u.std));
    case ProcessUnitInfo::Kind::score_calibration:
      return fmt::format("score calibration {} default {:g}", u.score_transformation, u.default_score);
    case ProcessUnitInfo::Kind::score_thresholding:
      return fmt::format("score threshold {:g}", u.global_score_threshold);
    case ProcessUnitInfo::Kind::bert_tokenizer:
      return fmt::format("BERT tokenizer, vocab {}", names(u.vocab_files));
    case ProcessUnitInfo::Kind::sentence_piece_tokenizer: {
      std::string s = fmt::format("SentencePiece tokenizer, model {}", names(u.sentence_piece_models));
      // The vocabulary is optional for SentencePiece (the model file carries its own).
      if (!u.vocab_files.empty()) s += ", vocab " + names(u.vocab_files);
      return s;
    }
    case ProcessUnitInfo::Kind::regex_tokenizer:
      return fmt::format("regex tokenizer /{}/, vocab {}", u.delim_regex_pattern, names(u.vocab_files));
    case ProcessUnitInfo::Kind::unknown:
      return fmt::format("unknown process unit (code {})", u.kind_code);
    case ProcessUnitInfo::Kind::none:
      break;
  }
  return "empty process unit";
}

void print_tensors(std::FILE* out, const char* role, const std::vector<TensorMetadataInfo>& tensors,
                   const std::set<std::string>& archived, bool archive_ok) {
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    fmt::print(out, "    {} {:<3} {}\n", role, i, t.name.empty() ? "(unnamed)" : t.name);
    if (!t.description.empty()) fmt::print(out, "        description  {}\n", t.description);
    if (t.content) fmt::print(out, "        content      {}\n", content_text(*t.content));
    if (!t.dimension_names.empty())
      fmt::print(out, "        dimensions   [{}]\n", fmt::join(t.dimension_names, ", "));
    for (const auto& u : t.process_units)
      fmt::print(out, "        process      {}\n", unit_text(u, archived, archive_ok));
    if (!t.stats_min.empty() || !t.stats_max.empty())
      fmt::print(out, "        stats        min {} max {}\n", floats_text(t.stats_min), floats_text(t.stats_max));
    for (const auto& f : t.associated_files)
      fmt::print(out, "        file         {}\n", file_ref_text(f, archived, archive_ok));
  }
}

}  // namespace

json associated_file_json(const AssociatedFile& f) {
  return {{"name", f.name},
          {"size", f.size},
          {"compressed_size", f.compressed_size},
          {"compression", f.compression_name},
          {"crc32", fmt::format("{:08x}", f.crc32)},
          {"offset", f.offset},
          {"header_offset", f.header_offset}};
}

void print_associated_files(std::FILE* out, const std::vector<AssociatedFile>& files) {
  fmt::print(out, "  {:<40} {:>12} {:<9} {:>8} {:>12}\n", "name", "bytes", "method", "crc32", "offset");
  for (const auto& f : files)
    fmt::print(out, "  {:<40} {:>12} {:<9} {:08x} {:>12}\n", f.name, f.size, f.compression_name, f.crc32, f.offset);
}

json model_metadata_json(const Model& model) {
  const Report r = collect(model);
  const auto archived = archived_names(r);
  json files = json::array();
  for (const auto& f : r.files) files.push_back(associated_file_json(f));
  json problems = json::array();
  for (const auto& p : r.problems) {
    json item = {{"entry", p.entry}, {"kind", error_kind_name(p.error.kind())}, {"message", p.error.message()}};
    if (p.error.offset()) item["offset"] = *p.error.offset();
    problems.push_back(std::move(item));
  }
  json runtime = nullptr;
  if (r.min_runtime_version) runtime = r.min_runtime_version->version;
  return {{"min_runtime_version", std::move(runtime)},
          {"min_runtime_version_terminated",
           r.min_runtime_version ? json(r.min_runtime_version->terminated) : json(nullptr)},
          {"conversion_metadata", conversion_json(r.conversion)},
          {"buffer_location", r.buffer_location ? json(*r.buffer_location) : json(nullptr)},
          {"reduced_precision_support",
           r.reduced_precision_support ? json(*r.reduced_precision_support) : json(nullptr)},
          {"tflite_metadata", r.info ? model_info_json(*r.info, archived, r.archive_ok) : json(nullptr)},
          {"associated_files", r.archive_ok ? std::move(files) : json(nullptr)},
          {"errors", std::move(problems)}};
}

void print_model_metadata(std::FILE* out, const Model& model) {
  const Report r = collect(model);
  const auto archived = archived_names(r);
  const bool any_small = r.min_runtime_version || r.conversion || r.buffer_location || r.reduced_precision_support;
  if (any_small) {
    fmt::print(out, "\nmetadata entries\n");
    if (r.min_runtime_version)
      fmt::print(out, "  {:<26} {}{}\n", "min_runtime_version", r.min_runtime_version->version,
                 r.min_runtime_version->terminated ? "" : " (not NUL-terminated: the runtime rejects it)");
    if (r.buffer_location) fmt::print(out, "  {:<26} {}\n", "buffer_location", *r.buffer_location);
    if (r.reduced_precision_support)
      fmt::print(out, "  {:<26} {}\n", "reduced_precision_support", *r.reduced_precision_support);
    if (r.conversion) {
      const auto& c = *r.conversion;
      if (c.has_environment)
        fmt::print(out, "  {:<26} tensorflow {}, api {}, from {}, hash {:016x}\n", "CONVERSION_METADATA",
                   c.tensorflow_version.empty() ? "?" : c.tensorflow_version, c.api_version, c.model_type,
                   c.model_hash);
      if (c.has_options) {
        std::vector<std::string> flags;
        if (c.allow_custom_ops) flags.push_back("allow_custom_ops");
        if (c.enable_select_tf_ops) flags.push_back("enable_select_tf_ops");
        if (c.force_select_tf_ops) flags.push_back("force_select_tf_ops");
        fmt::print(out, "  {:<26} optimizations [{}]{}{}\n", c.has_environment ? "" : "CONVERSION_METADATA",
                   fmt::join(c.optimization_modes, ", "), flags.empty() ? "" : " ", fmt::join(flags, " "));
      }
    }
  }
  if (r.info) {
    const auto& m = *r.info;
    fmt::print(out, "\nmodel metadata (TFLITE_METADATA)\n");
    const auto field = [&](const char* name, const std::string& value) {
      if (!value.empty()) fmt::print(out, "  {:<13}{}\n", name, value);
    };
    field("name", m.name);
    field("version", m.version);
    field("author", m.author);
    field("license", m.license);
    field("description", m.description);
    field("parser", m.min_parser_version);
    for (std::size_t s = 0; s < m.subgraphs.size(); ++s) {
      const auto& sg = m.subgraphs[s];
      fmt::print(out, "  subgraph {}{}\n", s, sg.name.empty() ? "" : " " + sg.name);
      if (!sg.description.empty()) fmt::print(out, "    description {}\n", sg.description);
      print_tensors(out, "input ", sg.inputs, archived, r.archive_ok);
      print_tensors(out, "output", sg.outputs, archived, r.archive_ok);
      for (const auto& u : sg.input_process_units)
        fmt::print(out, "    input process   {}\n", unit_text(u, archived, r.archive_ok));
      for (const auto& u : sg.output_process_units)
        fmt::print(out, "    output process  {}\n", unit_text(u, archived, r.archive_ok));
      for (const auto& g : sg.input_tensor_groups)
        fmt::print(out, "    input group     {}: [{}]\n", g.name, fmt::join(g.tensor_names, ", "));
      for (const auto& g : sg.output_tensor_groups)
        fmt::print(out, "    output group    {}: [{}]\n", g.name, fmt::join(g.tensor_names, ", "));
      for (const auto& f : sg.associated_files)
        fmt::print(out, "    file            {}\n", file_ref_text(f, archived, r.archive_ok));
      for (const auto& c : sg.custom_metadata)
        fmt::print(out, "    custom          {} ({} bytes)\n", c.name, c.data.size());
    }
    for (const auto& f : m.associated_files)
      fmt::print(out, "  file         {}\n", file_ref_text(f, archived, r.archive_ok));
  }
  if (!r.files.empty()) {
    fmt::print(out, "\nassociated files ({} in the appended archive)\n", r.files.size());
    print_associated_files(out, r.files);
  }
}

}  // namespace litelens::cli
