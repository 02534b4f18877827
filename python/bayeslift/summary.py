"""The pipeline's headline: ATE with interval, diagnostics verdict, surrogate fidelity, where outputs are."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from .data import DataValidationError
from .io import write_text_atomic


def _non_finite(value, where: str = "") -> list[str]:
    """Dotted keys of the NaN / infinite floats inside ``value`` (JSON has no way to write them)."""
    if isinstance(value, dict):
        return [k for key, v in value.items() for k in _non_finite(v, f"{where}.{key}" if where else str(key))]
    if isinstance(value, (list, tuple)):
        return [k for i, v in enumerate(value) for k in _non_finite(v, f"{where}[{i}]")]
    return [where] if isinstance(value, float) and not math.isfinite(value) else []


def summarize_uplift(predictions: pd.DataFrame) -> dict:
    """Headline figures of a scored file; with several campaign arms (``uplift_<arm>`` columns) per arm, and the
    share of users given each arm (``best_arm``) when the file has decisions."""
    if "uplift" in predictions:
        return _uplift_figures(predictions["uplift"], predictions["uplift_lower"])
    arms = [c[len("uplift_"):-len("_lower")] for c in predictions if c.startswith("uplift_") and c.endswith("_lower")]
    out = {"n_users": int(len(predictions)),
           "arms": {a: _uplift_figures(predictions[f"uplift_{a}"], predictions[f"uplift_{a}_lower"]) for a in arms}}
    if "best_arm" in predictions:
        out["best_arm_shares"] = {str(k): float(v) for k, v in predictions["best_arm"].value_counts(normalize=True).items()}
    return out


def _uplift_figures(uplift: pd.Series, lower: pd.Series) -> dict:
    uplift = uplift.to_numpy()
    return {
        "n_users": int(len(uplift)),
        "mean_uplift": float(np.mean(uplift)),
        "share_positive": float(np.mean(uplift > 0)),
        "share_interval_above_zero": float(np.mean(lower.to_numpy() > 0)),
    }


def ate_figures(ate: dict) -> dict:
    """The summary's ATE: the posterior's mean, 90% interval, P(ATE > 0) and users; per arm with several."""
    keys = ("ate_mean", "ate_q05", "ate_q95", "prob_positive")
    if "arms" in ate:
        return {"arms": {a: {k: v[k] for k in keys} for a, v in ate["arms"].items()}, "n_users": ate["n_users"]}
    return {k: ate[k] for k in (*keys, "n_users")}


def delivered_fit(diagnostics: dict, evaluated: dict) -> dict:
    """Which fit is delivered and which one the holdout evaluation scored (config split.refit_all), from the
    two fits' diagnostics.json (the same file when the train split's fit is delivered)."""
    refit = diagnostics.get("fitted_on") == "all"
    n, n_train = diagnostics.get("n_users"), evaluated.get("n_users")
    if refit:
        note = (f"The delivered model (counterfactuals, surrogate, scoring) was refit on all {n} rows, the holdout "
                f"included (split.refit_all). The holdout evaluation scored the fit on the {n_train} train-split "
                "users and a surrogate of it, out-of-sample; no holdout metric of the delivered model is "
                "out-of-sample, as it saw the holdout. Its surrogate fidelity compares the surrogate with the "
                "delivered posterior on holdout users the surrogate did not train on.")
    else:
        note = (f"The delivered model is the fit on the {n_train} train-split users (split.refit_all: false), the "
                "one the holdout evaluation scored out-of-sample; the holdout rows did not inform it.")
    return {"fitted_on": "all" if refit else "train", "n_users": n, "refit_all": refit,
            "evaluated_fit": {"fitted_on": evaluated.get("fitted_on", "train"), "n_users": n_train},
            "holdout_metrics_out_of_sample": not refit, "note": note}


def write_summary(ate_json, diagnostics_json, manifest_json, predictions_csv, out_json,
                  evaluation_diagnostics_json=None) -> dict:
    """results/summary.json from the delivered fit's outputs; ``evaluation_diagnostics_json`` is the
    diagnostics of the fit the holdout evaluation scored (by default the delivered one)."""
    ate = json.loads(Path(ate_json).read_text())
    diagnostics = json.loads(Path(diagnostics_json).read_text())
    evaluated = json.loads(Path(evaluation_diagnostics_json).read_text()) if evaluation_diagnostics_json else diagnostics
    manifest = json.loads(Path(manifest_json).read_text())
    summary = {
        "ate": ate_figures(ate),
        "diagnostics": {"passed": diagnostics["passed"], "problems": diagnostics["problems"]},
        "delivered": delivered_fit(diagnostics, evaluated),
        "fidelity": manifest["fidelity"]["holdout"],
        "scored": summarize_uplift(pd.read_csv(predictions_csv)),
        "outputs": {
            "predictions": str(predictions_csv),
            "surrogate": str(Path(manifest_json).parent),
            "counterfactuals": str(Path(ate_json).parent),
            "diagnostics": str(diagnostics_json),
        },
    }
    # Name the input each bad number came from, rather than write invalid JSON (NaN) with exit 0.
    sources = {"ate": ate_json, "diagnostics": diagnostics_json, "fidelity": manifest_json,
               "scored": predictions_csv}
    for section, source in sources.items():
        bad = _non_finite(summary[section], section)
        if bad:
            raise DataValidationError(f"{source}: non-finite value(s) at {', '.join(bad)} of the summary; "
                                      f"refusing to write {out_json} (JSON has no NaN or infinity)")
    write_text_atomic(json.dumps(summary, indent=2, allow_nan=False), out_json)
    return summary


def format_summary(summary: dict) -> str:
    """Plain-text lines for the terminal."""
    a, f, s = summary["ate"], summary["fidelity"], summary["scored"]
    verdict = "passed" if summary["diagnostics"]["passed"] else "FAILED: " + "; ".join(summary["diagnostics"]["problems"])
    ates = a["arms"] if "arms" in a else {"": a}
    scored = s["arms"] if "arms" in s else {"": s}
    return "\n".join([
        *(f"Average uplift (ATE) per user{f' of {arm}' if arm else ''}: {v['ate_mean']:.3f} (90% interval "
          f"{v['ate_q05']:.3f} to {v['ate_q95']:.3f}; P(ATE > 0) = {v['prob_positive']:.3f}; {a['n_users']} users)"
          for arm, v in ates.items()),
        f"MCMC diagnostics: {verdict}",
        f"Surrogate fidelity on {f['n_users']} held-out users: R^2 uplift {f['r2_uplift']:.4f}"
        + (" (the worst arm's)" if "arms" in f else "")
        + (f" (error {f['uplift_error_share_of_posterior_sd']:.3f} of the posterior sd: users barely differ)"
           if f.get("passed_by") == "error_share_of_posterior_sd" else ""),
        *(f"Scored {v['n_users']} users{f' with {arm}' if arm else ''}: mean uplift {v['mean_uplift']:.3f}, "
          f"{100 * v['share_positive']:.1f}% positive" for arm, v in scored.items()),
        *(["Best arm: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in s["best_arm_shares"].items())]
          if "best_arm_shares" in s else []),
        *([summary["delivered"]["note"]] if "delivered" in summary else []),
        *(f"  {name}: {path}" for name, path in summary["outputs"].items()),
    ])
