#' Oaks amplicon data set
#'
#' Abundances of 114 taxa (66 bacterial and 48 fungal OTUs) on 116 oak leaves,
#' with the sequencing depths to use as offsets and the leaves' covariates. It is
#' the data set of the PLNmodels and torch PLN tutorials, and of the benchmarks
#' of this package.
#'
#' @format A data frame with 116 rows (leaves, named by sample) and 13 columns:
#' * `Abundance`: 116 x 114 integer count matrix (a matrix column, kept whole
#'   with [I()]), one column per OTU (`b_OTU_*` bacteria, `f_OTU_*` fungi).
#' * `Sample`: sample id (also the row names).
#' * `tree`: factor, the tree's status with respect to the pathogen *Erysiphe
#'   alphitoides*, levels `susceptible`, `intermediate`, `resistant`.
#' * `branch`: branch id within the tree (4 branches per tree).
#' * `leafNo`: leaf id within the tree.
#' * `distTObase`, `distTOtrunk`, `distTOground`: distances of the leaf to the
#'   base of its branch, to the trunk and to the ground (cm).
#' * `pmInfection`: powdery mildew infection, share of the upper leaf area with
#'   symptoms.
#' * `orientation`: factor, orientation of the branch, `NE` or `SW`.
#' * `readsTOTfun`, `readsTOTbac`: total ITS1 (fungal) and 16S (bacterial) reads
#'   of the leaf.
#' * `Offset`: 116 x 114 matrix of sequencing depths (total reads of the OTU's
#'   kingdom in the sample); use it as `offset(log(Offset))` in a formula.
#'
#' @source Jakuschkin, B., Fievet, V., Schwaller, L., Fort, T., Robin, C. and
#'   Vacher, C. (2016). Deciphering the pathobiome: intra- and interkingdom
#'   interactions involving the pathogen *Erysiphe alphitoides*. *Microbial
#'   Ecology*, 72, 870--880. \doi{10.1007/s00248-016-0777-x}. Distributed with
#'   the R package PLNmodels (GPL); rebuilt here by `data-raw/oaks.R`.
#'
#' @docType data
#' @keywords datasets
#' @name oaks
#' @usage data(oaks)
#' @examples
#' data(oaks)
#' dim(oaks$Abundance)
#' table(oaks$tree)
#' fit <- PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks)
#' fit$loglik
NULL

#' Trichoptera data set
#'
#' Counts of 17 Trichoptera (caddisfly) species caught in light traps during 49
#' nights between 1959 and 1960, with two of the night's meteorological
#' covariates. One of the validation data sets of this package (see
#' `inst/extdata/validation-reference.csv`).
#'
#' @format A data frame with 49 rows (trapping nights, named `1` to `49`) and 4
#'   columns:
#' * `Abundance`: 49 x 17 integer count matrix (a matrix column, kept whole
#'   with [I()]), one column per species (abbreviated names).
#' * `Wind`: wind (m/s).
#' * `Temperature`: evening temperature (degrees Celsius).
#' * `Offset`: total count of the night (sum of the row of `Abundance`); use it
#'   as `offset(log(Offset))` in a formula.
#'
#' @source Usseglio-Polatera, P. and Auda, Y. (1987). Influence des facteurs
#'   m\enc{é}{e}t\enc{é}{e}orologiques sur les r\enc{é}{e}sultats de pi\enc{é}{e}geage
#'   lumineux. *Annales de Limnologie*, 23, 65--79. Data from P.
#'   Usseglio-Polatera. Distributed with the R package PLNmodels (GPL), as
#'   prepared by its `prepare_data()`; rebuilt here by `data-raw/validation.R`.
#'
#' @docType data
#' @keywords datasets
#' @name trichoptera
#' @usage data(trichoptera)
#' @examples
#' data(trichoptera)
#' dim(trichoptera$Abundance)
#' fit <- PLN(Abundance ~ Wind + Temperature + offset(log(Offset)),
#'            data = trichoptera)
#' fit$loglik
NULL

#' Barents sea fish data set
#'
#' Counts of 30 fish species at 89 sites of the Barents sea, with the sampling
#' effort of each site and two of its covariates. One of the validation data
#' sets of this package (see `inst/extdata/validation-reference.csv`).
#'
#' @format A data frame with 89 rows (sites, named `1` to `89`) and 4 columns:
#' * `Abundance`: 89 x 30 integer count matrix (a matrix column, kept whole
#'   with [I()]), one column per species (abbreviated Latin names).
#' * `Depth`: depth of the site (m).
#' * `Temperature`: water temperature (degrees Celsius).
#' * `Offset`: sampling effort of the site (equal to the total count of the
#'   site); use it as `offset(log(Offset))` in a formula.
#'
#' @source Fossheim, M., Nilssen, E. M. and Aschan, M. (2006). Fish assemblages
#'   in the Barents Sea. *Marine Biology Research*, 2(4).
#'   \doi{10.1080/17451000600815698}. Data from M. Fossheim and coauthors.
#'   Distributed with the R package PLNmodels (GPL), whose version also has the
#'   sites' latitude and longitude; rebuilt here by `data-raw/validation.R`.
#'
#' @docType data
#' @keywords datasets
#' @name barents
#' @usage data(barents)
#' @examples
#' data(barents)
#' dim(barents$Abundance)
#' fit <- PLN(Abundance ~ Depth + Temperature + offset(log(Offset)),
#'            data = barents)
#' fit$loglik
NULL

