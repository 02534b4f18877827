"""Train the surrogate to imitate the Bayesian model's counterfactual posterior.

Two SimpleNN networks are fit together on the same users:
- ``spend_net`` maps [received_campaign, features] to log(E[spend] / spend_scale) for that arm; its loss
  also penalises the error of the implied uplift, which is what users are ranked by;
- ``interval_net`` maps features to the log-widths of the 90% uplift interval below and above the
  posterior mean, so scoring returns uplift_lower <= uplift <= uplift_upper without R.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..data import FeatureSpec
from ..policy import sd_from_90_interval
from .model import FeatureEncoder, SimpleNN, SurrogateConfig, with_arm

log = logging.getLogger("bayeslift")
WIDTH_FLOOR = 1e-6  # relative to uplift_scale; keeps log-widths finite where an interval collapses
PREDICT_CHUNK = 1024  # rows per inference chunk: intermediates stay in cache, and OpenBLAS stays
# single-threaded (above ~2k rows it starts threads, which on 2 busy cores made scoring 10x slower)
PREDICTION_NAMES = ("spend_if_treated", "spend_if_control", "uplift", "uplift_lower", "uplift_upper")
SPEND_FLOOR = 1e-9  # relative to spend_scale; expected spend is positive but may round to 0 in a CSV
PROB_FLOOR = 1e-7  # binary outcomes: probabilities are clipped to [floor, 1 - floor] before the logit


class SurrogateFidelityError(RuntimeError):
    """The surrogate does not reproduce the posterior well enough on held-out users."""


def seed_everything(seed: int) -> None:
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class SurrogateTargets:
    """Per-user training targets, aligned row by row with the encoded features."""

    x: np.ndarray  # users x features (float32)
    spend_treated: np.ndarray
    spend_control: np.ndarray
    uplift_mean: np.ndarray
    uplift_q05: np.ndarray
    uplift_q95: np.ndarray
    outcome_type: str = "spend"


class OutcomeLink:
    """The network's output scale for each outcome type, and the way back to the expected outcome.

    spend: log(E / scale) (positive, skewed); binary: logit(P) (a probability); gaussian:
    (E - loc) / scale (any real). ``scale`` and ``loc`` are fixed at training and saved in the checkpoint.
    """

    def __init__(self, outcome_type: str = "spend", scale: float = 1.0, loc: float = 0.0):
        self.outcome_type, self.scale, self.loc = outcome_type, scale, loc

    @classmethod
    def fit(cls, outcome_type: str, expected: np.ndarray) -> "OutcomeLink":
        if outcome_type == "spend":
            return cls(outcome_type, float(np.mean(expected)) or 1.0)
        if outcome_type == "binary":
            return cls(outcome_type)
        return cls(outcome_type, float(np.std(expected)) or 1.0, float(np.mean(expected)))

    def to_net(self, expected: np.ndarray) -> np.ndarray:
        if self.outcome_type == "spend":
            return np.log(np.maximum(expected / self.scale, SPEND_FLOOR))
        if self.outcome_type == "binary":
            p = np.clip(expected, PROB_FLOOR, 1.0 - PROB_FLOOR)
            return np.log(p / (1.0 - p))
        return (expected - self.loc) / self.scale

    def from_net(self, z):
        """Works on numpy arrays (scoring) and torch tensors (the training loss)."""
        lib = torch if isinstance(z, torch.Tensor) else np
        if self.outcome_type == "spend":
            return lib.exp(z) * self.scale
        if self.outcome_type == "binary":
            return 1.0 / (1.0 + lib.exp(-z))
        return z * self.scale + self.loc


def build_targets(train_data: pd.DataFrame, labels: pd.DataFrame, uplift: pd.DataFrame, spec: FeatureSpec,
                  encoder: FeatureEncoder) -> SurrogateTargets:
    """Pair each user's treated and control rows with their uplift summary."""
    treated = train_data["received_campaign"].to_numpy() == 1
    users = train_data[treated].reset_index(drop=True)
    ids = users[spec.id].astype(str).to_numpy()
    by_arm = labels.assign(_id=labels[spec.id].astype(str)).pivot(index="_id", columns="received_campaign", values="spend_mean")
    up = uplift.assign(_id=uplift[spec.id].astype(str)).set_index("_id")
    missing = set(ids) - set(by_arm.index) | set(ids) - set(up.index)
    if missing:
        raise ValueError(f"labels or uplift summary lack {len(missing)} users, e.g. {sorted(missing)[:3]}")
    return SurrogateTargets(
        x=encoder.transform(users),
        spend_treated=by_arm.loc[ids, 1].to_numpy(dtype=np.float64),
        spend_control=by_arm.loc[ids, 0].to_numpy(dtype=np.float64),
        uplift_mean=up.loc[ids, "uplift_mean"].to_numpy(dtype=np.float64),
        uplift_q05=up.loc[ids, "uplift_q05"].to_numpy(dtype=np.float64),
        uplift_q95=up.loc[ids, "uplift_q95"].to_numpy(dtype=np.float64),
        outcome_type=spec.outcome_type,
    )


