"""Contact decisions over several campaign arms, budgets solved over arms, and their value on a randomized
holdout (issue 25). The one-arm rules and values are ``policy.py``; this module is their K-arm form.

Arms: index 0 is control (nobody contacted) and 1..K the campaign arms (arms.py); a per-arm array is (n, K) with
column k - 1 for arm k. ``ArmEconomics``: contacting a user with arm k costs ``costs[k - 1]`` and each unit of
extra spend earns ``margins[k - 1]``, so arm k's expected incremental profit for user i is
``margin_k * uplift_ik - cost_k`` (control's is 0).

Rules decide each user alone (as ``policy.decide`` does) and return the chosen arm per user:
* ``best_arm_by_expected_profit``: the arm of highest expected profit if it is > 0, else control;
* ``best_arm_by_probability``: among the arms with P(profit > 0) >= p, the one of highest expected profit.

Budgets (Sverdrup et al. 2023, "Qini curves for multi-armed treatment rules"; the maq package): under a cap B
on the total spend on contacts, one option per user, maximise the total expected profit. The reward of arm k
for user i is its expected incremental profit *net* of the contact cost, ``margin_k * uplift_ik - cost_k``, and
its cost is ``cost_k``. The gross reward (before the cost) gives the same hulls and the same order of increments
(net = gross - cost shears the (cost, reward) plane, which keeps convex hulls); the net path only stops where
the next increment no longer pays for its contact, at ``best_arm_by_expected_profit``: a spend cap buys no
contact that loses money. ``budget_path`` with bare costs instead of economics maximises the given uplift
itself (every cost 1: a maximum number of contacts, as in maq).

The LP relaxation of this multiple-choice knapsack is solved exactly by the greedy: per user, drop dominated
options and keep the upper-left convex hull of (cost, reward) from control at (0, 0); take the hull's increments
of all users in decreasing order of reward / cost until the budget is spent (at most one user fractional).

Off-policy value on a randomized holdout: per-user scores Gamma_ik, unbiased for user i's expected outcome under
arm k (``arm_scores``: AIPW with cross-fitted outcome models per arm, or IPW). A rule pi's incremental profit per
1,000 users vs contacting nobody is 1000 * mean(margin_pi (Gamma_i,pi - Gamma_i0) - cost_pi) (0 for control),
with a normal 95% interval from those per-user terms, by ``policy.policy_value``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .policy import policy_value

if TYPE_CHECKING:
    import pandas as pd

ALL_ARMS = "all arms"  # the budgeted multi-arm allocation's name in ``budget_curve``
# Budgets compare with cumulative sums of costs: a budget of exactly their sum must buy the step it names.
BUDGET_RTOL = 1e-12
SCORE_METHODS = ("aipw", "ipw")


# ------------------------------------------------------------------------------------------ economics
def _arm_name(k: int, arms) -> str:
    return f"arm {k}" + (f" ({arms[k - 1]})" if arms else "")


@dataclass
class ArmEconomics:
    """Per campaign arm k = 1..K: ``costs[k - 1]`` per contact (>= 0) and ``margins[k - 1]`` per unit of extra
    spend (> 0); ``arms``: their names (e.g. ``FeatureSpec.arm_slugs``), optional, for messages and curves."""

    costs: np.ndarray
    margins: np.ndarray
    arms: tuple[str, ...] | None = None

    def __post_init__(self):
        self.costs = np.atleast_1d(np.asarray(self.costs, dtype=float))
        self.margins = np.atleast_1d(np.asarray(self.margins, dtype=float))
        if self.costs.ndim != 1 or self.margins.ndim != 1 or len(self.costs) != len(self.margins):
            raise ValueError(f"arm economics: costs and margins must be one number per campaign arm, got "
                             f"{len(self.costs)} costs and {len(self.margins)} margins")
        if len(self.costs) == 0:
            raise ValueError("arm economics: at least one campaign arm is needed")
        if self.arms is not None:
            self.arms = tuple(str(a) for a in self.arms)
            if len(self.arms) != len(self.costs):
                raise ValueError(f"arm economics: {len(self.arms)} arm names for {len(self.costs)} arms")
        for k, (cost, margin) in enumerate(zip(self.costs, self.margins), start=1):
            if not np.isfinite(cost) or cost < 0:
                raise ValueError(f"{_arm_name(k, self.arms)} cost must be a finite number >= 0, got {cost}")
            if not np.isfinite(margin) or margin <= 0:
                raise ValueError(f"{_arm_name(k, self.arms)} margin must be a finite number > 0, got {margin}")

    @classmethod
    def uniform(cls, n_arms: int, margin: float, cost: float, arms=None) -> "ArmEconomics":
        """Every arm with the one scalar ``margin`` and ``cost`` (the config's policy section, for now)."""
        return cls(np.full(n_arms, float(cost)), np.full(n_arms, float(margin)), arms)

    @property
    def n_arms(self) -> int:
        return len(self.costs)

    def names(self) -> list[str]:
        return list(self.arms) if self.arms else [f"arm {k}" for k in range(1, self.n_arms + 1)]

    def expected_profit(self, uplift) -> np.ndarray:
        """(n, K): margin_k * uplift_ik - cost_k."""
        return per_arm(uplift, self.n_arms, "uplift") * self.margins - self.costs


# --------------------------------------------------------------------------------------------- checks
def per_arm(values, n_arms: int, name: str) -> np.ndarray:
    """``values`` as an (n, K) float array, finite; a ValueError naming ``name`` otherwise."""
    a = np.asarray(values, dtype=float)
    if a.ndim == 1 and n_arms == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[1] != n_arms:
        raise ValueError(f"{name} must be an (n users, {n_arms} arms) array, one column per campaign arm; "
                         f"got shape {a.shape}")
    bad = ~np.isfinite(a)
    if bad.any():
        users, arms = np.nonzero(bad)
        raise ValueError(f"{name} has {int(bad.sum())} non-finite value(s), the first at user {users[0]} "
                         f"(row position), arm {arms[0] + 1}")
    return a


def arm_choice(choice, n_arms: int, n_users: int | None = None, name: str = "rule_arms") -> np.ndarray:
    """An arm index per user (0 = control, 1..K), as int64; a ValueError naming ``name`` otherwise."""
    a = np.asarray(choice)
    if a.ndim != 1 or (n_users is not None and len(a) != n_users):
        raise ValueError(f"{name} must be one arm index per user ({n_users} users), got shape {a.shape}")
    as_float = a.astype(float)
    bad = ~np.isfinite(as_float) | (as_float % 1 != 0) | (as_float < 0) | (as_float > n_arms)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} must hold arm indices 0 (control) to {n_arms}; user {first} has {a[first]!r}")
    return as_float.astype(np.int64)


