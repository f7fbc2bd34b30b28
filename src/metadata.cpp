// Model metadata entries and associated files. Model::open leaves both alone; everything here
// verifies its input when asked, so a model with broken metadata still opens and reads.
#include "litelens/metadata.h"

#include "litelens/atomic_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <unordered_set>

#include "conversion_metadata_generated.h"
#include "metadata_generated.h"
#include "zip_archive.h"

namespace litelens {

namespace fbs = tflite_metadata;
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kModelMetadataName = "TFLITE_METADATA";
constexpr std::string_view kConversionName = "CONVERSION_METADATA";

[[noreturn]] void fail(const std::string& label, std::string message, std::optional<std::uint64_t> offset) {
  throw Error(ErrorKind::invalid_metadata, label, std::move(message), offset);
}

// A FlatBuffer may reference one table or vector from many places, so a small hostile buffer
// could decode into an enormous tree. Decoding draws every copied byte from a budget
// proportional to the buffer's size and gives up, as invalid metadata, when it runs out.
struct DecodeBudget {
  std::uint64_t left = 0;
  std::string what;
  const std::string* label = nullptr;
  std::optional<std::uint64_t> offset;
};
thread_local DecodeBudget* t_budget = nullptr;

class BudgetScope {
 public:
  BudgetScope(std::size_t buffer_size, std::string what, const std::string& label, std::optional<std::uint64_t> offset)
      : budget_{64 * static_cast<std::uint64_t>(buffer_size) + (1u << 20), std::move(what), &label, offset},
        previous_(t_budget) {
    t_budget = &budget_;
  }
  ~BudgetScope() { t_budget = previous_; }
  BudgetScope(const BudgetScope&) = delete;
  BudgetScope& operator=(const BudgetScope&) = delete;

