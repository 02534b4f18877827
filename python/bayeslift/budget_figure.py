"""The multi-arm budget (Qini) curve as a figure: ``policy_arms.budget_curve``'s table drawn, written atomically."""
from __future__ import annotations

from pathlib import Path

from .io import atomic_path
from .policy_arms import ALL_ARMS

CURVE_COLUMNS = ("curve", "budget_per_1000", "value", "ci_low", "ci_high")


def plot_budget_curve(curve, path_png) -> str:
    """Draw the estimated value of the budgeted multi-arm allocation (with its 95% band) and of each arm alone
    against the spend per 1,000 users into the PNG ``path_png``; a failed draw leaves no file. Returns the path."""
    missing = [c for c in CURVE_COLUMNS if c not in curve.columns]
    if missing:
        raise ValueError(f"budget curve table lacks column(s) {missing} (policy_arms.budget_curve makes them)")
    import matplotlib

    matplotlib.use("Agg")  # no display on the pipeline's machines
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    try:
        for name, grp in curve.groupby("curve", sort=False):
            many = name == ALL_ARMS
            ax.plot(grp["budget_per_1000"], grp["value"], lw=2.2 if many else 1.2, ls="-" if many else "--",
                    label=f"{name} (budgeted)" if many else f"{name} alone")
            if many:
                ax.fill_between(grp["budget_per_1000"], grp["ci_low"], grp["ci_high"], alpha=0.2,
                                label="95% interval (AIPW)")
        ax.axhline(0, color="k", lw=0.8)
        ax.set(xlabel="budget: spend on contacts per 1,000 users", ylabel="incremental profit per 1,000 users (AIPW)",
               title="Value of a contact budget spent over campaign arms")
        ax.legend(fontsize=7)
        with atomic_path(path_png) as tmp:
            fig.savefig(tmp, format="png", dpi=90, bbox_inches="tight")
    finally:
        plt.close(fig)
    return str(Path(path_png))
