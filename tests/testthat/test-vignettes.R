## The vignettes quote no typed figure: every number of their prose that the code computes comes
## from inline R (`r ...`). A number written in the prose (outside code chunks, inline code and
## inline R) is allowed only if the page's code writes it too (a setting such as `maxit = 5000`
## or `lr = 0.05`, which the reader sees in the code) or if it is in the short list below.

## Numbers worth checking: decimals (0.45), four digits or more (3660049, 32,027), scientific
## notation (4e-6). One- to three-digit integers (p = 114, "25 species") are left alone.
prose_numbers <- function(lines) {
  text <- paste(lines, collapse = "\n")
  text <- sub("^---\n.*?\n---\n", "", text, perl = TRUE)               # YAML header
  text <- gsub("(?s)\n```\\{[^\n]*\n.*?\n```", "\n", text, perl = TRUE) # code chunks
  text <- gsub("`r [^`]*`", " ", text, perl = TRUE)                    # inline R
  text <- gsub("`[^`]*`", " ", text, perl = TRUE)                      # inline code
  text <- gsub("\\]\\([^)]*\\)", "]", text, perl = TRUE)               # link targets
  pattern <- "[0-9][0-9,]*\\.[0-9]+|[0-9]+(\\.[0-9]+)?e[-+]?[0-9]+|[0-9]{4,}|[0-9]{1,3}(,[0-9]{3})+"
  unique(regmatches(text, gregexpr(pattern, text, perl = TRUE))[[1]])
}

code_numbers <- function(lines) {
  text <- paste(lines, collapse = "\n")
  chunks <- regmatches(text, gregexpr("(?s)\n```\\{[^\n]*\n.*?\n```", text, perl = TRUE))[[1]]
  inline <- regmatches(text, gregexpr("`[^`]*`", text, perl = TRUE))[[1]]
  code <- paste(c(chunks, inline), collapse = "\n")
  unique(regmatches(code, gregexpr("[0-9]+(\\.[0-9]+)?(e[-+]?[0-9]+)?", code, perl = TRUE))[[1]])
}

## Numbers that are names or definitions, not results, and that no code writes (years, for
## instance). Empty today: keep it short.
allowed <- character()

vignette_files <- function() {
  src <- test_path("..", "..", "vignettes")
  files <- list.files(src, "\\.Rmd$", full.names = TRUE)
  if (!length(files)) files <- list.files(system.file("doc", package = "plntorch"), "\\.Rmd$",
                                          full.names = TRUE)
  files
}

test_that("the scan finds typed numbers and ignores code", {
  rmd <- c("---", "title: \"t 1.5\"", "---", "", "A fit took 0.45 s, 3,660,049 and 4e-6;",
           "`r fmt(1.25)` and `maxit = 5000` are code; 25 species is short.", "",
           "```{r x}", "f(0.75, 12345)", "```", "", "lr 0.01 [see](https://x.org/1.2.3)")
  expect_setequal(prose_numbers(rmd), c("0.45", "3,660,049", "4e-6", "0.01"))
  expect_true(all(c("0.75", "12345", "5000", "1.25") %in% code_numbers(rmd)))
})

test_that("no number in the vignettes' prose is typed where the code computes it", {
  files <- vignette_files()
  skip_if(!length(files), "vignette sources not found")
  for (f in files) {
    lines <- readLines(f, warn = FALSE)
    typed <- setdiff(prose_numbers(lines), c(code_numbers(lines), allowed))
    expect(length(typed) == 0L,
           sprintf("%s: numbers typed in the prose (compute them with inline R, or write them in the code): %s",
                   basename(f), paste(typed, collapse = ", ")))
  }
})