#' Mollusk data set
#'
#' Counts of 32 mollusk species in 159 samples taken at 8 sites in old beds of a
#' large river over the four seasons. One of the validation data sets of
#' this package (see `inst/extdata/validation-reference.csv`); its model has no
#' offset: `PLN(Abundance ~ 1)` and `PLN(Abundance ~ site + season)`.
#'
#' @format A data frame with 159 rows (samples, named `1` to `163`; the 4
#'   samples of the original table without any count are left out) and 4
#'   columns:
#' * `Abundance`: 159 x 32 integer count matrix (a matrix column, kept whole
#'   with [I()]), one column per species (abbreviated names).
#' * `site`: factor, the sampling site (8 levels).
#' * `season`: factor, the season, levels `automn`, `spring`, `summer`,
#'   `winter` (spelled as in the source).
#' * `Offset`: total count of the sample (sum of the row of `Abundance`); the
#'   validation models do not use it.
#'
#' @source Richardot-Coulet, M., Chessel, D. and Bournaud, M. (1986).
#'   Typological value of the benthos of old beds of a large river.
#'   Methodological approach. *Archiv f\enc{ü}{u}r Hydrobiologie*, 107,
#'   363--383. Data from M. Richardot-Coulet, D. Chessel and M. Bournaud, as
#'   extracted from the R package ade4. Distributed with the R package
#'   PLNmodels (GPL), as prepared by its `prepare_data()`; rebuilt here by
#'   `data-raw/validation.R`.
#'
#' @docType data
#' @keywords datasets
#' @name mollusk
#' @usage data(mollusk)
#' @examples
#' data(mollusk)
#' dim(mollusk$Abundance)
#' table(mollusk$site, mollusk$season)
#' fit <- PLN(Abundance ~ 1, data = mollusk)
#' fit$loglik
NULL

#' Cow microbiome data set
#'
#' Counts of 259 amplicon sequence variants (ASV) in 880 samples of the
#' microbiota of 45 dairy cows, taken at four body sites (mouth, nose, vagina
#' and the milk of the teats) from one week before to seven months after
#' calving; ASVs present in fewer than 5% of the samples are left out. The
#' largest validation data set of this package (see
#' `inst/extdata/validation-reference.csv`): about 90% of its counts are zeros.
#'
#' @format A data frame with 880 rows (samples, named by sample id) and 4
#'   columns:
#' * `Abundance`: 880 x 259 integer count matrix (a matrix column, kept whole
#'   with [I()]), one column per ASV.
#' * `site`: factor, the body site, levels `O` (oral), `N` (nasal), `V`
#'   (vaginal), `M` (milk).
#' * `time`: factor, the sampling time, levels `-1W` (one week before
#'   calving), `1M`, `3M`, `7M` (one, three, seven months after calving).
#' * `Offset`: sequencing depth of the sample (total reads before the ASVs were
#'   filtered, so at least the row sum of `Abundance`); use it as
#'   `offset(log(Offset))` in a formula.
#'
#' @source Mariadassou, M., Nouvel, L. X., Constant, F. et al. (2023).
#'   Microbiota members from body sites of dairy cows are largely shared within
#'   individual hosts throughout lactation but sharing is limited in the herd.
#'   *Animal Microbiome*, 5, 32. \doi{10.1186/s42523-023-00252-w}. Data from M.
#'   Mariadassou and coauthors. Distributed with the R package PLNmodels (GPL);
#'   rebuilt here by `data-raw/validation.R`.
#'
#' @docType data
#' @keywords datasets
#' @name microcosm
#' @usage data(microcosm)
#' @examples
#' data(microcosm)
#' dim(microcosm$Abundance)
#' table(microcosm$site)
#' ## A fit takes minutes on 2 CPU cores:
#' ## PLN(Abundance ~ site + offset(log(Offset)), data = microcosm)
NULL

#' Single-cell RNA-seq data set
#'
#' Counts of the 500 most variable transcripts in 3918 cells of a mixture of 5
#' human lung cancer cell lines (10x Chromium protocol), as PLNmodels ships it:
#' the data set of its PLN-PCA examples and of this package's single-cell
#' vignette.
#'
#' @format A data frame with 3918 rows (cells) and 3 columns:
#' * `counts`: 3918 x 500 integer count matrix (a matrix column), one column
#'   per transcript;
#' * `cell_line`: factor, the cell line of the cell (5 levels);
#' * `total_counts`: the total number of reads of the cell; use it as
#'   `offset(log(total_counts))` in a formula.
#'
#' @source Tian, L. et al. (2019). Benchmarking single cell RNA-sequencing
#'   analysis pipelines using mixture control experiments. *Nature Methods*,
#'   16, 479--487. \url{https://github.com/LuyiTian/sc_mixology/}. Copied
#'   unchanged from the R package PLNmodels 1.3.2 (`data/scRNA.rda`, GPL-3).
#' @docType data
#' @keywords datasets
#' @name scRNA
#' @usage data(scRNA)
#' @examples
#' dim(scRNA$counts)
#' table(scRNA$cell_line)
NULL
