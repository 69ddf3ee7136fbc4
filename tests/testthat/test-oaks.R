## Converged default fits reach PLNmodels' log-likelihoods on oaks (pln-model.md):
## nlopt -32029.90 and builtin -32028.47 for ~ 1; nlopt -31399.46 for ~ tree.
test_that("default fit of Abundance ~ 1 reaches PLNmodels' loglik", {
  fit <- PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks)
  expect_identical(fit$optim_par$status, "converged")
  expect_gte(fit$loglik, -32029.0)
})

test_that("default fit of Abundance ~ tree reaches PLNmodels' loglik", {
  fit <- PLN(Abundance ~ tree + offset(log(Offset)), data = oaks)
  expect_identical(rownames(coef(fit)), c("(Intercept)", "treeintermediate", "treeresistant"))
  expect_gte(fit$loglik, -31400)
})
