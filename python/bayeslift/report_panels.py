"""The report's figure panels: each draws one evaluation table onto one matplotlib axis, so that the one-arm
report (``report``) and the several-arm report (``report_arms``, a panel per arm) draw alike; and the PNG writer."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .data import DataValidationError
from .io import atomic_path


def require_surrogate(pred) -> None:
    """The evaluation's predictions table must have the surrogate's column for its figure."""
    if "surrogate" not in pred:
        raise DataValidationError("the evaluation's predictions table has no surrogate column: there is no "
                                  "surrogate_vs_bayesian figure to draw")


def pyplot():
    """matplotlib's pyplot without a display (the pipeline's machines have none)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> str:
    """Write ``fig`` as a PNG atomically and close it; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90, bbox_inches="tight")
    pyplot().close(fig)
    return str(path)


def draw_qini(ax, curves, random_of: str, primary, title: str = "Qini curves on the holdout") -> None:
    """Each model's Qini curve of ``curves`` (stacked, a ``model`` column), the primary ones bold, and the
    random-targeting line of model ``random_of``'s curve."""
    for m, grp in curves.groupby("model", sort=False):
        ax.plot(100 * grp["fraction"], grp["qini"], label=m, lw=2.2 if m in primary else 1.2,
                ls=":" if m == "random" else "-")
    first = curves[curves["model"] == random_of]
    ax.plot(100 * first["fraction"], first["qini_random"], "k--", lw=1, label="random targeting (expected)")
    ax.set(xlabel="% of users targeted, highest predicted uplift first",
           ylabel="incremental spend per 1,000 users", title=title)
    ax.legend(fontsize=7)


def draw_calibration(ax, c, title: str) -> None:
    """One model's calibration table ``c``: observed uplift per bin (95% CI) against the mean prediction."""
    ax.errorbar(c["mean_predicted"], c["observed"],
                yerr=[c["observed"] - c["observed_low"], c["observed_high"] - c["observed"]], fmt="o", capsize=3)
    lo = float(np.nanmin([c["mean_predicted"].min(), c["observed_low"].min()]))
    hi = float(np.nanmax([c["mean_predicted"].max(), c["observed_high"].max()]))
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set(title=title, xlabel="mean predicted uplift (decile)", ylabel="observed uplift, 95% CI")


def draw_segments(ax, s, m: str, title: str = "Uplift by segment") -> None:
    """Model ``m``'s segment table ``s`` (rows reset): observed uplift per segment (95% CI) and the prediction."""
    ypos = np.arange(len(s))[::-1]
    ax.errorbar(s["observed"], ypos, xerr=[s["observed"] - s["observed_low"], s["observed_high"] - s["observed"]],
                fmt="o", color="grey", capsize=3, label="observed (95% CI)")
    ax.plot(s["mean_predicted"], ypos, "D", color="tab:red", label=f"predicted ({m})")
    ax.set_yticks(ypos, [f"{f} = {lv}" for f, lv in zip(s["feature"], s["level"])], fontsize=7)
    ax.axvline(0, color="k", lw=0.8)
    ax.set(xlabel="uplift in spend per user", title=title)
    ax.legend(fontsize=7)


def draw_agreement(ax, bayesian, surrogate, title: str) -> None:
    """The surrogate's uplift against the Bayesian posterior mean's, user by user; ``title`` is formatted with
    ``r2``, the surrogate's R^2 against the posterior means."""
    ax.scatter(bayesian, surrogate, s=6, alpha=0.5)
    lo = float(min(bayesian.min(), surrogate.min()))
    hi = float(max(bayesian.max(), surrogate.max()))
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    r2 = 1 - np.sum((surrogate - bayesian) ** 2) / np.sum((bayesian - bayesian.mean()) ** 2)
    ax.set(xlabel="Bayesian posterior mean uplift", ylabel="surrogate uplift", title=title.format(r2=r2))
