# Snakemake entry: shape auto's PSIS-LOO choice between the linear and flexible candidates, made on a
# stratified subsample of at most model.effect.shape_subsample train users (or left to the chain jobs when
# the history is within it); the chain jobs then fit the kept candidate alone. The work is done by
# bayeslift::choose_shape().
.libPaths(c(file.path(snakemake@scriptdir, ".rlib"), .libPaths()))  # where `make install` puts the package
library(bayeslift)

main <- function() {
  check_installed_sources(snakemake@input[["rlib"]])
  spec <- read_feature_spec(snakemake@input[["spec"]])
  train <- read_prepared(snakemake@input[["train"]], spec)
  choice <- choose_shape(train, spec, snakemake@params[["model"]], cores = as.integer(snakemake@threads))
  message("shape auto: ", choice$note, if (choice$seconds > 0) sprintf(" (%.1f s)", choice$seconds))
  write_json_atomic(choice, snakemake@output[["choice"]])
}

run_entry(main, snakemake@log[[1]])
