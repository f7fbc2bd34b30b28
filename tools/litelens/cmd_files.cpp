// files: list the associated files appended to a model, or write them out.
#include <fmt/format.h>

#include <cstdio>
#include <memory>

#include "commands.h"
#include "litelens/metadata.h"
#include "litelens/model.h"
#include "metadata_view.h"
#include "output.h"

namespace litelens::cli {

namespace {

struct FilesArgs {
  std::string model;
  bool json = false;
  std::string extract;
};

void run(const FilesArgs& args) {
  const Model model = Model::open(args.model);
  if (!args.extract.empty()) {
    const auto written = extract_associated_files(model, args.extract);
    if (args.json) {
      nlohmann::ordered_json paths = nlohmann::ordered_json::array();
      for (const auto& p : written) paths.push_back(p.string());
      print_json({{"path", model.label()}, {"extracted", std::move(paths)}});
      return;
    }
    for (const auto& p : written) fmt::print("{}\n", p.string());
    fmt::print(stderr, "litelens: wrote {} associated file{} to {}\n", written.size(), written.size() == 1 ? "" : "s",
               args.extract);
    return;
  }
  const auto files = associated_files(model);
  if (args.json) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const auto& f : files) list.push_back(associated_file_json(f));
    print_json({{"path", model.label()}, {"associated_files", std::move(list)}});
    return;
  }
  if (files.empty()) {
    fmt::print("{}: no associated files\n", model.label());
    return;
  }
  print_associated_files(stdout, files);
}

}  // namespace

void register_files_command(CLI::App& app, Registry& registry) {
  auto args = std::make_shared<FilesArgs>();
  auto* cmd = app.add_subcommand("files", "list the associated files appended to a model, or extract them");
  cmd->add_option("MODEL", args->model, "the .tflite file")->required();
  cmd->add_flag("--json", args->json, "print JSON instead of a table");
  cmd->add_option("--extract", args->extract, "write the files into this folder (created if needed)");
  registry.add(cmd, [args] { run(*args); });
}

}  // namespace litelens::cli
