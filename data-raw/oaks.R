## Builds data/oaks.rda from the TSV files kept next to this script.
## Run from the package root: Rscript data-raw/oaks.R
##
## Source: Jakuschkin et al. (2016), Microbial Ecology 72:870-884, as distributed with
## PLNmodels (GPL). The TSV files are space separated with a quoted header; their first
## column holds the sample names.

read_tsv <- function(name) {
  read.table(file.path("data-raw", name), header = TRUE, check.names = FALSE)
}

counts   <- as.matrix(read_tsv("counts.tsv"))
offsets  <- as.matrix(read_tsv("offsets.tsv"))
metadata <- read_tsv("metadata.tsv")

stopifnot(
  identical(rownames(counts), rownames(metadata)),
  identical(rownames(counts), rownames(offsets)),
  identical(colnames(counts), colnames(offsets)),
  all(counts >= 0), all(counts == round(counts)), all(offsets > 0)
)
storage.mode(counts) <- "integer"
storage.mode(offsets) <- "double"

metadata$tree <- factor(metadata$tree, levels = c("susceptible", "intermediate", "resistant"))
metadata$orientation <- factor(metadata$orientation, levels = c("NE", "SW"))

## Matrix columns kept whole with I(), as PLNmodels' prepare_data() does.
oaks <- data.frame(Abundance = I(counts), metadata, Offset = I(offsets),
                   check.names = FALSE)
rownames(oaks) <- rownames(counts)

save(oaks, file = file.path("data", "oaks.rda"), compress = "xz", version = 2)
