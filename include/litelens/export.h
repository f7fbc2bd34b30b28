// litelens/export.h: write layer parameters to standard files.
//
// Each exported array has a key "<layer key>/<role>" (e.g. "sg0.op12.CONV_2D/filter"), unique
// within a model and stable across runs. Every export carries a manifest describing each key:
//   {"arrays": {KEY: {"subgraph", "layer", "op", "role", "tensor", "stored_tensor", "name",
//                     "stored_dtype", "dtype", "shape", "layout", "quantization", "options", ...}}}
// Files are written atomically: to a temporary file in the target folder, renamed into place
// only when complete.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "litelens/array.h"
#include "litelens/layer.h"
#include "litelens/model.h"

namespace litelens {

enum class ExportFormat {
  npz,          ///< one .npz (ZIP64, stored) with manifest.json inside
  npy_dir,      ///< a folder of .npy files (key's '/' becomes a subfolder) plus manifest.json
  safetensors,  ///< .safetensors; the manifest under __metadata__["manifest"]
  json,         ///< one JSON document: values, quantization, options
  c_header,     ///< a C header with aligned const arrays, shape and quantization macros
};

/// Parses "npz", "npy", "safetensors", "json", "c" / "h".
ExportFormat export_format_from_name(std::string_view name);
/// The format implied by a path's extension (.npz, .safetensors, .json, .h; else a folder).
ExportFormat export_format_for_path(const std::filesystem::path& path);

struct ExportOptions {
  ExportFormat format = ExportFormat::npz;
  /// stored: the file's values, unpacked and densified (bfloat16/float8 widened where the
  /// format has no such dtype); dequantized: float32 values for quantized and floating-point
  /// parameters, while integers and booleans without quantization stay exact as stored
  /// (exact_real_mode; the manifest's "values" says which).
  DecodeMode mode = DecodeMode::stored;
  Framework layout = Framework::tflite;
  /// Called with (bytes done, bytes total) while writing, in every format: after each chunk of
  /// at most a few MiB of array values (so a single large array reports as it goes), and once
  /// with done == total at the end. Bytes count the exported values, not the file's text or
  /// headers. May be empty.
  std::function<void(std::uint64_t, std::uint64_t)> progress;
};

/// One array to export: which parameter, and its key.
struct ExportItem {
  std::string key;
  /// The owning layer, one copy shared by all items of that layer: a copy per item made an op
  /// with N constant inputs cost N copies of N params (4000 inputs: gigabytes).
  std::shared_ptr<const Layer> layer;
  Param param;  ///< the exported parameter (one of layer->params)
};

/// The parameters of `layers` that have values in the file. DEQUANTIZE and DENSIFY layers are
/// left out unless `keep_conversion_ops`: their constants are exported through the layers that
/// consume them.
std::vector<ExportItem> export_items(const std::vector<Layer>& layers, bool keep_conversion_ops = false);

/// Summary of a finished export.
struct ExportReport {
  std::size_t arrays = 0;
  std::uint64_t bytes = 0;  ///< array payload bytes written
  /// Parameters left out because their values have no array form (string, resource and
  /// variant tensors): key and reason. They are not in the file or its manifest.
  std::vector<std::pair<std::string, std::string>> skipped;
};

/// Writes `items` to `path` in options.format, skipping (and reporting) those whose values have
/// no array form. Throws Error(ErrorKind::output) on failure, leaving nothing behind at `path`.
/// npy_dir replaces an existing `path` only when it is an empty folder or an earlier export
/// (litelens manifest.json, subfolders and .npy files); anything else is refused, untouched.
ExportReport export_arrays(const Model& model, const std::vector<ExportItem>& items,
                           const std::filesystem::path& path, const ExportOptions& options);

/// The same export into memory (npz, safetensors, json, c_header), for tests and bindings.
std::vector<std::byte> export_to_memory(const Model& model, const std::vector<ExportItem>& items,
                                        const ExportOptions& options);

}  // namespace litelens
