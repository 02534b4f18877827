"""Train the surrogate to imitate the Bayesian model's counterfactual posterior.

Two SimpleNN networks (predict.py) are fit together on the same users: ``spend_net``'s loss also penalises
the error of the implied uplift, which is what users are ranked by; ``interval_net`` learns the widths of the
90% uplift interval. Training runs a number of optimizer steps, not epochs, so a small history gets as many
updates as a large one. On histories large enough to spare them (``validation_split``), validation users (a share
of the training users, not the pipeline's holdout) stop training once their loss has not improved for
``patience`` steps, and the weights of the lowest loss are kept. ``fit_to_floor`` retrains wider while the
holdout fidelity misses the floor.
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..data import FeatureSpec
from .fidelity import SurrogateFidelityError, check_fidelity, fidelity, r_squared
from .model import FeatureEncoder, SimpleNN, SurrogateConfig, with_arm
from .predict import PREDICT_CHUNK, PREDICTION_NAMES, OutcomeLink, Surrogate
from .targets import SurrogateTargets

# Also the import path of names moved to predict.py, fidelity.py and targets.py (scoring, entry, benchmarks).
__all__ = ["PREDICT_CHUNK", "PREDICTION_NAMES", "Surrogate", "SurrogateFidelityError", "SurrogateTargets",
           "TrainingRun", "build_targets", "check_fidelity", "fidelity", "fit_surrogate", "fit_surrogate_run",
           "fit_to_floor", "r_squared"]
log = logging.getLogger("bayeslift")
WIDTH_FLOOR = 1e-6  # relative to uplift_scale; keeps log-widths finite where an interval collapses


def seed_everything(seed: int) -> None:
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_targets(train_data: pd.DataFrame, labels: pd.DataFrame, uplift: pd.DataFrame, spec: FeatureSpec,
                  encoder: FeatureEncoder) -> SurrogateTargets:
    """Pair each user's rows of every arm with their uplift summary (users x arms with several campaign arms)."""
    first_arm = train_data["received_campaign"].to_numpy() == 1
    users = train_data[first_arm].reset_index(drop=True)
    ids = users[spec.id].astype(str).to_numpy()
    by_arm = labels.assign(_id=labels[spec.id].astype(str)).pivot(index="_id", columns="received_campaign", values="spend_mean")
    up = uplift.assign(_id=uplift[spec.id].astype(str)).set_index("_id")
    missing = set(ids) - set(by_arm.index) | set(ids) - set(up.index)
    if missing:
        raise ValueError(f"labels or uplift summary lack {len(missing)} users, e.g. {sorted(missing)[:3]}")
    arms = spec.arm_slugs if len(spec.arms) > 1 else []

    def summary(stat: str) -> np.ndarray:  # "mean", "q05" or "q95" of the uplift
        if not arms:
            return up.loc[ids, f"uplift_{stat}"].to_numpy(dtype=np.float64)
        return up.loc[ids, [f"uplift_{a}_{stat}" for a in arms]].to_numpy(dtype=np.float64)

    treated = by_arm.loc[ids, 1] if not arms else by_arm.loc[ids, list(range(1, len(arms) + 1))]
    return SurrogateTargets(
        x=encoder.transform(users),
        spend_treated=treated.to_numpy(dtype=np.float64),
        spend_control=by_arm.loc[ids, 0].to_numpy(dtype=np.float64),
        uplift_mean=summary("mean"),
        uplift_q05=summary("q05"),
        uplift_q95=summary("q95"),
        outcome_type=spec.outcome_type,
        arm_names=tuple(arms),
    )


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


@dataclass
class _Tensors:
    """The training targets on the networks' scales, one row per user."""

    x: torch.Tensor
    z_treated: torch.Tensor
    z_control: torch.Tensor
    uplift: torch.Tensor  # divided by uplift_scale
    log_widths: torch.Tensor  # users x 2: below and above the mean

    def rows(self, idx) -> "_Tensors":
        idx = torch.as_tensor(idx, dtype=torch.long)
        return _Tensors(*(t[idx] for t in (self.x, self.z_treated, self.z_control, self.uplift, self.log_widths)))


