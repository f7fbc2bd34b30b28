// The metadata part of `litelens info` (table and JSON) and the listing of `litelens files`.
#pragma once

#include <cstdio>

#include <nlohmann/json.hpp>

#include "litelens/metadata.h"
#include "litelens/model.h"

namespace litelens::cli {

/// `info --json` key "model_metadata": the decoded metadata entries and the archive listing.
/// Broken metadata does not throw: it is reported under "errors" and as a warning on stderr.
nlohmann::ordered_json model_metadata_json(const Model& model);

/// The metadata sections of the `info` table. Broken metadata gives warning lines, not failure.
void print_model_metadata(std::FILE* out, const Model& model);

nlohmann::ordered_json associated_file_json(const AssociatedFile& file);

/// The `files` table.
void print_associated_files(std::FILE* out, const std::vector<AssociatedFile>& files);

}  // namespace litelens::cli