 private:
  DecodeBudget budget_;
  DecodeBudget* previous_;
};

void charge(std::uint64_t bytes) {
  DecodeBudget* b = t_budget;
  if (!b) return;
  // Every decoded item costs at least a little, so huge counts of empty items are caught too.
  bytes += 8;
  if (bytes > b->left)
    throw Error(ErrorKind::invalid_metadata, *b->label,
                b->what + " references the same data so many times that decoding it would not end", b->offset);
  b->left -= bytes;
}

std::string str(const flatbuffers::String* s) {
  charge(s ? s->size() : 0);
  return s ? s->str() : std::string();
}

std::vector<std::string> strings(const flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>* v) {
  std::vector<std::string> out;
  if (v)
    for (const auto* s : *v) out.push_back(str(s));
  return out;
}

template <class T>
std::vector<T> scalars(const flatbuffers::Vector<T>* v) {
  std::vector<T> out;
  if (!v) return out;
  charge(static_cast<std::uint64_t>(v->size()) * sizeof(T));
  out.assign(v->begin(), v->end());
  return out;
}

// Enum names for codes this build knows; "UNKNOWN(n)" for newer ones.
template <class E>
std::string enum_name(const char* name, E code) {
  if (name && *name) return name;
  return fmt::format("UNKNOWN({})", static_cast<long long>(code));
}

// The FlatBuffers verifier insists on aligned tables and scalars, and metadata buffers written by
// Python tools are only 4-byte aligned inside the model. Decode from an aligned copy.
struct AlignedCopy {
  std::unique_ptr<std::byte[]> bytes;
  std::size_t size = 0;
  explicit AlignedCopy(std::span<const std::byte> in)
      : bytes(new std::byte[in.empty() ? 1 : in.size()]), size(in.size()) {
    if (!in.empty()) std::memcpy(bytes.get(), in.data(), in.size());
  }
  const std::uint8_t* data() const { return reinterpret_cast<const std::uint8_t*>(bytes.get()); }
};

std::optional<MetadataEntry> find_entry(const Model& model, std::string_view name) {
  for (auto& e : model.metadata())
    if (e.name == name) return std::move(e);
  return std::nullopt;
}

// ---- TFLITE_METADATA ----------------------------------------------------------------------------

AssociatedFileInfo file_info(const fbs::AssociatedFile* f) {
  charge(sizeof(void*) * 16);
  AssociatedFileInfo out;
  out.name = str(f->name());
  out.description = str(f->description());
  out.type = static_cast<int>(f->type());
  out.type_name = enum_name(fbs::EnumNameAssociatedFileType(f->type()), f->type());
  out.locale = str(f->locale());
  out.version = str(f->version());
  return out;
}

std::vector<AssociatedFileInfo> file_infos(const flatbuffers::Vector<flatbuffers::Offset<fbs::AssociatedFile>>* v) {
  std::vector<AssociatedFileInfo> out;
  if (v)
    for (const auto* f : *v) out.push_back(file_info(f));
  return out;
}

ContentInfo content_info(const fbs::Content* c) {
  charge(sizeof(void*) * 16);
  ContentInfo out;
  out.kind_code = static_cast<int>(c->content_properties_type());
  switch (c->content_properties_type()) {
    case fbs::ContentProperties_NONE:
      out.kind = ContentInfo::Kind::none;
      break;
    case fbs::ContentProperties_FeatureProperties:
      out.kind = ContentInfo::Kind::feature;
      break;
    case fbs::ContentProperties_ImageProperties: {
      out.kind = ContentInfo::Kind::image;
      const auto* p = c->content_properties_as_ImageProperties();
      if (!p) break;
      out.color_space = enum_name(fbs::EnumNameColorSpaceType(p->color_space()), p->color_space());
      if (const auto* size = p->default_size()) {
        out.default_width = size->width();
        out.default_height = size->height();
      }
      break;
    }
    case fbs::ContentProperties_BoundingBoxProperties: {
      out.kind = ContentInfo::Kind::bounding_box;
      const auto* p = c->content_properties_as_BoundingBoxProperties();
      if (!p) break;
      out.box_index = scalars(p->index());
      out.box_type = enum_name(fbs::EnumNameBoundingBoxType(p->type()), p->type());
      out.coordinate_type = enum_name(fbs::EnumNameCoordinateType(p->coordinate_type()), p->coordinate_type());
      break;
    }
    case fbs::ContentProperties_AudioProperties: {
      out.kind = ContentInfo::Kind::audio;
      const auto* p = c->content_properties_as_AudioProperties();
      if (!p) break;
      out.sample_rate = p->sample_rate();
      out.channels = p->channels();
      break;
    }
    default:
      out.kind = ContentInfo::Kind::unknown;
      break;
  }
  // A known tag whose table is absent passes the verifier; it decodes as that kind with defaults.
  if (const auto* r = c->range()) out.range = DimensionRange{r->min(), r->max()};
  return out;
}

ProcessUnitInfo process_unit(const fbs::ProcessUnit* u) {
  charge(sizeof(void*) * 16);
  ProcessUnitInfo out;
  out.kind_code = static_cast<int>(u->options_type());
  switch (u->options_type()) {
    case fbs::ProcessUnitOptions_NONE:
      out.kind = ProcessUnitInfo::Kind::none;
      break;
    case fbs::ProcessUnitOptions_NormalizationOptions: {
      out.kind = ProcessUnitInfo::Kind::normalization;
      const auto* o = u->options_as_NormalizationOptions();
      if (!o) break;
      out.mean = scalars(o->mean());
      out.std = scalars(o->std());
      break;
    }
    case fbs::ProcessUnitOptions_ScoreCalibrationOptions: {
      out.kind = ProcessUnitInfo::Kind::score_calibration;
      const auto* o = u->options_as_ScoreCalibrationOptions();
      if (!o) break;
      out.score_transformation =
          enum_name(fbs::EnumNameScoreTransformationType(o->score_transformation()), o->score_transformation());
      out.default_score = o->default_score();
      break;
    }
    case fbs::ProcessUnitOptions_ScoreThresholdingOptions:
      out.kind = ProcessUnitInfo::Kind::score_thresholding;
      if (const auto* o = u->options_as_ScoreThresholdingOptions()) out.global_score_threshold = o->global_score_threshold();
      break;
    case fbs::ProcessUnitOptions_BertTokenizerOptions:
      out.kind = ProcessUnitInfo::Kind::bert_tokenizer;
      if (const auto* o = u->options_as_BertTokenizerOptions()) out.vocab_files = file_infos(o->vocab_file());
      break;
    case fbs::ProcessUnitOptions_SentencePieceTokenizerOptions: {
      out.kind = ProcessUnitInfo::Kind::sentence_piece_tokenizer;
      const auto* o = u->options_as_SentencePieceTokenizerOptions();
      if (!o) break;
      out.sentence_piece_models = file_infos(o->sentencePiece_model());
      out.vocab_files = file_infos(o->vocab_file());
      break;
    }
    case fbs::ProcessUnitOptions_RegexTokenizerOptions: {
      out.kind = ProcessUnitInfo::Kind::regex_tokenizer;
      const auto* o = u->options_as_RegexTokenizerOptions();
      if (!o) break;
      out.delim_regex_pattern = str(o->delim_regex_pattern());
      out.vocab_files = file_infos(o->vocab_file());
      break;
    }
    default:
      out.kind = ProcessUnitInfo::Kind::unknown;
      break;
  }
  return out;
}

std::vector<ProcessUnitInfo> process_units(const flatbuffers::Vector<flatbuffers::Offset<fbs::ProcessUnit>>* v) {
  std::vector<ProcessUnitInfo> out;
  if (v)
    for (const auto* u : *v) out.push_back(process_unit(u));
  return out;
}

TensorMetadataInfo tensor_info(const fbs::TensorMetadata* t) {
  charge(sizeof(void*) * 16);
  TensorMetadataInfo out;
  out.name = str(t->name());
  out.description = str(t->description());
  out.dimension_names = strings(t->dimension_names());
  if (const auto* c = t->content()) out.content = content_info(c);
  out.process_units = process_units(t->process_units());
  if (const auto* s = t->stats()) {
    out.stats_max = scalars(s->max());
    out.stats_min = scalars(s->min());
  }
  out.associated_files = file_infos(t->associated_files());
  return out;
}

std::vector<TensorMetadataInfo> tensor_infos(const flatbuffers::Vector<flatbuffers::Offset<fbs::TensorMetadata>>* v) {
  std::vector<TensorMetadataInfo> out;
  if (v)
    for (const auto* t : *v) out.push_back(tensor_info(t));
  return out;
}

std::vector<TensorGroupInfo> groups(const flatbuffers::Vector<flatbuffers::Offset<fbs::TensorGroup>>* v) {
  std::vector<TensorGroupInfo> out;
  if (v)
    for (const auto* g : *v) out.push_back({str(g->name()), strings(g->tensor_names())});
  return out;
}

SubgraphMetadataInfo subgraph_info(const fbs::SubGraphMetadata* sg) {
  charge(sizeof(void*) * 16);
  SubgraphMetadataInfo out;
  out.name = str(sg->name());
  out.description = str(sg->description());
  out.inputs = tensor_infos(sg->input_tensor_metadata());
  out.outputs = tensor_infos(sg->output_tensor_metadata());
  out.associated_files = file_infos(sg->associated_files());
  out.input_process_units = process_units(sg->input_process_units());
  out.output_process_units = process_units(sg->output_process_units());
  out.input_tensor_groups = groups(sg->input_tensor_groups());
  out.output_tensor_groups = groups(sg->output_tensor_groups());
  if (const auto* custom = sg->custom_metadata())
    for (const auto* c : *custom) out.custom_metadata.push_back({str(c->name()), scalars(c->data())});
  return out;
}

// ---- Associated files -------------------------------------------------------------------------

std::vector<detail::ZipMember> archive_members(const Model& model) {
  auto dir = detail::read_zip_directory(model.bytes(), model.flatbuffer_size(), model.label());
  if (!dir) return {};
  return std::move(dir->members);
}

AssociatedFile public_file(const detail::ZipMember& m) {
  AssociatedFile f;
  f.name = m.name;
  f.offset = m.data_offset;
  f.size = m.size;
  f.compressed_size = m.compressed_size;
  f.compression = m.method;
  f.compression_name = detail::zip_method_name(m.method);
  f.crc32 = m.crc32;
  f.header_offset = m.header_offset;
  return f;
}

// The stored bytes of `file`, after checking the description fits the model (it is caller data).
std::span<const std::byte> raw_bytes(const Model& model, const AssociatedFile& file) {
  const std::uint64_t size = model.file_size();
  if (file.compressed_size > size || file.offset > size - file.compressed_size || file.offset < model.flatbuffer_size())
    throw std::invalid_argument("associated file '" + file.name + "' does not describe bytes of " + model.label());
  return model.bytes().subspan(static_cast<std::size_t>(file.offset), static_cast<std::size_t>(file.compressed_size));
}

void check_crc(const Model& model, const AssociatedFile& file, std::uint32_t actual) {
  if (actual != file.crc32)
    fail(model.label(),
         fmt::format("associated file '{}': CRC-32 is {:08x}, but the archive records {:08x}", file.name, actual,
                     file.crc32),
         file.offset);
}

// Streams the decoded bytes of `file` into `sink`, checking size and CRC.
void decode_member(const Model& model, const AssociatedFile& file,
                   const std::function<void(std::span<const std::byte>)>& sink) {
  const auto raw = raw_bytes(model, file);
  if (file.compression == 0) {
    check_crc(model, file, detail::crc32_of(raw));
    sink(raw);
    return;
  }
  if (file.compression != 8)
    fail(model.label(),
         fmt::format("associated file '{}' uses ZIP compression method {}; litelens reads only stored and deflate",
                     file.name, file.compression),
         file.header_offset);
  check_crc(model, file, detail::inflate_member(raw, file.size, sink, model.label(), file.name, file.offset));
}

bool is_within(const fs::path& inner, const fs::path& outer) {
  auto i = inner.begin();
  for (auto o = outer.begin(); o != outer.end(); ++o, ++i) {
    if (o->empty()) continue;  // a trailing separator
    if (i == inner.end() || *i != *o) return false;
  }
  return true;
}

}  // namespace

