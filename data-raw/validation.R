## Builds data/trichoptera.rda, data/barents.rda, data/mollusk.rda and data/microcosm.rda,
## the validation data sets, from the TSV files in data-raw/<name>/.
## Run from the package root: Rscript data-raw/validation.R
##
## The four data sets are distributed with PLNmodels (GPL); the TSV files are exports of
## them. Each folder holds
## * counts.tsv:  samples x species counts, the first column holds the sample names;
## * samples.tsv: one row per sample, same names: `Offset` (a total count of the sample)
##                and the covariates.
## trichoptera and mollusk are the tables after PLNmodels' prepare_data() (mollusk: the 4
## samples without any count dropped; its Offset is the sample's total count). Each data set
## becomes a data frame with the count matrix kept whole in one column (I()), the
## covariates, and `Offset`, one number per sample; row names are the sample names.

read_tsv <- function(name, file) {
  read.delim(file.path("data-raw", name, file), row.names = 1, check.names = FALSE,
             stringsAsFactors = TRUE)
}

## Factor levels in a given order (NULL: keep read.delim()'s alphabetical order).
levels_of <- list(
  microcosm = list(site = c("O", "N", "V", "M"), time = c("-1W", "1M", "3M", "7M"))
)

build <- function(name) {
  counts  <- as.matrix(read_tsv(name, "counts.tsv"))
  samples <- read_tsv(name, "samples.tsv")
  stopifnot(
    identical(rownames(counts), rownames(samples)),
    is.numeric(counts), !anyNA(counts), all(counts >= 0), all(counts == round(counts)),
    all(rowSums(counts) > 0), all(colSums(counts) > 0),
    is.numeric(samples$Offset), all(samples$Offset > 0)
  )
  storage.mode(counts) <- "integer"
  for (v in names(levels_of[[name]])) {
    stopifnot(setequal(levels(samples[[v]]), levels_of[[name]][[v]]))
    samples[[v]] <- factor(samples[[v]], levels = levels_of[[name]][[v]])
  }
  covariates <- samples[setdiff(names(samples), "Offset")]
  out <- data.frame(Abundance = I(counts), covariates,
                    Offset = as.double(samples$Offset), check.names = FALSE)
  rownames(out) <- rownames(counts)
  out
}

for (name in c("trichoptera", "barents", "mollusk", "microcosm")) {
  assign(name, build(name))
  save(list = name, file = file.path("data", paste0(name, ".rda")),
       compress = "xz", version = 2)
  cat(sprintf("%-12s %4d x %3d  %s\n", name, nrow(get(name)), ncol(get(name)$Abundance),
              paste(names(get(name)), collapse = ", ")))
}
