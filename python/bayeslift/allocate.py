"""A budget over several campaign arms, applied to a scored file (``bayeslift allocate``; issue 25).

``best_arm`` decides each user alone; a budget cannot: at most ``max_contacts`` contacts, or at most
``max_spend`` spent on contacts, is shared by every user of the file. ``allocate_file`` reads a file that
``score_file`` wrote (``uplift_<arm>`` per arm), solves the allocation that maximises the expected incremental
profit within the budget (``policy_arms.budget_path``: per user the convex hull of its options, then the best
increments across users; a user whose next step the budget cannot pay in full keeps the previous one), and
writes the file again with a ``budget_arm`` column (the arm's level, or the control level).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .arms import arm_levels
from .data import DataValidationError
from .decide_arms import arm_economics
from .io import atomic_path
from .policy import PolicyConfig
from .policy_arms import allocate_budget, budget_path

log = logging.getLogger("bayeslift")
BUDGET_COLUMN = "budget_arm"


def allocate_file(model_dir, input_path, output_path, policy: PolicyConfig, max_contacts: int | None = None,
                  max_spend: float | None = None) -> dict:
    """Write ``input_path`` (CSV or Parquet, scored by the model in ``model_dir``) to ``output_path`` with the
    budgeted arm of each user; return what was allocated (contacts per arm, spend, expected profit)."""
    import pandas as pd

    from .scoring import UpliftScorer

    if (max_contacts is None) == (max_spend is None):
        raise ValueError("allocate: give one budget, max_contacts or max_spend")
    budget = float(max_contacts if max_contacts is not None else max_spend)
    if not np.isfinite(budget) or budget < 0:
        raise ValueError(f"allocate: the budget must be a finite number >= 0, got {budget}")
    spec = UpliftScorer.load(model_dir).spec
    if len(spec.arms) < 2:
        raise ValueError("allocate: the model has one campaign arm; its budget is the top_k rule of scoring")
    econ = arm_economics(policy, spec.arms, spec.arm_slugs)
    input_path = Path(input_path)
    frame = pd.read_parquet(input_path) if input_path.suffix == ".parquet" else pd.read_csv(
        input_path, dtype={spec.id: str}, keep_default_na=False, na_values=[""])
    columns = [f"uplift_{a}" for a in spec.arm_slugs]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataValidationError(f"{input_path}: lacks column(s) {missing}; score it with this model first "
                                  "(bayeslift score)")
    uplift = frame[columns].to_numpy(dtype=float)
    bad = ~np.isfinite(uplift).all(axis=1)
    if bad.any():
        raise DataValidationError(f"{input_path}: non-finite uplift at data row(s) {np.flatnonzero(bad)[:5] + 1}")
    profit = econ.expected_profit(uplift)
    # a spend cap counts each arm's cost; a contact cap counts contacts, whatever they cost
    path = budget_path(uplift, econ) if max_spend is not None else budget_path(profit, np.ones(econ.n_arms))
    chosen = allocate_budget(path, budget)
    out = frame.assign(**{BUDGET_COLUMN: np.asarray(arm_levels(spec), dtype=object)[chosen]})
    with atomic_path(output_path) as tmp:
        if Path(output_path).suffix == ".parquet":
            out.to_parquet(tmp, index=False)
        else:
            out.to_csv(tmp, index=False, float_format="%.17g")
    contacted = chosen > 0
    k = np.maximum(chosen - 1, 0)
    facts = {"n_users": int(len(chosen)), "budget": {"max_contacts": max_contacts, "max_spend": max_spend},
             "contacts": {level: int((chosen == i).sum()) for i, level in enumerate(arm_levels(spec))},
             "spend": float(np.where(contacted, econ.costs[k], 0.0).sum()),
             "expected_profit": float(np.where(contacted, profit[np.arange(len(chosen)), k], 0.0).sum())}
    log.info("allocated %d users within %s: %s", len(chosen), facts["budget"], facts["contacts"])
    return facts