// ---- names ------------------------------------------------------------------------------------

std::string_view content_kind_name(ContentInfo::Kind kind) noexcept {
  switch (kind) {
    case ContentInfo::Kind::none: return "none";
    case ContentInfo::Kind::feature: return "feature";
    case ContentInfo::Kind::image: return "image";
    case ContentInfo::Kind::bounding_box: return "bounding_box";
    case ContentInfo::Kind::audio: return "audio";
    case ContentInfo::Kind::unknown: return "unknown";
  }
  return "unknown";
}

std::string_view process_unit_kind_name(ProcessUnitInfo::Kind kind) noexcept {
  switch (kind) {
    case ProcessUnitInfo::Kind::none: return "none";
    case ProcessUnitInfo::Kind::normalization: return "normalization";
    case ProcessUnitInfo::Kind::score_calibration: return "score_calibration";
    case ProcessUnitInfo::Kind::score_thresholding: return "score_thresholding";
    case ProcessUnitInfo::Kind::bert_tokenizer: return "bert_tokenizer";
    case ProcessUnitInfo::Kind::sentence_piece_tokenizer: return "sentence_piece_tokenizer";
    case ProcessUnitInfo::Kind::regex_tokenizer: return "regex_tokenizer";
    case ProcessUnitInfo::Kind::unknown: return "unknown";
  }
  return "unknown";
}