def _to_tensors(targets: SurrogateTargets, link: OutcomeLink, uplift_scale: float) -> _Tensors:
    below = np.log(np.maximum(targets.uplift_mean - targets.uplift_q05, 0) / uplift_scale + WIDTH_FLOOR)
    above = np.log(np.maximum(targets.uplift_q95 - targets.uplift_mean, 0) / uplift_scale + WIDTH_FLOOR)
    return _Tensors(
        x=_tensor(targets.x),
        z_treated=_tensor(link.to_net(targets.spend_treated)),
        z_control=_tensor(link.to_net(targets.spend_control)),
        uplift=_tensor(targets.uplift_mean / uplift_scale),
        # below and above the mean, arm after arm
        log_widths=_tensor(np.column_stack([below, above]) if below.ndim == 1 else
                           np.stack([below, above], axis=2).reshape(len(below), -1)),
    )


def validation_split(n_users: int, fraction: float, min_users: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (fit, validation): a random ``fraction`` of the users for validation, or none when that is
    fewer than ``min_users`` or would leave no user to fit.

    On small histories a few users in sparse corners decide the holdout R^2 (on a 500-user history, 5 of 150
    holdout users made 85% of the squared error), so every user held back costs fidelity (holdout R^2 0.988-0.995
    with all 350 training users, 0.94-0.98 with 35 of them kept for validation), and so few validation users
    judge noise: there all users train for all the steps.
    """
    n_validation = int(round(fraction * n_users))
    if n_validation < max(1, min_users) or n_validation >= n_users:
        return np.arange(n_users), np.arange(0)
    order = np.random.default_rng(seed).permutation(n_users)
    return np.sort(order[n_validation:]), np.sort(order[:n_validation])


@dataclass
class TrainingRun:
    """A trained surrogate and what its training did (the manifest's ``training`` entry)."""

    surrogate: Surrogate
    hidden: int
    steps_planned: int
    steps_run: int
    best_step: int  # the step whose spend_net weights were kept (the uplift's)
    best_step_interval: int  # and interval_net's
    stopped_early: bool
    n_fit_users: int
    n_validation_users: int
    validation_loss: float | None  # spend_net's, at best_step

    def facts(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "surrogate"}


def fit_surrogate(targets: SurrogateTargets, config: SurrogateConfig) -> Surrogate:
    """Train both networks (``fit_surrogate_run``) and return the surrogate."""
    return fit_surrogate_run(targets, config).surrogate


def fit_surrogate_run(targets: SurrogateTargets, config: SurrogateConfig) -> TrainingRun:
    """Train both networks with AdamW and a cosine learning-rate decay over the configured steps; with validation
    users (``validation_split``), stop early and keep each network's weights of its lowest validation loss."""
    seed_everything(config.seed)
    n_features = targets.x.shape[1]
    steps = config.steps_for(len(targets.x))
    fit_idx, val_idx = validation_split(len(targets.x), config.validation_fraction, config.validation_min_users,
                                        config.seed)
    n_arms = max(1, len(targets.arm_names))
    link = OutcomeLink.fit(targets.outcome_type, np.concatenate([targets.spend_treated.T.ravel(), targets.spend_control]))
    uplift_scale = float(np.std(targets.uplift_mean)) or 1.0  # one scale for every arm's uplift
    every = _to_tensors(targets, link, uplift_scale)
    fit, validation = every.rows(fit_idx), every.rows(val_idx)

    spend_net = SimpleNN(n_features + n_arms, config.hidden)
    interval_net = SimpleNN(n_features, config.hidden, 2 * n_arms)
    mse = nn.MSELoss()

    def treated_predictions(x: torch.Tensor) -> torch.Tensor:
        """spend_net in the campaign arm (users), or in each campaign arm (users x arms)."""
        if n_arms == 1:
            return spend_net(with_arm(x, 1))[:, 0]
        return torch.stack([spend_net(with_arm(x, arm, n_arms))[:, 0] for arm in range(1, n_arms + 1)], dim=1)

    def losses(t: _Tensors) -> tuple[torch.Tensor, torch.Tensor]:
        """spend_net's loss and interval_net's: separate terms, so each network is early-stopped on its own."""
        pred_t = treated_predictions(t.x)
        pred_c = spend_net(with_arm(t.x, 0, n_arms))[:, 0]
        control = link.from_net(pred_c) if n_arms == 1 else link.from_net(pred_c)[:, None]
        pred_uplift = (link.from_net(pred_t) - control) / uplift_scale
        return (mse(pred_t, t.z_treated) + mse(pred_c, t.z_control) + config.uplift_weight * mse(pred_uplift, t.uplift),
                mse(interval_net(t.x), t.log_widths))

    optimizer = torch.optim.AdamW([p for net in (spend_net, interval_net) for p in net.parameters()],
                                  lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    n_fit, n_val = len(fit_idx), len(val_idx)
    best = (_Best(spend_net), _Best(interval_net))
    log_every = max(1, steps // 10)
    order, position, step = torch.randperm(n_fit), 0, 0
    running, since_log = 0.0, 0  # training loss summed since the last log line
    while step < steps:
        if position >= n_fit:  # a new pass over the users, in a new order
            order, position = torch.randperm(n_fit), 0
        loss = sum(losses(fit.rows(order[position:position + config.batch_size])))
        position += config.batch_size
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        step += 1
        running, since_log = running + loss.item(), since_log + 1
        if n_val and (step % config.eval_every == 0 or step == steps):
            with torch.no_grad():
                for tracker, val_loss in zip(best, losses(validation)):
                    tracker.update(val_loss.item(), step)
            if step - max(b.step for b in best) >= config.patience:
                break
        if step % log_every == 0 or step == steps:
            validated = (f"; validation loss {best[0].loss:.5f} + {best[1].loss:.5f} (best at steps {best[0].step}, "
                         f"{best[1].step})" if n_val else "")
            log.info("surrogate step %d/%d: training loss %.5f%s", step, steps, running / since_log, validated)
            running, since_log = 0.0, 0
    stopped_early = step < steps
    for tracker in best:
        tracker.restore(step)
    if stopped_early:
        log.info("surrogate: no better validation loss in %d steps; stopped at step %d of %d, kept the weights of "
                 "steps %d (spend_net) and %d (interval_net)", config.patience, step, steps, best[0].step, best[1].step)
    return TrainingRun(Surrogate(spend_net, interval_net, link.scale, uplift_scale, link.outcome_type, link.loc,
                                 targets.arm_names),
                       hidden=config.hidden, steps_planned=steps, steps_run=step, best_step=best[0].step,
                       best_step_interval=best[1].step, stopped_early=stopped_early, n_fit_users=n_fit,
                       n_validation_users=n_val, validation_loss=best[0].loss if n_val else None)


class _Best:
    """One network's lowest validation loss so far, the step it came at, and a copy of its weights then."""

    def __init__(self, net: SimpleNN):
        self.net, self.loss, self.step, self.state = net, math.inf, 0, None

    def update(self, loss: float, step: int) -> None:
        if loss < self.loss:
            self.loss, self.step = loss, step
            self.state = {k: v.clone() for k, v in self.net.state_dict().items()}

    def restore(self, last_step: int) -> None:
        """Back to the best weights; without validation users, the last weights are the kept ones."""
        if self.state is None:
            self.step = last_step
        else:
            self.net.load_state_dict(self.state)


def fit_to_floor(fit_targets: SurrogateTargets, holdout_targets: SurrogateTargets,
                 config: SurrogateConfig) -> tuple[TrainingRun, dict, list[dict]]:
    """Train, and while the holdout fidelity misses ``config.fidelity_floor`` (``check_fidelity``), retrain with
    the hidden width doubled, up to ``hidden * max_width_factor``.

    Returns the passing run, its holdout fidelity (with ``passed_by``) and every width tried with its holdout
    R^2. Raises SurrogateFidelityError naming each width and its holdout R^2 when none passes.
    """
    # The deprecated epochs are converted (and warned about) once, not once per width.
    config = replace(config, steps=config.steps_for(len(fit_targets.x)), epochs=None)
    tries = []
    hidden = config.hidden
    while True:
        run = fit_surrogate_run(fit_targets, replace(config, hidden=hidden))
        scores = fidelity(run.surrogate, holdout_targets)
        tries.append({"hidden": hidden, "steps_run": run.steps_run, "best_step": run.best_step,
                      "holdout_r2_uplift": scores["r2_uplift"],
                      "holdout_error_share_of_posterior_sd": scores["uplift_error_share_of_posterior_sd"]})
        try:
            scores["passed_by"] = check_fidelity(scores, config.fidelity_floor)
            return run, scores, tries
        except SurrogateFidelityError as exc:
            if hidden * 2 > config.hidden * config.max_width_factor:
                tried = "; ".join(f"hidden {t['hidden']}: R^2 {t['holdout_r2_uplift']:.4f}, error "
                                  f"{t['holdout_error_share_of_posterior_sd']:.3f} of the posterior sd" for t in tries)
                raise SurrogateFidelityError(
                    f"{exc}. Widths tried ({config.steps} steps each at most): {tried}. Raise "
                    "surrogate.max_width_factor or surrogate.steps, or lower surrogate.fidelity_floor") from None
            log.warning("%s at hidden width %d; retrying at %d", exc, hidden, hidden * 2)
            hidden *= 2
