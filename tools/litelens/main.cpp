// litelens: the command-line tool. Parses arguments and prints; the work is in the library.
// Exit status: 0 success, 1 a bad model (one line on stderr naming the file), 2 bad usage.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdio>

#include "commands.h"
#include "litelens/error.h"
#include "litelens/suggest.h"
#include "litelens/version.h"
#include "output.h"

namespace litelens::cli {

namespace {
constexpr int kBadModel = 1;
constexpr int kBadUsage = 2;
}  // namespace

void add_model_args(CLI::App* cmd, ModelArgs& args) {
  cmd->add_option("MODEL", args.model, "the .tflite file")->required();
  cmd->add_flag("--json", args.json, "print JSON instead of a table");
  cmd->add_option("--subgraph", args.subgraph, "only this subgraph")->check(CLI::NonNegativeNumber);
}

void print_json(const nlohmann::ordered_json& doc) {
  std::fputs(doc.dump(1, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str(), stdout);
  std::fputc('\n', stdout);
}

void check_subgraph_arg(const Model& model, int subgraph) {
  if (subgraph >= 0 && static_cast<std::size_t>(subgraph) >= model.subgraph_count())
    throw UsageError(fmt::format("{}: --subgraph {} is out of range (the model has {} subgraphs)", model.label(),
                                 subgraph, model.subgraph_count()));
}

}  // namespace litelens::cli

int main(int argc, char** argv) {
  using namespace litelens::cli;
  CLI::App app{"litelens: read TensorFlow Lite / LiteRT models and their layer parameters"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "litelens " + std::string(litelens::version()));
  Registry registry;
  register_inspect_commands(app, registry);
  register_files_command(app, registry);
  register_layer_commands(app, registry);
  register_patch_commands(app, registry);

  // A mistyped command gets the care of a mistyped op name (CLI11 alone would say that a
  // subcommand is required).
  if (argc > 1 && argv[1][0] != '-') {
    std::vector<std::string> names;
    for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) names.push_back(sub->get_name());
    if (std::find(names.begin(), names.end(), argv[1]) == names.end()) {
      const auto close = litelens::closest_names(argv[1], names);
      fmt::print(stderr, "litelens: unknown command '{}'; {}\n", argv[1],
                 close.empty() ? fmt::format("the commands are {}", fmt::join(names, ", "))
                               : fmt::format("did you mean '{}'?", fmt::join(close, "' or '")));
      return kBadUsage;
    }
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kBadUsage;
  }
  try {
    for (auto& [cmd, run] : registry.commands)
      if (cmd->parsed()) run();
  } catch (const litelens::Error& e) {
    fmt::print(stderr, "litelens: {} [{}]\n", e.what(), litelens::error_kind_name(e.kind()));
    return kBadModel;
  } catch (const NoMatch& e) {
    fmt::print(stderr, "litelens: {}\n", e.what());
    return kBadModel;
  } catch (const UsageError& e) {
    fmt::print(stderr, "litelens: {}\n", e.what());
    return kBadUsage;
  } catch (const std::exception& e) {
    // Anything else (a value the decoders cannot handle, memory exhaustion) is still one line
    // and a failure status, never an abort.
    fmt::print(stderr, "litelens: {}\n", e.what());
    return kBadModel;
  }
  return std::fflush(stdout) == 0 ? 0 : kBadModel;
}
