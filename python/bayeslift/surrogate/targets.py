"""The surrogate's training targets: what train.py fits and fidelity.py measures, apart so neither imports the
other."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SurrogateTargets:
    """Per-user training targets, aligned row by row with the encoded features. With several campaign arms
    (``arm_names``, their column suffixes) the treated spend and the uplift summaries are users x arms."""

    x: np.ndarray  # users x features (float32)
    spend_treated: np.ndarray
    spend_control: np.ndarray
    uplift_mean: np.ndarray
    uplift_q05: np.ndarray
    uplift_q95: np.ndarray
    outcome_type: str = "spend"
    arm_names: tuple = ()
