// PLN's fit by the quasi-Newton optimiser (model.cpp).
#pragma once

#include <functional>

#include "models/pln/backend.h"
#include "optim/quasi_newton.h"

namespace pln {

// Runs up to opt.maxit iterations from st (its B, M, S), leaving the final state in st.
// poll() is called every iteration; it throws to stop (Ctrl-C); progress(t, J) when tracing.
QuasiNewtonResult run_quasi_newton(const Problem& pb, PlnBackend& backend, const FitOptions& opt,
                                   State& st, const std::function<void()>& poll,
                                   const std::function<void(int64_t, double)>& progress);

}  // namespace pln
