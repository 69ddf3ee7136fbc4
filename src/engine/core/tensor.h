// Devices, dtypes and the copies between R's column-major doubles and the engine's tensors, for
// every model.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "api/types.h"

namespace pln {

at::Device parse_device(const std::string& device);
at::ScalarType parse_dtype(const std::string& dtype);

// Copies R's column-major doubles into a row-major tensor of the given options.
at::Tensor to_tensor(const MatrixView& m, const at::TensorOptions& opt);
Matrix to_matrix(const at::Tensor& t);  // back to column-major doubles

}  // namespace pln
