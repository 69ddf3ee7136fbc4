## plot(fit, type = "correlation"): a heat map of the latent correlation matrix cov2cor(Sigma),
## base graphics, with a colour key. Called by plot.PLNfit_torch().

## `species`: NULL (all), names or column numbers of Sigma. `top`: keep the `top` species of
## largest total fitted count among them (the most abundant). `order`: "hclust" groups correlated
## species (complete linkage on 1 - correlation), "none" keeps Sigma's order. Returns the matrix
## drawn, invisibly.
plot_correlation <- function(x, species = NULL, top = NULL, order = c("hclust", "none"),
                             main = NULL, cex_labels = NULL, ...) {
  order <- check_choice(order[1L], "order", c("hclust", "none"))
  Sigma <- x$model_par$Sigma
  if (is.null(Sigma) || !is.matrix(Sigma) || nrow(Sigma) < 2L)
    stop_arg("`type = \"correlation\"` needs a fit with a covariance matrix of at least 2 species.")
  p <- nrow(Sigma)
  labels <- colnames(Sigma)
  if (is.null(labels)) labels <- paste0("Y", seq_len(p))
  keep <- seq_len(p)
  if (!is.null(species)) {
    if (is.character(species) && !anyNA(species)) {
      unknown <- setdiff(species, labels)
      if (length(unknown))
        stop_arg(sprintf("`species` names no species of the fit: %s.", name_list(unknown)))
      keep <- match(unique(species), labels)
    } else if (is.numeric(species) && !anyNA(species) && all(species == round(species))) {
      if (any(species < 1 | species > p))
        stop_arg(sprintf("`species` must be column numbers between 1 and %d (the fit has %d species); got %s.",
                         p, p, describe_value(species[species < 1 | species > p][1L])))
      keep <- unique(as.integer(species))
    } else {
      stop_arg("`species` must be NULL, species names or column numbers of Sigma; got ",
               describe_value(species), ".")
    }
  }
  if (!is.null(top)) {
    top <- check_count(top, "top", lower = 2L)
    abundance <- colSums(x$fitted[, keep, drop = FALSE])
    keep <- keep[base::order(abundance, decreasing = TRUE)][seq_len(min(top, length(keep)))]
  }
  if (length(keep) < 2L)
    stop_arg("`species` must select at least 2 species; got ", length(keep), ".")
  R <- stats::cov2cor(Sigma[keep, keep, drop = FALSE])
  lab <- labels[keep]
  if (order == "hclust") {
    o <- stats::hclust(stats::as.dist(1 - R))$order
    R <- R[o, o, drop = FALSE]
    lab <- lab[o]
  }
  k <- nrow(R)
  if (is.null(main))
    main <- sprintf("Latent correlations, %d of %d species%s", k, p,
                    if (order == "hclust") ", clustered" else "")
  if (is.null(cex_labels)) cex_labels <- max(0.3, min(0.8, 20 / k))
  pal <- grDevices::colorRampPalette(c("#2166AC", "#F7F7F7", "#B2182B"))(101)
  op <- graphics::par(no.readonly = TRUE)
  on.exit({ graphics::layout(1); graphics::par(op) })
  margin <- if (k > 60) 1 else 1 + max(nchar(lab)) * cex_labels * 0.6
  graphics::layout(matrix(1:2, 1), widths = c(1, graphics::lcm(2.6)))
  graphics::par(mar = c(margin, margin, 3, 0.5))
  graphics::image(seq_len(k), seq_len(k), R[, k:1, drop = FALSE], zlim = c(-1, 1), col = pal,
                  axes = FALSE, xlab = "", ylab = "", main = main, ...)
  if (k <= 60) {  # more labels than that overlap: leave them out
    graphics::axis(1, at = seq_len(k), labels = lab, las = 2, cex.axis = cex_labels, tick = FALSE)
    graphics::axis(2, at = seq_len(k), labels = rev(lab), las = 1, cex.axis = cex_labels, tick = FALSE)
  }
  graphics::box()
  graphics::par(mar = c(margin, 0.5, 3, 3.5))
  key <- seq(-1, 1, length.out = 101)
  graphics::image(1, key, matrix(key, 1), col = pal, axes = FALSE, xlab = "", ylab = "")
  graphics::axis(4, las = 1, cex.axis = 0.8)
  graphics::mtext("correlation", side = 4, line = 2.5, cex = 0.8)
  graphics::box()
  invisible(R)
}
