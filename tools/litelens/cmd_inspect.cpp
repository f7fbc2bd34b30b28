// info, ops, tensors: what is in a model.
#include <fmt/format.h>

#include <cstdio>
#include <memory>

#include "commands.h"
#include "json_view.h"
#include "litelens/model.h"
#include "output.h"
#include "text_view.h"

namespace litelens::cli {

namespace {

enum class View { info, ops, tensors };

void run(const ModelArgs& args, View view) {
  const Model model = Model::open(args.model);
  check_subgraph_arg(model, args.subgraph);
  if (args.json) {
    switch (view) {
      case View::info: print_json(info_document(model, args.subgraph)); break;
      case View::ops: print_json(ops_document(model, args.subgraph)); break;
      case View::tensors: print_json(tensors_document(model, args.subgraph)); break;
    }
    return;
  }
  switch (view) {
    case View::info: print_info(stdout, model, args.subgraph); break;
    case View::ops: print_ops(stdout, model, args.subgraph); break;
    case View::tensors: print_tensors(stdout, model, args.subgraph); break;
  }
}

}  // namespace

void register_inspect_commands(CLI::App& app, Registry& registry) {
  const struct {
    const char* name;
    const char* help;
    View view;
  } commands[] = {
      {"info", "header, sizes, subgraphs, op histogram, parameters, metadata, signatures", View::info},
      {"ops", "every operator with its inputs, outputs and decoded options", View::ops},
      {"tensors", "every tensor with shape, dtype, buffer, quantization and sparsity", View::tensors},
  };
  for (const auto& c : commands) {
    auto args = std::make_shared<ModelArgs>();
    auto* cmd = app.add_subcommand(c.name, c.help);
    add_model_args(cmd, *args);
    registry.add(cmd, [args, view = c.view] { run(*args, view); });
  }
}

}  // namespace litelens::cli
