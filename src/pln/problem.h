// Data tensors and the variational state, validated once, shared by every backend.
#pragma once

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>  // c10::NoGradGuard (ATen/ATen.h no longer brings it in 2.x)

#include "api.h"

namespace pln {

struct Problem {
  at::Tensor Y, O, X, w;  // n x p, n x p, n x d, n (row-major, on the fit's device)
  at::Tensor logfact;     // n x p, log(Y!) by Ramanujan's formula (PLNmodels' choice)
  at::Tensor w_col;       // n x 1 view of w, for row broadcasting
  at::Tensor XtWX_pinv;   // d x d: (X' W X)^+, for least squares on X
  double wsum = 0;
  bool unit_weights = true;
  int64_t n = 0, p = 0, d = 0;
  at::TensorOptions opt;  // dtype and device of every tensor of the fit
};

struct State {
  at::Tensor B, M, S;     // d x p, n x p, n x p
  at::Tensor Sigma, Omega;
  at::Tensor logdet;      // 0-dim: log det Omega
};

at::Device parse_device(const std::string& device);
at::ScalarType parse_dtype(const std::string& dtype);

// Copies R's column-major doubles into a row-major tensor of the given options.
at::Tensor to_tensor(const MatrixView& m, const at::TensorOptions& opt);
Matrix to_matrix(const at::Tensor& t);  // back to column-major doubles

Problem make_problem(const FitInput& in, const at::TensorOptions& opt);
State initial_state(const Problem& pb, const FitInput& in, const std::string& init);

}  // namespace pln