// ---- TFLITE_METADATA --------------------------------------------------------------------------

std::vector<AssociatedFileInfo> ModelInfo::all_associated_files() const {
  std::vector<AssociatedFileInfo> out;
  std::unordered_set<std::string> seen;
  const auto add = [&](const std::vector<AssociatedFileInfo>& files) {
    for (const auto& f : files)
      if (seen.insert(f.name).second) out.push_back(f);
  };
  const auto add_units = [&](const std::vector<ProcessUnitInfo>& units) {
    for (const auto& u : units) {
      add(u.sentence_piece_models);
      add(u.vocab_files);
    }
  };
  add(associated_files);
  for (const auto& sg : subgraphs) {
    add(sg.associated_files);
    add_units(sg.input_process_units);
    add_units(sg.output_process_units);
    for (const auto* list : {&sg.inputs, &sg.outputs})
      for (const auto& t : *list) {
        add(t.associated_files);
        add_units(t.process_units);
      }
  }
  return out;
}

ModelInfo decode_model_metadata(std::span<const std::byte> bytes, const std::string& label,
                                std::optional<std::uint64_t> offset) {
  if (bytes.empty()) fail(label, "TFLITE_METADATA is empty", offset);
  if (bytes.size() < 8)
    fail(label, fmt::format("TFLITE_METADATA is {} bytes, too short for a FlatBuffer", bytes.size()), offset);
  if (bytes.size() >= FLATBUFFERS_MAX_BUFFER_SIZE) fail(label, "TFLITE_METADATA is larger than 2 GiB", offset);
  const AlignedCopy copy(bytes);
  if (!flatbuffers::BufferHasIdentifier(copy.data(), fbs::ModelMetadataIdentifier()))
    fail(label, "TFLITE_METADATA does not carry the \"M001\" identifier (not TFLite Support metadata?)",
         offset ? std::optional<std::uint64_t>(*offset + 4) : std::nullopt);
  flatbuffers::Verifier verifier(copy.data(), copy.size);
  if (!fbs::VerifyModelMetadataBuffer(verifier))
    fail(label,
         "TFLITE_METADATA failed FlatBuffers verification (truncated, or an offset or vector points outside it)",
         offset);
  const auto* root = fbs::GetModelMetadata(copy.data());
  const BudgetScope budget(copy.size, "TFLITE_METADATA", label, offset);
  ModelInfo out;
  out.name = str(root->name());
  out.description = str(root->description());
  out.version = str(root->version());
  out.author = str(root->author());
  out.license = str(root->license());
  out.min_parser_version = str(root->min_parser_version());
  if (const auto* sgs = root->subgraph_metadata())
    for (const auto* sg : *sgs) out.subgraphs.push_back(subgraph_info(sg));
  out.associated_files = file_infos(root->associated_files());
  return out;
}

