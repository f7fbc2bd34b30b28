// The CLI's readable tables.
#pragma once

#include <cstdio>

#include "litelens/model.h"

namespace litelens::cli {

void print_info(std::FILE* out, const Model& model, int subgraph);
void print_tensors(std::FILE* out, const Model& model, int subgraph);
void print_ops(std::FILE* out, const Model& model, int subgraph);

}  // namespace litelens::cli
