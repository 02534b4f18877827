# Coefficient priors for the shrinkage options: the treatment x feature terms (the effect heterogeneity)
# shrunk toward "the campaign works the same for everyone".

SHRINKAGE <- c("none", "horseshoe", "normal")

# Coefficient prior for one rstanarm part (NULL: rstanarm's default weakly informative normal(0, 2.5), autoscaled).
# "horseshoe": the regularized horseshoe `hs()` on every coefficient, global scale from the guess that about a
#   quarter of the D coefficients matter (Piironen & Vehtari 2017: p0 / (D - p0) / sqrt(n)). rstanarm cannot
#   give different priors to different coefficients under `hs()`, so the treatment's main effect would be
#   shrunk too (seen: the ATE pulled from 6.2 toward 4 at 1,500 users); the rstanarm fitters therefore add one
#   intercept per arm, `(1 | treatment)` under `decov(shape = 2, scale = 2)`, which carries the average effect.
# "normal": normal(0, 2.5) on main effects and normal(0, `interaction_scale`) on every treatment x feature
#   term: fixed shrinkage of the effect heterogeneity only.
rstanarm_shrinkage_prior <- function(shrinkage, formula, data, interaction_scale = 0.1) {
  if (shrinkage == "none") return(NULL)
  cols <- setdiff(colnames(stats::model.matrix(formula, data)), "(Intercept)")
  if (shrinkage == "horseshoe") {
    D <- length(cols)
    p0 <- max(2, D / 4)
    return(rstanarm::hs(df = 1, global_df = 1, global_scale = p0 / (D - p0) / sqrt(nrow(data)),
                        slab_df = 4, slab_scale = 2.5))
  }
  if (shrinkage == "normal") {
    scale <- ifelse(grepl(":", cols, fixed = TRUE), interaction_scale, 2.5)
    return(rstanarm::normal(location = 0, scale = scale, autoscale = TRUE))
  }
  stop("unknown shrinkage '", shrinkage, "'; use none, horseshoe or normal", call. = FALSE)
}

# brms prior for shrinkage of the population-level terms in both parts: NULL (brms defaults) for "none",
# `horseshoe(1, par_ratio)` on class b of the spend part and of `hu` (brms refuses it with `s()` terms), or
# normal(0, interaction_scale) on class b for "normal".
brms_shrinkage_prior <- function(shrinkage, par_ratio = 0.25, interaction_scale = 0.5) {
  if (shrinkage == "none") return(NULL)
  p <- switch(shrinkage,
              horseshoe = sprintf("horseshoe(1, par_ratio = %g)", par_ratio),
              normal = sprintf("normal(0, %g)", interaction_scale),
              stop("unknown shrinkage '", shrinkage, "'; use none, horseshoe or normal", call. = FALSE))
  c(brms::set_prior(p, class = "b"), brms::set_prior(p, class = "b", dpar = "hu"))
}
