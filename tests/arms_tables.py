"""Counterfactual tables of three arms as R writes them, built without R (tests of the surrogate, scoring and
serving with several campaign arms): the simulator's true expected spend per arm as the posterior mean."""
from __future__ import annotations

import numpy as np
import pandas as pd

from bayeslift.data import FeatureSpec, validate_training_frame
from bayeslift.simulate import columns_for, simulate_history
from bayeslift.surrogate.estimator import CounterfactualTables

ARMS = ["email_a", "email_b"]


def three_arm_tables(n: int, seed: int) -> tuple[CounterfactualTables, pd.DataFrame]:
    """Counterfactual tables as R writes them for three arms (K + 1 rows per user: arms 1..K, then control),
    with the truth as the posterior mean and a band around it as the 90% interval."""
    history, truth = simulate_history(n, seed=seed, scenario="multi_arm")
    spec = FeatureSpec.from_columns(columns_for("multi_arm"))
    users = validate_training_frame(history, spec, "simulated history")  # learns arms, levels and ranges
    users["split"] = np.where(np.arange(n) % 4 == 0, "holdout", "train")
    features = users[spec.features]
    spend = {0: truth["true_spend_if_none"]} | {k + 1: truth[f"true_spend_if_{a}"] for k, a in enumerate(ARMS)}
    order = [1, 2, 0]
    train_data = pd.concat([pd.DataFrame({spec.id: users[spec.id], "split": users["split"], "received_campaign": arm})
                            .join(features) for arm in order]).sort_index(kind="stable").reset_index(drop=True)
    labels = pd.concat([pd.DataFrame({spec.id: users[spec.id], "received_campaign": arm, "spend_mean": spend[arm],
                                      "spend_median": spend[arm], "spend_q05": 0.8 * spend[arm],
                                      "spend_q95": 1.2 * spend[arm]}) for arm in order]
                       ).sort_index(kind="stable").reset_index(drop=True)
    uplift = pd.DataFrame({spec.id: users[spec.id], "split": users["split"]})
    for a in ARMS:
        u = truth[f"true_uplift_{a}"].to_numpy()
        uplift[f"uplift_{a}_mean"] = u
        uplift[f"uplift_{a}_median"] = u
        uplift[f"uplift_{a}_q05"] = u - 0.5 - 0.2 * np.abs(u)
        uplift[f"uplift_{a}_q95"] = u + 0.5 + 0.3 * np.abs(u)
        uplift[f"prob_positive_{a}"] = (u > 0).astype(float)
        uplift[f"prob_profit_{a}"] = (0.3 * u > 1).astype(float)
    return CounterfactualTables(train_data, labels, uplift, spec), users
