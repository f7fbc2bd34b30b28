// What a model says about itself: decoded TFLITE_METADATA and CONVERSION_METADATA entries, the
// min_runtime_version entry, and the associated files appended to the model as a ZIP archive.
// Strings from the file go through py_str (invalid UTF-8 is replaced, never raised).
#include <nanobind/stl/filesystem.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "common.h"
#include "litelens/metadata.h"

// A read-only str property for a std::string field of T.
#define LITELENS_STR(T, field, doc) def_prop_ro(#field, [](const T& v) { return py_str(v.field); }, doc)
// A read-only list[str] property for a std::vector<std::string> field of T.
#define LITELENS_STRS(T, field, doc) \
  def_prop_ro(#field, [](const T& v) { return str_list(v.field); }, nb::sig("def " #field "(self) -> list[str]"), doc)

namespace litelens::py {

namespace {

nb::list str_list(const std::vector<std::string>& values) {
  nb::list out;
  for (const auto& s : values) out.append(py_str(s));
  return out;
}

}  // namespace

void init_metadata(nb::module_& m, ModelClass& model) {
  nb::class_<AssociatedFileInfo>(m, "AssociatedFileInfo", "A file the metadata refers to (by name).")
      .LITELENS_STR(AssociatedFileInfo, name, "The file's name (a member of the appended archive).")
      .LITELENS_STR(AssociatedFileInfo, description, "What the file holds.")
      .def_ro("type", &AssociatedFileInfo::type, "The AssociatedFileType code.")
      .LITELENS_STR(AssociatedFileInfo, type_name, "\"TENSOR_AXIS_LABELS\", \"VOCABULARY\", ..., \"UNKNOWN(n)\".")
      .LITELENS_STR(AssociatedFileInfo, locale, "Locale of the file (may be empty).")
      .LITELENS_STR(AssociatedFileInfo, version, "Version of the file (may be empty).")
      .def("__repr__", [](const AssociatedFileInfo& f) { return "<litelens.AssociatedFileInfo '" + f.name + "'>"; });

  nb::class_<ContentInfo>(m, "ContentInfo", "What a tensor holds (TensorMetadata.content).")
      .def_prop_ro("kind", [](const ContentInfo& c) { return py_str(content_kind_name(c.kind)); },
                   "\"none\", \"feature\", \"image\", \"bounding_box\", \"audio\" or \"unknown\".")
      .def_ro("kind_code", &ContentInfo::kind_code, "The raw union tag.")
      .LITELENS_STR(ContentInfo, color_space, "Image: \"RGB\", \"GRAYSCALE\" or \"UNKNOWN\".")
      .def_ro("default_width", &ContentInfo::default_width, "Image: default width, or None.")
      .def_ro("default_height", &ContentInfo::default_height, "Image: default height, or None.")
      .def_ro("box_index", &ContentInfo::box_index, "Bounding box: order of the four values (empty: natural).")
      .LITELENS_STR(ContentInfo, box_type, "Bounding box: \"BOUNDARIES\", \"UPPER_LEFT\", \"CENTER\", ...")
      .LITELENS_STR(ContentInfo, coordinate_type, "Bounding box: \"RATIO\" or \"PIXEL\".")
      .def_ro("sample_rate", &ContentInfo::sample_rate, "Audio: sample rate.")
      .def_ro("channels", &ContentInfo::channels, "Audio: channel count.")
      .def_prop_ro("range",
                   [](const ContentInfo& c) -> nb::object {
                     if (!c.range) return nb::none();
                     return nb::make_tuple(c.range->min, c.range->max);
                   },
                   nb::sig("def range(self) -> tuple[int, int] | None"),
                   "Inclusive (min, max) of the dimensions the content spans; None: all but the batch axis.");

  nb::class_<ProcessUnitInfo>(m, "ProcessUnitInfo", "A processing step applied outside the graph (ProcessUnit).")
      .def_prop_ro("kind", [](const ProcessUnitInfo& p) { return py_str(process_unit_kind_name(p.kind)); },
                   "\"normalization\", \"score_calibration\", \"score_thresholding\", \"bert_tokenizer\",\n"
                   "\"sentence_piece_tokenizer\", \"regex_tokenizer\", \"none\" or \"unknown\".")
      .def_ro("kind_code", &ProcessUnitInfo::kind_code, "The raw union tag.")
      .def_ro("mean", &ProcessUnitInfo::mean, "Normalization: per-channel mean.")
      .def_ro("std", &ProcessUnitInfo::std, "Normalization: per-channel standard deviation.")
      .LITELENS_STR(ProcessUnitInfo, score_transformation, "Score calibration: \"IDENTITY\", \"LOG\", \"INVERSE_LOGISTIC\".")
      .def_ro("default_score", &ProcessUnitInfo::default_score, "Score calibration: default score.")
      .def_ro("global_score_threshold", &ProcessUnitInfo::global_score_threshold, "Score thresholding: threshold.")
      .LITELENS_STR(ProcessUnitInfo, delim_regex_pattern, "Regex tokenizer: delimiter pattern.")
      .def_ro("vocab_files", &ProcessUnitInfo::vocab_files, "Tokenizers: vocabulary files.")
      .def_ro("sentence_piece_models", &ProcessUnitInfo::sentence_piece_models, "SentencePiece tokenizer: models.");

  nb::class_<TensorMetadataInfo>(m, "TensorMetadataInfo", "Metadata of one input or output tensor.")
      .LITELENS_STR(TensorMetadataInfo, name, "The tensor's display name.")
      .LITELENS_STR(TensorMetadataInfo, description, "Description.")
      .LITELENS_STRS(TensorMetadataInfo, dimension_names, "Names of the dimensions.")
      .def_ro("content", &TensorMetadataInfo::content, "What the tensor holds, or None.")
      .def_ro("process_units", &TensorMetadataInfo::process_units, "Processing steps.")
      .def_ro("stats_max", &TensorMetadataInfo::stats_max, "Per-channel maximum (empty when absent).")
      .def_ro("stats_min", &TensorMetadataInfo::stats_min, "Per-channel minimum (empty when absent).")
      .def_ro("associated_files", &TensorMetadataInfo::associated_files, "Files for this tensor (labels, ...).");

  nb::class_<TensorGroupInfo>(m, "TensorGroupInfo", "A named group of tensors.")
      .LITELENS_STR(TensorGroupInfo, name, "The group's name.")
      .LITELENS_STRS(TensorGroupInfo, tensor_names, "Names of the tensors in the group.");

  nb::class_<CustomMetadataInfo>(m, "CustomMetadataInfo", "A custom metadata entry (opaque to litelens).")
      .LITELENS_STR(CustomMetadataInfo, name, "The entry's name.")
      .def_prop_ro("data", [](const CustomMetadataInfo& c) { return nb::bytes(c.data.data(), c.data.size()); },
                   "The entry's bytes.");

  nb::class_<SubgraphMetadataInfo>(m, "SubgraphMetadataInfo", "Metadata of one subgraph.")
      .LITELENS_STR(SubgraphMetadataInfo, name, "Name.")
      .LITELENS_STR(SubgraphMetadataInfo, description, "Description.")
      .def_ro("inputs", &SubgraphMetadataInfo::inputs, "Input tensors, in the order of the subgraph's inputs.")
      .def_ro("outputs", &SubgraphMetadataInfo::outputs, "Output tensors, in the order of the subgraph's outputs.")
      .def_ro("associated_files", &SubgraphMetadataInfo::associated_files, "Files for the subgraph.")
      .def_ro("input_process_units", &SubgraphMetadataInfo::input_process_units, "Input processing steps.")
      .def_ro("output_process_units", &SubgraphMetadataInfo::output_process_units, "Output processing steps.")
      .def_ro("input_tensor_groups", &SubgraphMetadataInfo::input_tensor_groups, "Groups of input tensors.")
      .def_ro("output_tensor_groups", &SubgraphMetadataInfo::output_tensor_groups, "Groups of output tensors.")
      .def_ro("custom_metadata", &SubgraphMetadataInfo::custom_metadata, "Custom entries.");

  nb::class_<ModelInfo>(m, "ModelInfo", "The decoded TFLITE_METADATA entry.")
      .LITELENS_STR(ModelInfo, name, "The model's name.")
      .LITELENS_STR(ModelInfo, description, "Description.")
      .LITELENS_STR(ModelInfo, version, "The model's own version.")
      .LITELENS_STR(ModelInfo, author, "Author.")
      .LITELENS_STR(ModelInfo, license, "License.")
      .LITELENS_STR(ModelInfo, min_parser_version, "Oldest metadata parser that reads this entry.")
      .def_ro("subgraphs", &ModelInfo::subgraphs, "Per-subgraph metadata.")
      .def_ro("associated_files", &ModelInfo::associated_files, "Files for the whole model.")
      .def("all_associated_files", &ModelInfo::all_associated_files,
           "Every associated file named anywhere in the metadata, in document order, without duplicates.")
      .def("__repr__", [](const ModelInfo& i) { return "<litelens.ModelInfo '" + i.name + "'>"; });

  nb::class_<ConversionInfo>(m, "ConversionInfo", "The decoded CONVERSION_METADATA entry.")
      .LITELENS_STR(ConversionInfo, tensorflow_version, "TensorFlow version of the converter.")
      .def_ro("api_version", &ConversionInfo::api_version, "Converter API version.")
      .LITELENS_STR(ConversionInfo, model_type, "\"TF_SAVED_MODEL\", \"KERAS_MODEL\", ..., \"UNKNOWN(n)\".")
      .def_ro("model_hash", &ConversionInfo::model_hash, "Hash of the source model.")
      .LITELENS_STRS(ConversionInfo, optimization_modes, "\"PTQ_FLOAT16\", \"PTQ_DYNAMIC_RANGE\", ...")
      .def_ro("allow_custom_ops", &ConversionInfo::allow_custom_ops, "Converter flag.")
      .def_ro("enable_select_tf_ops", &ConversionInfo::enable_select_tf_ops, "Converter flag.")
      .def_ro("force_select_tf_ops", &ConversionInfo::force_select_tf_ops, "Converter flag.")
      .def_ro("sparsity_block_sizes", &ConversionInfo::sparsity_block_sizes, "Block sizes used for sparsity.")
      .def_ro("has_environment", &ConversionInfo::has_environment, "True when the entry records an environment.")
      .def_ro("has_options", &ConversionInfo::has_options, "True when the entry records converter options.");

  nb::class_<AssociatedFile>(m, "AssociatedFile", "A member of the ZIP archive appended to the model.")
      .LITELENS_STR(AssociatedFile, name, "A safe relative path (\"labels.txt\").")
      .def_ro("offset", &AssociatedFile::offset, "Absolute file offset of the stored bytes.")
      .def_ro("size", &AssociatedFile::size, "Bytes once decompressed.")
      .def_ro("compressed_size", &AssociatedFile::compressed_size, "Bytes stored in the file.")
      .def_ro("compression", &AssociatedFile::compression, "ZIP method: 0 stored, 8 deflate.")
      .LITELENS_STR(AssociatedFile, compression_name, "\"stored\", \"deflate\" or \"method N\".")
      .def_ro("crc32", &AssociatedFile::crc32, "CRC-32 recorded by the archive.")
      .def_ro("header_offset", &AssociatedFile::header_offset,
              "Absolute file offset of the member's local header (``offset`` is where its data starts).")
      .def_prop_ro("is_supported", &AssociatedFile::is_supported, "True when the member can be read (stored or deflate).")
      .def("__repr__", [](const AssociatedFile& f) {
        return "<litelens.AssociatedFile '" + f.name + "' " + std::to_string(f.size) + " bytes>";
      });

  model
      .def("read_model_metadata", [](const PyModel& self) { return read_model_metadata(*self.get()); },
           "The decoded TFLITE_METADATA entry, or None when the model has none.\n\n"
           "Raises:\n    Error: the entry is broken (kind \"invalid_metadata\").")
      .def("read_conversion_metadata", [](const PyModel& self) { return read_conversion_metadata(*self.get()); },
           "The decoded CONVERSION_METADATA entry, or None.\n\nRaises:\n    Error: the entry is broken.")
      .def_prop_ro("min_runtime_version",
                   [](const PyModel& self) -> nb::object {
                     const auto v = read_min_runtime_version(*self.get());
                     if (!v) return nb::none();
                     return py_str(v->version);
                   },
                   nb::sig("def min_runtime_version(self) -> str | None"),
                   "The min_runtime_version entry (\"1.14.0\"), or None.")
      .def_prop_ro("associated_files", [](const PyModel& self) { return associated_files(*self.get()); },
                   "The members of the archive appended to the model (empty when there is none).\n\n"
                   "Raises:\n    Error: the archive is broken (kind \"invalid_metadata\").")
      .def("read_associated_file",
           [](const PyModel& self, const std::string& name) {
             const ModelPtr& mp = self.get();
             const auto file = find_associated_file(*mp, name);
             if (!file) throw nb::key_error(("no associated file named '" + name + "'").c_str());
             std::vector<std::byte> data;
             {
               nb::gil_scoped_release release;
               data = read_associated_file(*mp, *file);
             }
             return nb::bytes(data.data(), data.size());
           },
           nb::arg("name"),
           "The bytes of an associated file, decompressed and CRC-checked.\n\n"
           "Raises:\n    KeyError: no member has that name.\n    Error: the member is corrupt.")
      .def("extract_associated_files",
           [](const PyModel& self, const std::filesystem::path& dir) {
             const ModelPtr& mp = self.get();
             nb::gil_scoped_release release;
             return extract_associated_files(*mp, dir);
           },
           nb::arg("dir"),
           nb::sig("def extract_associated_files(self, dir: str | os.PathLike[str]) -> list[pathlib.Path]"),
           "Writes every associated file under ``dir`` (created if needed), like\n"
           "``litelens files MODEL --extract DIR``.\n\n"
           "Every member is decoded and CRC-checked before any final name appears, and each file is\n"
           "written atomically, so a broken archive leaves no new files behind.\n\n"
           "Returns:\n    The paths written, in archive order (empty when the model has no archive).\n\n"
           "Raises:\n"
           "    Error: the archive is broken or a member is corrupt (kind \"invalid_metadata\"), or a\n"
           "        file cannot be written (kind \"output\").");
}

}  // namespace litelens::py