std::optional<ModelInfo> read_model_metadata(const Model& model) {
  const auto entry = find_entry(model, kModelMetadataName);
  if (!entry) return std::nullopt;
  return decode_model_metadata(entry->data, model.label(), entry->data_offset);
}

// ---- CONVERSION_METADATA ----------------------------------------------------------------------

std::optional<ConversionInfo> read_conversion_metadata(const Model& model) {
  namespace cv = tflite_conversion;
  const auto entry = find_entry(model, kConversionName);
  if (!entry) return std::nullopt;
  const auto& bytes = entry->data;
  if (bytes.size() < 8)
    fail(model.label(), fmt::format("CONVERSION_METADATA is {} bytes, too short for a FlatBuffer", bytes.size()),
         entry->data_offset);
  if (bytes.size() >= FLATBUFFERS_MAX_BUFFER_SIZE)
    fail(model.label(), "CONVERSION_METADATA is larger than 2 GiB", entry->data_offset);
  const AlignedCopy copy(bytes);
  flatbuffers::Verifier verifier(copy.data(), copy.size);
  if (!cv::VerifyConversionMetadataBuffer(verifier))
    fail(model.label(), "CONVERSION_METADATA failed FlatBuffers verification", entry->data_offset);
  const auto* root = cv::GetConversionMetadata(copy.data());
  const BudgetScope budget(copy.size, "CONVERSION_METADATA", model.label(), entry->data_offset);
  ConversionInfo out;
  if (const auto* env = root->environment()) {
    out.has_environment = true;
    out.tensorflow_version = str(env->tensorflow_version());
    out.api_version = env->api_version();
    out.model_type = enum_name(cv::EnumNameModelType(env->model_type()), env->model_type());
    out.model_hash = env->model_hash();
  }
  if (const auto* opt = root->options()) {
    out.has_options = true;
    if (const auto* modes = opt->model_optimization_modes())
      for (auto mode : *modes)
        out.optimization_modes.push_back(
            enum_name(cv::EnumNameModelOptimizationMode(static_cast<cv::ModelOptimizationMode>(mode)), mode));
    out.allow_custom_ops = opt->allow_custom_ops();
    out.enable_select_tf_ops = opt->enable_select_tf_ops();
    out.force_select_tf_ops = opt->force_select_tf_ops();
    if (const auto* blocks = opt->sparsity_block_sizes())
      for (const auto* b : *blocks) out.sparsity_block_sizes.push_back(scalars(b->values()));
  }
  return out;
}

// ---- small entries ----------------------------------------------------------------------------

