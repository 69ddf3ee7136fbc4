#include "core/tensor.h"

#include <cstring>
#include <stdexcept>

namespace pln {

at::Device parse_device(const std::string& device) {
  if (device == "cpu") return at::Device(at::kCPU);
  if (device == "cuda" || device.rfind("cuda:", 0) == 0) {
    if (!at::hasCUDA())
      throw std::invalid_argument("device '" + device +
                                  "' requested but this build of plntorch has no usable CUDA "
                                  "device (see pln_backends())");
    at::Device dev(device == "cuda" ? std::string("cuda:0") : device);
    return dev;
  }
  throw std::invalid_argument("unknown device '" + device + "' (use 'cpu', 'cuda' or 'cuda:N')");
}

at::ScalarType parse_dtype(const std::string& dtype) {
  if (dtype == "float64" || dtype == "double") return at::kDouble;
  if (dtype == "float32" || dtype == "float") return at::kFloat;
  throw std::invalid_argument("unknown dtype '" + dtype + "' (use 'float64' or 'float32')");
}

at::Tensor to_tensor(const MatrixView& m, const at::TensorOptions& opt) {
  // from_blob never owns R's memory: copy the transposed view once, into row-major, always
  // (the engine updates some tensors in place and must never write into R's objects).
  auto view = at::from_blob(const_cast<double*>(m.data), {m.ncol, m.nrow},
                            at::TensorOptions().dtype(at::kDouble));
  return at::empty({m.nrow, m.ncol}, opt).copy_(view.t());
}

Matrix to_matrix(const at::Tensor& t) {
  auto t2 = t.dim() == 1 ? t.unsqueeze(1) : t;
  auto cm = t2.detach().to(at::kCPU, at::kDouble).t().contiguous();
  Matrix out;
  out.nrow = t2.size(0);
  out.ncol = t2.size(1);
  out.values.resize(static_cast<size_t>(out.nrow * out.ncol));
  if (!out.values.empty())
    std::memcpy(out.values.data(), cm.data_ptr<double>(), out.values.size() * sizeof(double));
  return out;
}

}  // namespace pln
