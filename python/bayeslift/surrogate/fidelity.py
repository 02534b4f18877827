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
    if targets.arm_names:
        return _fidelity_arms(pred, targets)
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


def _fidelity_arms(pred: dict, targets: SurrogateTargets) -> dict:
    """``fidelity`` with several campaign arms: each arm's scores under ``arms``, and the worst arm's R^2 and
    error share at the top (what fit_to_floor reports per width)."""
    arms = {}
    for a, name in enumerate(targets.arm_names):
        truth, q05, q95 = targets.uplift_mean[:, a], targets.uplift_q05[:, a], targets.uplift_q95[:, a]
        error = truth - pred[f"uplift_{name}"]
        arms[name] = {
            "r2_uplift": r_squared(truth, pred[f"uplift_{name}"]),
            "uplift_error_share_of_posterior_sd": float(
                np.sqrt(np.mean(error**2)) / np.mean(sd_from_90_interval(q05, q95))),
            "r2_spend_if_treated": r_squared(targets.spend_treated[:, a], pred[f"spend_if_{name}"]),
            "r2_uplift_lower": r_squared(q05, pred[f"uplift_{name}_lower"]),
            "r2_uplift_upper": r_squared(q95, pred[f"uplift_{name}_upper"]),
            "mean_abs_uplift_error": float(np.mean(np.abs(error))),
        }
    return {
        "n_users": int(len(targets.x)),
        "r2_uplift": min(v["r2_uplift"] for v in arms.values()),
        "uplift_error_share_of_posterior_sd": max(v["uplift_error_share_of_posterior_sd"] for v in arms.values()),
        "r2_spend_if_control": r_squared(targets.spend_control, pred["spend_if_control"]),
        "arms": arms,
    }


def check_fidelity(holdout: dict, floor: float) -> str:
    """Raise SurrogateFidelityError unless the surrogate's uplift matches the posterior's on held-out users.

    Passes when R^2 reaches ``floor``, or, failing that, when the surrogate's uplift error (RMSE) is at most
    sqrt(1 - floor) of the posterior's own sd of a user's uplift (0.1 for floor 0.99). The second rule is for
    posteriors whose users barely differ (a shrunk model, a campaign without heterogeneity): their spread of
    uplift is tiny, so R^2 measures noise, while an error a tenth of the posterior's uncertainty changes no
    decision. Returns the rule that passed. With several campaign arms (``holdout["arms"]``) every arm must pass;
    the rules that passed are returned per arm ("email_a: r2_uplift; email_b: ...").
    """
    if "arms" in holdout:
        passed = []
        for name, scores in holdout["arms"].items():
            try:
                passed.append(f"{name}: {check_fidelity({**scores, 'n_users': holdout['n_users']}, floor)}")
            except SurrogateFidelityError as exc:
                raise SurrogateFidelityError(f"arm {name}: {exc}") from None
        return "; ".join(passed)
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
