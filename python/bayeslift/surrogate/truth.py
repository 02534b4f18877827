"""A real surrogate trained on the simulator's true expected spend (no R): for tests and benchmarks."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data import FeatureSpec, validate_training_frame
from ..simulate import COLUMNS, simulate_history
from .checkpoint import save_surrogate, targeting_facts
from .model import FeatureEncoder, SurrogateConfig
from .train import SurrogateTargets, fit_surrogate


def simulated_truth_targets(n_users: int = 2000, seed: int = 11) -> tuple[FeatureEncoder, SurrogateTargets]:
    """Encoder and surrogate targets from the simulator's truth; intervals are a fixed band around it."""
    history, truth = simulate_history(n_users, seed=seed)
    spec = FeatureSpec.from_columns(COLUMNS)
    validate_training_frame(history, spec, "simulated history")  # learns levels and ranges into spec, as prepare does
    encoder = FeatureEncoder.fit(spec, history)
    uplift = truth["true_uplift"].to_numpy()
    targets = SurrogateTargets(
        x=encoder.transform(history),
        spend_treated=truth["true_spend_if_treated"].to_numpy(),
        spend_control=truth["true_spend_if_control"].to_numpy(),
        uplift_mean=uplift,
        uplift_q05=uplift - 0.5 - 0.2 * np.abs(uplift),
        uplift_q95=uplift + 0.5 + 0.3 * np.abs(uplift),
    )
    return encoder, targets


def train_truth_surrogate(out_dir: str | Path, n_users: int = 2000, seed: int = 11, source: str = "simulator truth",
                          hidden: int = 64) -> Path:
    """Fit and save a surrogate ``hidden`` units wide whose targets are the simulator's truth
    (``simulated_truth_targets``)."""
    encoder, targets = simulated_truth_targets(n_users, seed)
    surrogate = fit_surrogate(targets, SurrogateConfig(hidden=hidden, steps=480, seed=3))  # quick: 60 passes of 8 batches
    # the top_k threshold from users the surrogate did not see, as the pipeline learns it on the holdout
    holdout, _ = simulate_history(max(200, n_users // 4), seed=seed + 1)
    save_surrogate(out_dir, surrogate, encoder, training_config={"source": source}, fidelity={},
                   targeting=targeting_facts(surrogate, encoder.transform(holdout), "simulated holdout"))
    return Path(out_dir)