std::optional<RuntimeVersion> read_min_runtime_version(const Model& model) {
  const auto bytes = model.metadata("min_runtime_version");
  if (!bytes) return std::nullopt;
  RuntimeVersion out;
  if (bytes->empty()) {  // no NUL either; and memchr must not be given its null pointer
    out.terminated = false;
    return out;
  }
  const auto* p = reinterpret_cast<const char*>(bytes->data());
  const auto* nul = static_cast<const char*>(std::memchr(p, 0, bytes->size()));
  out.terminated = nul != nullptr;
  out.version.assign(p, nul ? static_cast<std::size_t>(nul - p) : bytes->size());
  return out;
}

std::string metadata_bytes_text(std::span<const std::byte> bytes) {
  std::size_t n = bytes.size();
  while (n > 0 && bytes[n - 1] == std::byte{0}) --n;
  bool printable = true;
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = std::to_integer<unsigned>(bytes[i]);
    if (c < 0x20 || c > 0x7E) printable = false;
  }
  if (printable) return std::string(reinterpret_cast<const char*>(bytes.data()), n);
  std::string out = "0x";
  for (std::byte b : bytes) out += fmt::format("{:02x}", std::to_integer<unsigned>(b));
  return out;
}

// ---- associated files -------------------------------------------------------------------------

std::vector<AssociatedFile> associated_files(const Model& model) {
  std::vector<AssociatedFile> out;
  for (const auto& m : archive_members(model))
    if (!m.is_directory) out.push_back(public_file(m));
  return out;
}

std::optional<AssociatedFile> find_associated_file(const Model& model, std::string_view name) {
  for (auto& f : associated_files(model))
    if (f.name == name) return std::move(f);
  return std::nullopt;
}

std::span<const std::byte> associated_file_data(const Model& model, const AssociatedFile& file) {
  if (!file.is_stored())
    throw std::invalid_argument("associated file '" + file.name + "' is compressed (" + file.compression_name +
                                "); use read_associated_file()");
  const auto raw = raw_bytes(model, file);
  check_crc(model, file, detail::crc32_of(raw));
  return raw;
}

std::vector<std::byte> read_associated_file(const Model& model, const AssociatedFile& file) {
  std::vector<std::byte> out;
  // Reserve at most what the file could hold: declared sizes are not trusted for allocation.
  out.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(file.size, model.file_size())));
  decode_member(model, file, [&](std::span<const std::byte> chunk) { out.insert(out.end(), chunk.begin(), chunk.end()); });
  return out;
}

std::vector<fs::path> extract_associated_files(const Model& model, const fs::path& dir) {
  const auto files = associated_files(model);  // validates the whole archive, names included
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(ErrorKind::output, dir.string(), "cannot create the output folder: " + ec.message());
  const fs::path root = fs::canonical(dir, ec);
  if (ec) throw Error(ErrorKind::output, dir.string(), "cannot resolve the output folder: " + ec.message());

  // Phase 1: every member decoded, checked and flushed to a temporary file beside its target.
  // Phase 2: the renames. A failure in phase 1 leaves the folder as it was (temporaries are
  // removed by their destructors).
  std::vector<AtomicFile> temps;
  std::vector<fs::path> targets;
  for (const auto& f : files) {
    const fs::path target = root / fs::path(f.name);
    const fs::path parent = target.parent_path();
    fs::create_directories(parent, ec);
    if (ec) throw Error(ErrorKind::output, parent.string(), "cannot create folder: " + ec.message());
    // An existing symlink inside the output folder must not lead the write elsewhere.
    const fs::path real_parent = fs::canonical(parent, ec);
    if (ec || !is_within(real_parent, root))
      throw Error(ErrorKind::output, target.string(), "its folder resolves outside the output folder");
    if (fs::is_directory(fs::symlink_status(target)))
      throw Error(ErrorKind::output, target.string(), "a folder of that name exists");
    AtomicFile temp(target);
    decode_member(model, f, [&](std::span<const std::byte> chunk) { temp.write(chunk); });
    temp.flush();
    temps.push_back(std::move(temp));
    targets.push_back(target);
  }
  for (auto& t : temps) t.commit();  // each commit also syncs its folder
  return targets;
}

}  // namespace litelens
