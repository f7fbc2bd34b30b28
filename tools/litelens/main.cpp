// litelens: the command-line tool. Parses arguments and prints; the work is in the library.
// Exit status: 0 success, 1 a bad model (one line on stderr naming the file), 2 bad usage.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <iostream>

#include "json_view.h"
#include "litelens/model.h"
#include "text_view.h"

namespace {

constexpr int kBadModel = 1;
constexpr int kBadUsage = 2;

struct CommonArgs {
  std::string model;
  bool json = false;
  int subgraph = -1;
};

void add_common(CLI::App* cmd, CommonArgs& args) {
  cmd->add_option("MODEL", args.model, "the .tflite file")->required();
  cmd->add_flag("--json", args.json, "print JSON instead of a table");
  cmd->add_option("--subgraph", args.subgraph, "only this subgraph")->check(CLI::NonNegativeNumber);
}

void print_json(const nlohmann::ordered_json& doc) {
  // Invalid UTF-8 in names is replaced rather than aborting the output.
  std::fputs(doc.dump(1, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str(), stdout);
  std::fputc('\n', stdout);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"litelens: read TensorFlow Lite / LiteRT models and their layer parameters"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "litelens 0.1.0");

  CommonArgs args;
  auto* info = app.add_subcommand("info", "header, sizes, subgraphs, op histogram, parameters, metadata, signatures");
  auto* ops = app.add_subcommand("ops", "every operator with its inputs, outputs and decoded options");
  auto* tensors = app.add_subcommand("tensors", "every tensor with shape, dtype, buffer and quantization");
  for (auto* cmd : {info, ops, tensors}) add_common(cmd, args);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kBadUsage;
  }

  try {
    const litelens::Model model = litelens::Model::open(args.model);
    if (args.subgraph >= 0 && static_cast<std::size_t>(args.subgraph) >= model.subgraph_count()) {
      fmt::print(stderr, "litelens: {}: --subgraph {} is out of range (the model has {} subgraphs)\n", args.model,
                 args.subgraph, model.subgraph_count());
      return kBadUsage;
    }
    namespace cli = litelens::cli;
    if (info->parsed()) {
      if (args.json) print_json(cli::info_document(model, args.subgraph));
      else cli::print_info(stdout, model, args.subgraph);
    } else if (ops->parsed()) {
      if (args.json) print_json(cli::ops_document(model, args.subgraph));
      else cli::print_ops(stdout, model, args.subgraph);
    } else if (tensors->parsed()) {
      if (args.json) print_json(cli::tensors_document(model, args.subgraph));
      else cli::print_tensors(stdout, model, args.subgraph);
    }
  } catch (const litelens::Error& e) {
    fmt::print(stderr, "litelens: {} [{}]\n", e.what(), litelens::error_kind_name(e.kind()));
    return kBadModel;
  }
  return std::fflush(stdout) == 0 ? 0 : kBadModel;
}
