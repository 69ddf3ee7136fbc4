## Issue 11, point 3: formulas written with `$`, as lm() takes them, give the fit of the same model
## written with `data =`; inside a function too.

test_that("PLN(small$Abundance ~ 1) and PLN(oaks$Abundance ~ oaks$tree) fit the data = models", {
  ctrl <- PLN_param(maxit = 30, tol = 0)
  fit_in_function <- function() {
    small <- oaks[1:40, ]
    list(dollar = PLN(small$Abundance ~ 1 + offset(log(small$Offset)), control = ctrl),
         data = PLN(Abundance ~ 1 + offset(log(Offset)), data = small, control = ctrl))
  }
  fits <- suppressWarnings(fit_in_function())  # (species absent from the 40 leaves)
  expect_identical(fits$dollar$loglik, fits$data$loglik)
  expect_identical(unname(coef(fits$dollar)), unname(coef(fits$data)))
  tree <- PLN(oaks$Abundance ~ oaks$tree, control = ctrl)
  ref <- PLN(Abundance ~ tree, data = oaks, control = ctrl)
  expect_identical(tree$loglik, ref$loglik)
  expect_identical(tree$R_squared, ref$R_squared)
  expect_identical(dim(residuals(tree)), dim(oaks$Abundance))
})
