// Subcommand registry: each cmd_*.cpp adds its subcommands and a runner for each. main() parses,
// runs the chosen one, and maps failures to exit codes.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace litelens::cli {

/// Bad usage detected after parsing (exit status 2), e.g. a --subgraph the model lacks.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A selection that matched nothing (exit status 1); the message lists close names.
class NoMatch : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Registry {
  std::vector<std::pair<CLI::App*, std::function<void()>>> commands;
  void add(CLI::App* app, std::function<void()> run) { commands.emplace_back(app, std::move(run)); }
};

/// Options most commands share.
struct ModelArgs {
  std::string model;
  bool json = false;
  int subgraph = -1;
};
void add_model_args(CLI::App* cmd, ModelArgs& args);

// One function per command family.
void register_inspect_commands(CLI::App& app, Registry& registry);  // info, ops, tensors
void register_files_command(CLI::App& app, Registry& registry);      // files
void register_layer_commands(CLI::App& app, Registry& registry);    // layers, extract
void register_patch_commands(CLI::App& app, Registry& registry);    // patch, diff

}  // namespace litelens::cli