# ---------------------------------------------------------------------------------------------- rules
def _best_of(profit: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """Per row the arm (1..K) of highest ``profit`` among ``eligible`` ones, ties to the lower index; 0 if none."""
    masked = np.where(eligible, profit, -np.inf)
    best = np.argmax(masked, axis=1)  # the first maximum: ties go to the lower index
    return np.where(eligible.any(axis=1), best + 1, 0)


def best_arm_by_expected_profit(uplift, econ: ArmEconomics) -> np.ndarray:
    """The arm of highest margin_k * uplift_k - cost_k per user when that is > 0, else control (0)."""
    profit = econ.expected_profit(uplift)
    return _best_of(profit, profit > 0)


def best_arm_by_probability(uplift, prob_profit, econ: ArmEconomics, threshold: float) -> np.ndarray:
    """Among the arms with P(profit > 0) >= ``threshold``, the one of highest expected profit; else control.

    ``prob_profit`` (n, K): the summary's ``prob_profit_<arm>`` columns, P(margin * uplift - cost > 0)."""
    if not 0 <= threshold <= 1:
        raise ValueError(f"probability threshold must be in [0, 1], got {threshold}")
    profit = econ.expected_profit(uplift)
    prob = per_arm(prob_profit, econ.n_arms, "prob_profit")
    if prob.shape != profit.shape:
        raise ValueError(f"prob_profit has shape {prob.shape} and uplift {profit.shape}; they must match")
    if ((prob < 0) | (prob > 1)).any():
        raise ValueError("prob_profit must be probabilities in [0, 1]")
    return _best_of(profit, prob >= threshold)


# -------------------------------------------------------------------------------------------- budgets
@dataclass
class BudgetPath:
    """The greedy's steps in the order taken: step s moves ``user[s]`` to ``arm[s]`` (from its previous option),
    costing ``cost[s]`` more and gaining ``gain[s]`` more; ``cum_cost`` / ``cum_gain`` are the running totals.
    ``values`` (n, K) and ``costs`` (K,) are the options it was solved over (reward of arm k and its cost)."""

    user: np.ndarray
    arm: np.ndarray
    cost: np.ndarray
    gain: np.ndarray
    cum_cost: np.ndarray
    cum_gain: np.ndarray
    values: np.ndarray
    costs: np.ndarray

    @property
    def n_users(self) -> int:
        return len(self.values)

    def to_frame(self) -> "pd.DataFrame":
        import pandas as pd

        return pd.DataFrame({"user": self.user, "arm": self.arm, "cost": self.cost, "gain": self.gain,
                             "cum_cost": self.cum_cost, "cum_gain": self.cum_gain})


def _ratio(v_from, c_from, v_to, c_to):
    """Reward per unit of cost of moving from one option to another; +inf for a free move. The hull's
    concavity test and the greedy's order use this one expression, so they agree to the last bit."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (v_to - v_from) / (c_to - c_from)


def _hulls(V: np.ndarray, C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per user the upper-left convex hull of its options (V: (n, K+1) rewards with control's 0 first, C: (K+1,)
    costs): option indices by increasing cost in ``stack[i, :size[i]]``. Monotone chain over the arms in cost
    order, all users at once (K is small, n large)."""
    n = len(V)
    rows = np.arange(n)
    stack = np.zeros((n, len(C)), dtype=np.int64)  # starts at control
    size = np.ones(n, dtype=np.int64)
    for j in np.argsort(C[1:], kind="stable") + 1:
        top = stack[rows, size - 1]
        live = V[:, j] > V[rows, top]  # worth no more than a cheaper option kept: dominated
        size[live & (C[top] == C[j])] -= 1  # the same cost and worth more: it replaces the top
        for _ in range(len(C)):
            a = stack[rows, np.maximum(size - 2, 0)]
            b = stack[rows, np.maximum(size - 1, 0)]
            pop = live & (size >= 2) & (_ratio(V[rows, b], C[b], V[:, j], C[j])
                                        >= _ratio(V[rows, a], C[a], V[rows, b], C[b]))
            if not pop.any():
                break
            size[pop] -= 1  # b lies on or below the chord from a to j
        stack[rows[live], size[live]] = j
        size[live] += 1
    return stack, size


def _solve_path(values: np.ndarray, costs: np.ndarray) -> BudgetPath:
    n, K = values.shape
    V = np.column_stack([np.zeros(n), values])
    C = np.concatenate([[0.0], costs])
    stack, size = _hulls(V, C)
    rows = np.arange(n)[:, None]
    prev = np.column_stack([np.zeros(n, dtype=np.int64), stack[:, :-1]])  # each hull point's predecessor
    valid = (np.arange(K + 1) < size[:, None]) & (stack != 0)  # position 0 may be control itself: no step
    ratio = _ratio(V[rows, prev], C[prev], V[rows, stack], C[stack])
    users = np.broadcast_to(rows, stack.shape)[valid]  # user-major, hull order: equal ratios keep it (stable)
    order = np.argsort(-ratio[valid], kind="stable")
    user, to, frm = users[order], stack[valid][order], prev[valid][order]
    cost = C[to] - C[frm]
    gain = V[user, to] - V[user, frm]
    return BudgetPath(user, to, cost, gain, np.cumsum(cost), np.cumsum(gain), values, costs)


def budget_path(uplift, econ_or_costs) -> BudgetPath:
    """The whole greedy path of the budgeted allocation over arms (module docstring), vectorised.

    ``uplift`` (n, K): predicted uplift per campaign arm. ``econ_or_costs``: an ``ArmEconomics`` (reward: expected
    profit net of the contact cost; budgets in money) or bare costs (K,) (reward: ``uplift`` itself; costs all 1:
    budgets count contacts). The whole path ends at ``best_arm_by_expected_profit`` but for exact ties in expected
    profit between arms of different costs, where the path keeps the cheaper arm and the rule the lower index."""
    if isinstance(econ_or_costs, ArmEconomics):
        return _solve_path(econ_or_costs.expected_profit(uplift), econ_or_costs.costs)
    costs = np.atleast_1d(np.asarray(econ_or_costs, dtype=float))
    econ = ArmEconomics(costs, np.ones(len(costs)))  # validates the costs
    return _solve_path(per_arm(uplift, econ.n_arms, "uplift"), econ.costs)


def _check_budgets(budgets) -> np.ndarray:
    b = np.atleast_1d(np.asarray(budgets, dtype=float))
    if np.isnan(b).any() or (b < 0).any():
        raise ValueError(f"budgets must be numbers >= 0 (inf: no cap), got {b[np.isnan(b) | (b < 0)][:3]}")
    return b


def _steps_within(path: BudgetPath, budgets: np.ndarray) -> np.ndarray:
    """How many of the path's steps each budget pays for in full."""
    return np.searchsorted(path.cum_cost, budgets * (1 + BUDGET_RTOL), side="right")


def path_gain(path: BudgetPath, budgets) -> np.ndarray:
    """The LP relaxation's optimum at each budget: the full steps' gain plus the affordable share of the next."""
    b = _check_budgets(budgets)
    m = _steps_within(path, b)
    full_cost, full_gain = (np.concatenate([[0.0], x])[m] for x in (path.cum_cost, path.cum_gain))
    # the step after the last full one (past the end: a sentinel of cost 1 and no gain); it is never free, as the
    # free steps come first and any budget >= 0 pays for them
    step_cost, step_gain = (np.append(x, v)[m] for x, v in ((path.cost, 1.0), (path.gain, 0.0)))
    return full_gain + np.clip((b - full_cost) / step_cost, 0.0, 1.0) * step_gain


def allocate_budget(path: BudgetPath, budget: float) -> np.ndarray:
    """The arm per user (0 = control) after the steps ``budget`` pays for in full (the fractional user keeps its
    previous option); ``inf``: the whole path."""
    m = int(_steps_within(path, _check_budgets(budget))[0])
    arm = np.zeros(path.n_users, dtype=np.int64)
    taken = path.user[:m]
    last = m - 1 - np.unique(taken[::-1], return_index=True)[1]  # each user's last step within the budget
    arm[path.user[last]] = path.arm[last]
    return arm


# ------------------------------------------------------------------------------------ off-policy value
def arm_scores(Z, arm, y, n_arms: int, shares=None, method: str = "aipw", n_folds: int = 5,
               outcome_model: str = "lightgbm", seed: int = 0) -> np.ndarray:
    """(n, K+1) per-user scores, column k unbiased for the user's expected outcome under arm k (0 = control), on a
    randomized holdout: AIPW Gamma_ik = mu_k(x_i) + 1{W_i = k} / e_k (Y_i - mu_k(x_i)), with mu_k fitted on arm
    k's users of the other folds (``metrics``' folds and regressors, as ``aipw_scores``), or IPW 1{W_i = k} Y_i / e_k.

    ``arm``: the arm index per user (``arms.encode_treatment``); ``shares``: the assignment probability of each arm
    (K+1,) or per user (n, K+1), default the holdout's arm shares (a randomized design)."""
    # the metrics layer (scikit-learn, the eval extra) only here: the rules and budgets stay as light as
    # policy.py, for scoring and serving to decide with later
    from .metrics import _folds, _regressor, _standardize

    if method not in SCORE_METHODS:
        raise ValueError(f"score method {method!r} unknown; choose from {list(SCORE_METHODS)}")
    y = np.asarray(y, dtype=float)
    if y.ndim != 1 or not np.isfinite(y).all():
        raise ValueError(f"outcome must be one finite number per user, got shape {y.shape}")
    arm = arm_choice(arm, n_arms, len(y), name="arm")
    if method == "aipw" and len(Z) != len(y):
        raise ValueError(f"features have {len(Z)} rows and the outcome {len(y)}; one row per user is needed")
    counts = np.bincount(arm, minlength=n_arms + 1)
    need = n_folds if method == "aipw" else 1
    if (counts < need).any():
        k = int(np.flatnonzero(counts < need)[0])
        raise ValueError(f"{'control' if k == 0 else f'arm {k}'} has {counts[k]} holdout users; {method.upper()} "
                         f"needs at least {need} in every arm" + (f" ({n_folds} folds)" if method == "aipw" else ""))
    e = counts / len(y) if shares is None else np.broadcast_to(np.asarray(shares, dtype=float), (len(y), n_arms + 1))
    if not (np.isfinite(e) & (e > 0) & (e <= 1)).all():
        raise ValueError(f"arm shares must be probabilities > 0, one per arm (control first), got {np.asarray(shares)}")
    hit = arm[:, None] == np.arange(n_arms + 1)
    if method == "ipw":
        return hit * y[:, None] / e
    Zs = _standardize(Z)
    fold = _folds(len(y), n_folds, seed, strata=arm)
    mu = np.empty((len(y), n_arms + 1))
    for f in range(n_folds):
        train, test = fold != f, fold == f
        for k in range(n_arms + 1):
            sel = train & (arm == k)
            mu[test, k] = _regressor(outcome_model, seed + f).fit(Zs[sel], y[sel]).predict(Zs[test])
    return mu + hit * (y[:, None] - mu) / e


def policy_value_arms(rule_arms, scores, econ: ArmEconomics, level: float = 0.95, per: int = 1000) -> dict:
    """Incremental profit per ``per`` users of the arm choice ``rule_arms`` vs contacting nobody, with a normal
    interval (``policy.policy_value`` on the per-user terms margin_k (Gamma_ik - Gamma_i0) - cost_k).

    ``scores``: (n, K+1) ``arm_scores``, or for the oracle the true expected outcome per arm. Adds ``spend``: the
    contact costs per ``per`` users."""
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2 or scores.shape[1] != econ.n_arms + 1:
        raise ValueError(f"scores must be an (n users, {econ.n_arms + 1}) array, control first; got {scores.shape}")
    pi = arm_choice(rule_arms, econ.n_arms, len(scores))
    contacted = pi > 0
    k = np.maximum(pi - 1, 0)
    net = np.where(contacted, econ.margins[k] * (scores[np.arange(len(pi)), pi] - scores[:, 0]) - econ.costs[k], 0.0)
    out = policy_value(contacted, net, margin=1.0, cost=0.0, level=level, per=per)
    return {**out, "spend": float(per * np.mean(np.where(contacted, econ.costs[k], 0.0)))}


def _curve_rows(name: str, allocations, budgets, values: np.ndarray, scores, econ: ArmEconomics, per: int):
    n = len(values)
    rows = []
    for b, alloc in zip(budgets, allocations):
        got = alloc > 0
        predicted = values[np.flatnonzero(got), alloc[got] - 1].sum()
        rows.append({"curve": name, "budget": float(b), "budget_per_1000": float(per * b / n),
                     "predicted_gain": float(per * predicted / n), **policy_value_arms(alloc, scores, econ, per=per)})
    return rows


def budget_curve(path: BudgetPath, scores, econ: ArmEconomics, budgets=None, per: int = 1000) -> "pd.DataFrame":
    """The multi-arm Qini curve: at each budget (total spend on contacts over the path's users; default 21 points
    from 0 to the whole path's spend) the AIPW value per ``per`` users of ``allocate_budget``, with its interval;
    and per campaign arm the same for that arm alone given to users in order of its reward per cost (its
    predicted uplift), up to its last profitable user. The single-arm allocations are feasible for the multi-arm
    problem, so the multi-arm ``predicted_gain`` lies at or above theirs at every budget.

    One row per curve and budget: ``curve`` (``ALL_ARMS`` or the arm's name), ``budget``, ``budget_per_1000``,
    ``predicted_gain`` (the path's own reward, per ``per`` users), ``value``, ``se``, ``ci_low``, ``ci_high``,
    ``share_treated``, ``spend`` (per ``per`` users)."""
    if np.shape(scores)[0] != path.n_users:
        raise ValueError(f"scores have {np.shape(scores)[0]} users and the path {path.n_users}; they must match")
    if len(path.costs) != econ.n_arms:
        raise ValueError(f"the path has {len(path.costs)} arms and the economics {econ.n_arms}")
    end = float(path.cum_cost[-1]) if len(path.cum_cost) else 0.0
    budgets = np.linspace(0.0, end, 21) if budgets is None else _check_budgets(budgets)
    rows = _curve_rows(ALL_ARMS, [allocate_budget(path, b) for b in budgets], budgets, path.values, scores, econ, per)
    for k, name in enumerate(econ.names(), start=1):
        alone = _solve_path(path.values[:, [k - 1]], path.costs[[k - 1]])
        allocations = [np.where(allocate_budget(alone, b) > 0, k, 0) for b in budgets]
        rows += _curve_rows(name, allocations, budgets, path.values, scores, econ, per)
    import pandas as pd

    return pd.DataFrame(rows)
