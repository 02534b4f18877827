"""The surrogate network; users are encoded into its inputs by the one ``FeatureEncoder`` (re-exported here)."""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
from torch import nn

from ..features import FeatureEncoder

__all__ = ["FeatureEncoder", "SimpleNN", "SurrogateConfig", "with_arm"]
log = logging.getLogger("bayeslift")


@dataclass
class SurrogateConfig:
    """Architecture and training settings of the surrogate (config key ``surrogate``; the defaults here are
    config/config.yaml's)."""

    hidden: int = 32
    steps: int = 20000  # optimizer steps (batches), whatever the number of users
    batch_size: int = 256
    learning_rate: float = 3e-3
    weight_decay: float = 0.1  # AdamW's (decoupled); keeps small histories' fits smooth between users
    uplift_weight: float = 4.0
    seed: int = 0
    fidelity_floor: float = 0.99
    validation_fraction: float = 0.1  # share of the training users kept out for early stopping ...
    validation_min_users: int = 200  # ... when that is at least this many users
    eval_every: int = 250  # steps between validation losses
    patience: int = 4000  # steps without a better validation loss before training stops
    max_width_factor: int = 4  # below the floor, retry at 2x, 4x ... hidden up to this multiple
    epochs: int | None = None  # deprecated alias of steps (see steps_for)

    def steps_for(self, n_train_users: int) -> int:
        """The optimizer steps to run for ``n_train_users`` users: ``steps``, or, when the deprecated ``epochs``
        is set, epochs x batches per pass over those users (the updates ``epochs`` gave before steps existed)."""
        if self.epochs is None:
            return self.steps
        batches = math.ceil(n_train_users / self.batch_size)
        steps = self.epochs * batches
        log.warning("surrogate.epochs is deprecated and will be removed in the next release: set surrogate.steps "
                    "instead (epochs %d x %d batches of %d users = steps %d; surrogate.steps is ignored while "
                    "epochs is set)", self.epochs, batches, self.batch_size, steps)
        return steps


class SimpleNN(nn.Module):
    """Linear -> ReLU -> Linear."""

    def __init__(self, n_inputs: int, hidden: int, n_outputs: int = 1):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_inputs, hidden), nn.ReLU(), nn.Linear(hidden, n_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def with_arm(x: torch.Tensor, arm: int, n_arms: int = 1) -> torch.Tensor:
    """Prepend the arm inputs to a batch of encoded users: the received_campaign flag, or with several campaign
    arms one indicator per arm (``arm`` 0, control: all 0)."""
    if n_arms == 1:
        return torch.cat([torch.full((x.shape[0], 1), float(arm), dtype=x.dtype), x], dim=1)
    arms = torch.zeros((x.shape[0], n_arms), dtype=x.dtype)
    if arm:
        arms[:, arm - 1] = 1.0
    return torch.cat([arms, x], dim=1)
