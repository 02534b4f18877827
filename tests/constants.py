"""Tolerances used by the tests, in one place, each with the reason it is what it is."""

# rpy2 recomputation vs the CSV R wrote: same draws, same arithmetic; only CSV rounding (15 significant digits).
R_RECOMPUTE_RTOL = 1e-9
# Surrogate vs posterior mean on the tiny CI fit (560 training users): R^2 of uplift on held-out users.
TINY_SURROGATE_R2 = 0.95
# Surrogate trained directly on simulator truth (no R), 2,000 users: R^2 of uplift on fresh users.
TRUTH_SURROGATE_R2 = 0.98
# Recovery on 3,000 simulated users: posterior ATE interval must cover the true sample ATE, and the
# RMSE of per-user posterior-mean uplift must be below this share of the sd of the true uplift.
RECOVERY_UPLIFT_RMSE_SHARE = 0.5
