"""Targeting decisions from predicted uplift.

The default rule treats a user when the expected incremental profit is positive:
margin * uplift - cost_per_contact > 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class PolicyConfig:
    cost_per_contact: float = 0.0
    margin: float = 1.0  # profit per unit of spend


def treat_decision(uplift: np.ndarray, policy: PolicyConfig = PolicyConfig()) -> np.ndarray:
    """Boolean array: treat where the expected incremental profit is positive."""
    return policy.margin * np.asarray(uplift, dtype=float) - policy.cost_per_contact > 0