class Surrogate:
    """The fitted pair of networks plus the scales needed to turn outputs back into spend.

    Scoring runs the networks' weights through numpy rather than torch: a 1-user call costs ~30 us
    instead of ~200 us of per-op overhead, and large batches run at the same speed.
    """

    def __init__(self, spend_net: SimpleNN, interval_net: SimpleNN, spend_scale: float, uplift_scale: float,
                 outcome_type: str = "spend", outcome_loc: float = 0.0):
        self.spend_net = spend_net.eval()
        self.interval_net = interval_net.eval()
        self.spend_scale = spend_scale
        self.uplift_scale = uplift_scale
        self.link = OutcomeLink(outcome_type, spend_scale, outcome_loc)
        w1, self._b1, w2, b2 = _layers(spend_net)
        self._arm_weight, self._feature_weight = w1[:, 0].copy(), np.ascontiguousarray(w1[:, 1:].T)
        self._w2, self._b2 = w2[0].copy(), b2[0]
        v1, self._c1, v2, self._c2 = _layers(interval_net)
        self._v1, self._v2 = np.ascontiguousarray(v1.T), np.ascontiguousarray(v2.T)

    def predict_encoded(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Encoded users -> spend under each arm, uplift and its 90% interval (float64 arrays).

        Same math as ``spend_net(with_arm(x, arm))``, but the first layer's product with the features is
        shared by both arms, and users go through in cache-sized chunks. Each matrix product is computed
        in float64 and rounded to float32: BLAS sums in a different order for 1 row than for 1,000, and
        that rounding hides the difference, so a user's scores do not depend on how users are batched
        (HTTP and batch files agree digit for digit).
        """
        x_all = np.asarray(x, dtype=np.float64)
        out = {name: np.empty(len(x_all)) for name in PREDICTION_NAMES}
        for start in range(0, len(x_all), PREDICT_CHUNK):
            xt = x_all[start:start + PREDICT_CHUNK]
            pre = _rounded(xt @ self._feature_weight + self._b1)
            treated = self.link.from_net(_rounded(np.maximum(pre + self._arm_weight, 0.0) @ self._w2) + self._b2)
            control = self.link.from_net(_rounded(np.maximum(pre, 0.0) @ self._w2) + self._b2)
            hidden = np.maximum(_rounded(xt @ self._v1 + self._c1), 0.0)
            widths = np.exp(_rounded(hidden @ self._v2) + self._c2) * self.uplift_scale
            uplift = treated - control
            rows = slice(start, start + len(xt))
            out["spend_if_treated"][rows] = treated
            out["spend_if_control"][rows] = control
            out["uplift"][rows] = uplift
            out["uplift_lower"][rows] = uplift - widths[:, 0]
            out["uplift_upper"][rows] = uplift + widths[:, 1]
        return out


def _layers(net: SimpleNN) -> list[np.ndarray]:
    """[first weight, first bias, last weight, last bias] as float64 arrays."""
    first, last = net.net[0], net.net[2]
    return [t.detach().numpy().astype(np.float64) for t in (first.weight, first.bias, last.weight, last.bias)]


def _rounded(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32).astype(np.float64)


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def fit_surrogate(targets: SurrogateTargets, config: SurrogateConfig) -> Surrogate:
    """Train both networks with Adam and a cosine learning-rate decay."""
    seed_everything(config.seed)
    n, n_features = targets.x.shape
    link = OutcomeLink.fit(targets.outcome_type, np.concatenate([targets.spend_treated, targets.spend_control]))
    uplift_scale = float(np.std(targets.uplift_mean)) or 1.0
    x = _tensor(targets.x)
    z_treated = _tensor(link.to_net(targets.spend_treated))
    z_control = _tensor(link.to_net(targets.spend_control))
    uplift = _tensor(targets.uplift_mean / uplift_scale)
    floor = WIDTH_FLOOR
    log_widths = _tensor(np.column_stack([
        np.log(np.maximum(targets.uplift_mean - targets.uplift_q05, 0) / uplift_scale + floor),
        np.log(np.maximum(targets.uplift_q95 - targets.uplift_mean, 0) / uplift_scale + floor),
    ]))

    spend_net = SimpleNN(n_features + 1, config.hidden)
    interval_net = SimpleNN(n_features, config.hidden, 2)
    params = list(spend_net.parameters()) + list(interval_net.parameters())
    optimizer = torch.optim.Adam(params, lr=config.learning_rate)
    steps_per_epoch = math.ceil(n / config.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * steps_per_epoch)
    mse = nn.MSELoss()
    for epoch in range(config.epochs):
        order = torch.randperm(n)
        total = 0.0
        for start in range(0, n, config.batch_size):
            idx = order[start:start + config.batch_size]
            xb = x[idx]
            pred_t = spend_net(with_arm(xb, 1))[:, 0]
            pred_c = spend_net(with_arm(xb, 0))[:, 0]
            pred_uplift = (link.from_net(pred_t) - link.from_net(pred_c)) / uplift_scale
            loss = (
                mse(pred_t, z_treated[idx])
                + mse(pred_c, z_control[idx])
                + config.uplift_weight * mse(pred_uplift, uplift[idx])
                + mse(interval_net(xb), log_widths[idx])
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item() * len(idx)
        if epoch % 50 == 0 or epoch == config.epochs - 1:
            log.info("surrogate epoch %d/%d loss %.5f", epoch + 1, config.epochs, total / n)
    return Surrogate(spend_net, interval_net, link.scale, uplift_scale, link.outcome_type, link.loc)


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
        f"floor {floor}, and its error is {share:.3f} of the posterior sd of uplift (allowed {allowed:.3f}) "
        "(raise surrogate.epochs or surrogate.hidden, or lower surrogate.fidelity_floor)"
    )
