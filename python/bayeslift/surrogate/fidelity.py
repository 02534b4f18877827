"""The fidelity gate: how closely the surrogate reproduces the posterior on users, and the rule it must pass."""
from __future__ import annotations

import logging
import math

from typing import TYPE_CHECKING

import numpy as np

from ..policy import sd_from_90_interval

if TYPE_CHECKING:
    from .predict import Surrogate
    from .targets import SurrogateTargets

log = logging.getLogger("bayeslift")


class SurrogateFidelityError(RuntimeError):
    """The surrogate does not reproduce the posterior well enough on held-out users."""


def r_squared(truth: np.ndarray, pred: np.ndarray) -> float:
    ss_res = float(np.sum((truth - pred) ** 2))
    ss_tot = float(np.sum((truth - np.mean(truth)) ** 2))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")


def fidelity(surrogate: Surrogate, targets: SurrogateTargets) -> dict:
    """R^2 of the surrogate against the posterior summaries on the given users."""
    pred = surrogate.predict_encoded(targets.x)
    error = targets.uplift_mean - pred["uplift"]
    return {
        "n_users": int(len(targets.x)),
        "r2_uplift": r_squared(targets.uplift_mean, pred["uplift"]),
        # The uplift error next to the posterior's own uncertainty about a user's uplift (mean sd, from the
        # 90% interval as if normal): see check_fidelity().
        "uplift_error_share_of_posterior_sd": float(
            np.sqrt(np.mean(error**2)) / np.mean(sd_from_90_interval(targets.uplift_q05, targets.uplift_q95))),
        "r2_spend_if_treated": r_squared(targets.spend_treated, pred["spend_if_treated"]),
        "r2_spend_if_control": r_squared(targets.spend_control, pred["spend_if_control"]),
        "r2_uplift_lower": r_squared(targets.uplift_q05, pred["uplift_lower"]),
        "r2_uplift_upper": r_squared(targets.uplift_q95, pred["uplift_upper"]),
        "mean_abs_uplift_error": float(np.mean(np.abs(error))),
    }


def check_fidelity(holdout: dict, floor: float) -> str:
    """Raise SurrogateFidelityError unless the surrogate's uplift matches the posterior's on held-out users.

    Passes when R^2 reaches ``floor``, or, failing that, when the surrogate's uplift error (RMSE) is at most
    sqrt(1 - floor) of the posterior's own sd of a user's uplift (0.1 for floor 0.99). The second rule is for
    posteriors whose users barely differ (a shrunk model, a campaign without heterogeneity): their spread of
    uplift is tiny, so R^2 measures noise, while an error a tenth of the posterior's uncertainty changes no
    decision. Returns the rule that passed.
    """
    if holdout["r2_uplift"] >= floor:
        return "r2_uplift"
    share = holdout.get("uplift_error_share_of_posterior_sd", float("nan"))
    allowed = math.sqrt(1.0 - floor)
    if share <= allowed:
        log.info("surrogate uplift R^2 %.4f is below %s, but its error is %.3f of the posterior sd of uplift "
                 "(<= %.3f): the posterior barely tells users apart", holdout["r2_uplift"], floor, share, allowed)
        return "error_share_of_posterior_sd"
    raise SurrogateFidelityError(
        f"surrogate uplift R^2 on {holdout['n_users']} held-out users is {holdout['r2_uplift']:.4f}, below the "
        f"floor {floor}, and its error is {share:.3f} of the posterior sd of uplift (allowed {allowed:.3f})"
    )
