// TorchScript for the script backend of every model: a model's objective written as TorchScript
// source, compiled once per process by torch::jit::compile and run by its graph executor (which
// fuses and differentiates the graph).
#pragma once

#include <torch/csrc/api/include/torch/jit.h>

namespace pln {

// The compilation unit of `source` (a string literal of the model's: compiled at its first use,
// kept for the process).
torch::jit::CompilationUnit& compiled(const char* source);

}  // namespace pln
