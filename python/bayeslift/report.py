"""The ``report`` step: figures drawn from the evaluation's tables, and one self-contained HTML page (the PNG
figures embedded as base64)."""
from __future__ import annotations

import base64
import html
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from .data import DataValidationError
from .evaluation import TABLES
from .io import atomic_path, write_text_atomic

log = logging.getLogger("bayeslift")
PRIMARY = ("bayesian", "surrogate", "t_lightgbm")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90, bbox_inches="tight")
    _plt().close(fig)
    return str(path)


def _qini(tables: dict, primary: list[str]):
    plt = _plt()
    curves = tables["curves"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for m, grp in curves.groupby("model", sort=False):
        ax.plot(100 * grp["fraction"], grp["qini"], label=m, lw=2.2 if m in primary else 1.2,
                ls=":" if m == "random" else "-")
    first = curves[curves["model"] == tables["metrics"]["model"].iloc[0]]
    ax.plot(100 * first["fraction"], first["qini_random"], "k--", lw=1, label="random targeting (expected)")
    ax.set(xlabel="% of users targeted, highest predicted uplift first",
           ylabel="incremental spend per 1,000 users", title="Qini curves on the holdout")
    ax.legend(fontsize=7)
    return fig


def _calibration(tables: dict, primary: list[str]):
    calib = tables["calibration"]
    fig, axes = _plt().subplots(1, len(primary), figsize=(4 * len(primary), 3.8), squeeze=False)
    for ax, m in zip(axes[0], primary):
        c = calib[calib["model"] == m]
        ax.errorbar(c["mean_predicted"], c["observed"],
                    yerr=[c["observed"] - c["observed_low"], c["observed_high"] - c["observed"]], fmt="o", capsize=3)
        lo = float(np.nanmin([c["mean_predicted"].min(), c["observed_low"].min()]))
        hi = float(np.nanmax([c["mean_predicted"].max(), c["observed_high"].max()]))
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        ax.set(title=m, xlabel="mean predicted uplift (decile)", ylabel="observed uplift, 95% CI")
    fig.suptitle("Calibration by decile of predicted uplift")
    return fig


def _policy_curve(tables: dict, primary: list[str]):
    fig, ax = _plt().subplots(figsize=(7, 4.5))
    for m, grp in tables["policy_curve"].groupby("model", sort=False):
        ax.plot(100 * grp["fraction"], grp["value"], label=m, lw=2.2 if m in primary else 1.2)
    ax.axhline(0, color="k", lw=0.8)
    ax.set(xlabel="% of users targeted, highest predicted uplift first",
           ylabel="incremental profit per 1,000 users (AIPW)", title="Value of targeting the top x%")
    ax.legend(fontsize=7)
    return fig


def _segments(tables: dict, primary: list[str]):
    seg = tables["segments"]
    m = primary[0]
    s = seg[seg["model"] == m].reset_index(drop=True)
    fig, ax = _plt().subplots(figsize=(7, 0.35 * len(s) + 1.5))
    ypos = np.arange(len(s))[::-1]
    ax.errorbar(s["observed"], ypos, xerr=[s["observed"] - s["observed_low"], s["observed_high"] - s["observed"]],
                fmt="o", color="grey", capsize=3, label="observed (95% CI)")
    ax.plot(s["mean_predicted"], ypos, "D", color="tab:red", label=f"predicted ({m})")
    ax.set_yticks(ypos, [f"{f} = {lv}" for f, lv in zip(s["feature"], s["level"])], fontsize=7)
    ax.axvline(0, color="k", lw=0.8)
    ax.set(xlabel="uplift in spend per user", title="Uplift by segment")
    ax.legend(fontsize=7)
    return fig


def _surrogate_vs_bayesian(tables: dict, primary: list[str]):
    pred = tables["predictions"]
    if "surrogate" not in pred:
        raise DataValidationError("the evaluation's predictions table has no surrogate column: there is no "
                                  "surrogate_vs_bayesian figure to draw")
    fig, ax = _plt().subplots(figsize=(4.8, 4.5))
    ax.scatter(pred["bayesian"], pred["surrogate"], s=6, alpha=0.5)
    lo = float(min(pred["bayesian"].min(), pred["surrogate"].min()))
    hi = float(max(pred["bayesian"].max(), pred["surrogate"].max()))
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    r2 = 1 - np.sum((pred["surrogate"] - pred["bayesian"]) ** 2) / np.sum((pred["bayesian"] - pred["bayesian"].mean()) ** 2)
    ax.set(xlabel="Bayesian posterior mean uplift", ylabel="surrogate uplift",
           title=f"Surrogate vs Bayesian (holdout), R² = {r2:.3f}")
    return fig


#: the report's figures (the report rule's outputs besides the page), each drawn from the evaluation's tables
FIGURES = {"qini": _qini, "calibration": _calibration, "policy_curve": _policy_curve, "segments": _segments,
           "surrogate_vs_bayesian": _surrogate_vs_bayesian}


def default_figure_paths(tables: dict, fig_dir) -> dict[str, Path]:
    """{name: fig_dir/name.png} for every figure the tables allow (no surrogate column: no surrogate figure)."""
    names = [n for n in FIGURES if n != "surrogate_vs_bayesian" or "surrogate" in tables["predictions"]]
    return {n: Path(fig_dir, f"{n}.png") for n in names}


def make_figures(tables: dict, paths: dict, primary=None) -> dict:
    """Draw each figure of ``paths`` ({name in FIGURES: PNG path}) from the evaluation's ``tables``; return
    {name: path}. ``primary``: the models drawn bold and in the calibration panels (default ``PRIMARY``)."""
    unknown = sorted(set(paths) - set(FIGURES))
    if unknown:
        raise ValueError(f"unknown figure(s) {unknown}; the report draws {list(FIGURES)}")
    models = list(tables["metrics"]["model"])
    primary = [m for m in (primary or PRIMARY) if m in models] or models[:3]
    return {name: _save(FIGURES[name](tables, primary), Path(path)) for name, path in paths.items()}


# -------------------------------------------------------------------------------------------- HTML
def _img(path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(Path(path).stem)}" src="data:image/png;base64,{data}">'


def _table(frame: pd.DataFrame, digits: int = 3) -> str:
    fmt = frame.copy()
    for c in fmt.columns:
        if pd.api.types.is_float_dtype(fmt[c]):
            fmt[c] = fmt[c].map(lambda v: "" if pd.isna(v) else f"{v:,.{digits}f}")
    return fmt.to_html(index=False, escape=True, border=0, classes="tab")


def _fmt(v, d=2):
    return f"{v:,.{d}f}"


def plain_summary(ev: dict, ate: pd.DataFrame, metrics: pd.DataFrame, policy: pd.DataFrame, diag: dict) -> list[str]:
    """A few sentences of advice for a non-technical reader."""
    lines = []
    dim = ate[ate["method"] == "difference_in_means"].iloc[0]
    verdict = ("clearly raises" if dim["ci_low"] > 0 else "clearly lowers" if dim["ci_high"] < 0
               else "may not change")
    lines.append(f"On the {ev['n_holdout']:,} held-out customers, the campaign {verdict} spend: "
                 f"{_fmt(dim['estimate'])} per customer on average (95% interval {_fmt(dim['ci_low'])} to "
                 f"{_fmt(dim['ci_high'])}).")
    cands = policy[policy["model"].isin(["bayesian", "surrogate", "-"]) | policy["rule"].str.startswith("P(")]
    cands = cands[~cands["model"].str.startswith("oracle")]
    best = cands.sort_values("value_aipw", ascending=False).iloc[0]
    who = "nobody" if best["rule"] == "nobody" else "everybody" if best["rule"] == "everybody" else \
        f"the customers picked by the {best['model']} model's rule '{best['rule']}' ({100 * best['share_treated']:.0f}% of them)"
    sure = "and its 95% interval is above zero" if best["aipw_low"] > 0 else \
        "but its 95% interval includes zero, so the gain is not certain"
    p = ev["policy"]
    lines.append(f"With a contact cost of {p['cost_per_contact']} and a margin of {p['margin']} per unit of spend, "
                 f"the best plan found is to contact {who}: about {_fmt(best['value_aipw'], 0)} extra profit per "
                 f"1,000 customers, {sure}.")
    top = metrics.sort_values("qini_gain", ascending=False)
    rnd = metrics.loc[metrics["model"] == "random", "qini_gain"]
    lines.append(f"The model that best ranks customers by how much the campaign helps them is '{top.iloc[0]['model']}' "
                 f"(Qini gain {_fmt(top.iloc[0]['qini_gain'], 1)} per 1,000 customers"
                 + (f"; random ranking: {_fmt(rnd.iloc[0], 1)})." if len(rnd) else ")."))
    if diag is not None:
        lines.append("The Bayesian model's sampling checks passed." if diag.get("passed")
                     else "Warning: the Bayesian model's sampling checks FAILED (" + "; ".join(diag.get("problems", []))
                     + "); treat its numbers with caution and re-run with more iterations.")
    return lines


CSS = """body{font-family:Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table.tab{border-collapse:collapse;font-size:.82em;margin:.5em 0}table.tab td,table.tab th{padding:3px 8px;
border-bottom:1px solid #eee;text-align:right}table.tab th{background:#f3f3f3}img{max-width:100%}
.summary{background:#f5f9ff;border-left:4px solid #3a78c3;padding:.6em 1.2em}.note{color:#666;font-size:.85em}"""


#: `model.combine` values that mix the candidates, and how the report names their weights.
MIXTURE_METHODS = {"stack": "LOO stacking", "pseudo_bma": "pseudo-BMA+ weights (from LOO)"}


def model_checks_html(checks: dict | None) -> list[str]:
    """LOO, `model: auto`'s choice and the posterior predictive checks, when the fit step computed them."""
    if not checks:
        return []
    loo = checks["loo"]
    out = [f"<h3>Model checks</h3><p>Approximate leave-one-out fit (PSIS-LOO): elpd {_fmt(loo['elpd'], 1)} "
           f"(se {_fmt(loo['se'], 1)}, effective parameters {_fmt(loo['p_loo'], 1)}); {int(loo['n_high_k'])} of "
           f"{int(loo['n_users']):,} customers with Pareto k &gt; 0.7 (unreliable LOO when many).</p>"]
    sel = checks.get("selection")
    if sel and sel.get("method") in MIXTURE_METHODS:
        weights = ", ".join(f"{html.escape(str(k))} {float(v):.3f}" for k, v in sel["weights"].items())
        out.append(f"<p><code>model: auto</code> mixed the candidates by {MIXTURE_METHODS[sel['method']]}: the posterior "
                   f"is a mixture of them with "
                   f"weights {weights} (the no-effect model's weight is the belief that the campaign changes nothing)."
                   "</p>" + _table(pd.DataFrame(sel["table"]), 2))
    elif sel:
        on = (f" on a stratified subsample of {int(sel['n_users']):,} of the {int(sel['of_users']):,} customers "
              "(<code>effect.shape_subsample</code>), then fitted the kept shape on all of them"
              if sel.get("n_users") and sel.get("n_users") != sel.get("of_users") else "")
        out.append(f"<p><code>effect.shape: auto</code> compared candidates by LOO{on} and kept "
                   f"<b>{html.escape(str(sel['chosen']))}</b> (a more complex model wins only when credibly better)."
                   "</p>" + _table(pd.DataFrame(sel["table"]), 2))
    if checks.get("ppc"):
        out.append("<p>Posterior predictive checks: statistics of the observed spend against data sets replicated "
                   "from the model; p-values near 0 or 1 flag a misfit.</p>" + _table(pd.DataFrame(checks["ppc"]), 3))
    return out


def posterior_ate_html(post: dict | None) -> list[str]:
    """The Bayesian ATE (counterfactuals' ate.json), and whether the per-customer intervals were calibrated."""
    if not post:
        return []
    out = [f"<p>Bayesian posterior (delivered model) over all {post['n_users']:,} customers: {_fmt(post['ate_mean'], 3)} "
           f"(90% interval {_fmt(post['ate_q05'], 3)} to {_fmt(post['ate_q95'], 3)}; "
           f"P(ATE &gt; 0) = {_fmt(post['prob_positive'], 3)}).</p>"]
    if post.get("interval_scale") is not None:
        out.append(f"<p>Per-customer 90% uplift intervals are calibrated by parametric bootstrap "
                   f"(<code>model.intervals.calibrate</code>): every half-width was multiplied by "
                   f"{_fmt(post['interval_scale'], 3)}. The ATE interval above is the posterior's own.</p>")
    return out


def delivery_html(diag: dict | None, delivered: dict | None, n_holdout: int) -> list[str]:
    """Which fit this page evaluates and which one is delivered (config split.refit_all)."""
    if diag is None:
        return []
    n_train = diag.get("n_users")
    if delivered is None or delivered.get("fitted_on") != "all":
        return [f"<p>Delivered model: the fit on the {n_train:,} train-split customers evaluated here "
                "(<code>split.refit_all: false</code>); the held-out customers did not inform it.</p>"]
    checks = "passed" if delivered.get("passed") else "FAILED: " + "; ".join(delivered.get("problems", []))
    kept = (delivered.get("selection") or {}).get("kept_from")
    settings = (f"with the candidate <b>{html.escape(str(delivered['selection']['chosen']))}</b> that PSIS-LOO kept "
                "for the train split's fit (<code>effect.shape: auto</code>)" if kept else "with the same settings")
    return [f"<p>Delivered model: <b>refit on all {delivered.get('n_users'):,} customers</b>, the holdout included "
            f"(<code>split.refit_all</code>), {settings}; its counterfactuals, surrogate and scores are "
            f"the ones delivered (sampling checks {html.escape(checks)}). Every holdout number on this page is for "
            f"the Bayesian model and surrogate fit on the {n_train:,} train-split customers, scored on the "
            f"{n_holdout:,} held-out customers they never saw: out-of-sample. The delivered model has no holdout of "
            "its own: any metric of it on these customers would not be out-of-sample.</p>"]


def read_tables(tables: dict) -> dict[str, pd.DataFrame]:
    """The evaluation's tables ({name: CSV path}, every name of ``evaluation.TABLES``) as frames."""
    missing = [n for n in TABLES if n not in tables]
    if missing:
        raise DataValidationError(f"the report needs the evaluation's tables {missing} too (evaluate writes them)")
    return {n: pd.read_csv(tables[n]) for n in TABLES}


def build_report(evaluation_json, tables: dict, diagnostics_json, ate_json, out_html,
                 title: str = "bayeslift evaluation", delivered_diagnostics_json=None, figures: dict | None = None,
                 primary=None) -> str:
    """The ``report`` step: draw the figures from the evaluation's tables and write one self-contained HTML page
    (no external files: the figures are embedded).

    ``tables``: {name: CSV path} of the evaluate step (``evaluation.TABLES``); ``figures``: {name: PNG path} of
    the figures to draw (names of ``FIGURES``; default every one the tables allow, in a ``figures`` folder beside
    ``out_html``); ``primary``: see ``make_figures``. ``diagnostics_json`` is the evaluated fit's (the train
    split's), ``delivered_diagnostics_json`` the delivered fit's and ``ate_json`` its posterior ATE
    (split.refit_all: the refit on every row; by default the same fit).
    """
    ev = json.loads(Path(evaluation_json).read_text())
    diag = json.loads(Path(diagnostics_json).read_text()) if diagnostics_json else None
    delivered = json.loads(Path(delivered_diagnostics_json).read_text()) if delivered_diagnostics_json else diag
    post = json.loads(Path(ate_json).read_text()) if ate_json else None
    t = read_tables(tables)
    if figures is None:
        figures = default_figure_paths(t, Path(out_html).parent / "figures")
    missing = [n for n in FIGURES if n not in figures and n != "surrogate_vs_bayesian"]  # the page shows each
    if missing:
        raise ValueError(f"build_report: figures lacks {missing}")
    figs = make_figures(t, figures, primary)
    ate, metrics, policy = t["ate"], t["metrics"], t["policy"]
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    parts.append("<div class='summary'><h2>What to do</h2>"
                 + "".join(f"<p>{html.escape(s)}</p>" for s in plain_summary(ev, ate, metrics, policy, diag))
                 + "".join(delivery_html(diag, delivered, ev["n_holdout"])) + "</div>")
    parts.append("<h2>Average effect of the campaign (ATE)</h2><p>Extra spend per customer caused by the campaign, "
                 "estimated four ways on the held-out customers (95% intervals), and by the Bayesian model.</p>")
    parts.append(_table(ate[["method", "estimate", "se", "ci_low", "ci_high", "source"]]))
    parts += posterior_ate_html(post)
    parts.append("<h2>Who to target: Qini curves</h2><p>Each curve shows the extra spend per 1,000 customers if the "
                 "top x% by predicted uplift were contacted. Higher above the dashed random line is better.</p>")
    parts.append(_img(figs["qini"]))
    cols = ["model", "qini_gain", "qini_gain_low", "qini_gain_high", "auuc_lift"] + \
        [c for c in metrics.columns if c.startswith("uplift_at_") and not c.endswith(("_low", "_high"))] + \
        [c for c in ("sqrt_pehe", "ate_error", "coverage_90") if c in metrics.columns]
    parts.append(_table(metrics[cols]))
    parts.append("<p class='note'>qini_gain: area between the Qini curve and random targeting (spend per 1,000 "
                 "customers; 95% bootstrap interval). uplift_at_k: observed extra spend per customer in the top k%. "
                 + ("sqrt_pehe / ate_error / coverage_90: errors against the simulator's true uplift." if ev["truth_known"] else "")
                 + "</p>")
    parts.append("<h2>Are the predictions right? Calibration</h2><p>Customers are grouped into ten equal groups by "
                 "predicted uplift; dots are the observed uplift in each group (with 95% interval), and they should "
                 "lie on the dashed line.</p>" + _img(figs["calibration"]))
    parts.append("<h2>Value of targeting rules</h2><p>Extra profit per 1,000 customers compared with contacting nobody "
                 "(margin x extra spend - contact cost), estimated on the holdout with AIPW and IPW (95% intervals)"
                 + (", and the true value from the simulator" if ev["truth_known"] else "") + ".</p>")
    parts.append(_table(policy, 1) + _img(figs["policy_curve"]))
    parts.append(f"<p class='note'>P(profit &gt; 0) for the Bayesian rule: {html.escape(ev['policy']['prob_profit_method'])}.</p>")
    parts.append("<h2>Which customers respond? Segments</h2>" + _img(figs["segments"]))
    if "surrogate_vs_bayesian" in figs:
        parts.append("<h2>Fast scoring model vs Bayesian model</h2><p>The fast (surrogate) model should reproduce the "
                     "Bayesian model's uplift: points on the dashed line.</p>" + _img(figs["surrogate_vs_bayesian"]))
    if diag is not None:
        parts.append("<h2>Bayesian model fit diagnostics</h2>"
                     + ("<p>Of the fit on the train split, evaluated above.</p>" if (delivered or {}).get("fitted_on") == "all" else ""))
        parts.append(f"<p>Backend {html.escape(str(diag.get('backend')))}, {diag.get('n_users')} customers, "
                     f"{_fmt(diag.get('fit_seconds', float('nan')), 1)} s. Checks "
                     f"<b>{'passed' if diag.get('passed') else 'FAILED'}</b>.</p>")
        rows = [{"part": k, **v} for k, v in diag.get("parts", {}).items()]
        if rows:
            parts.append(_table(pd.DataFrame(rows), 3))
        if diag.get("problems"):
            parts.append("<ul>" + "".join(f"<li>{html.escape(p)}</li>" for p in diag["problems"]) + "</ul>")
        parts += model_checks_html(diag.get("model_checks"))
    parts.append("</body></html>")
    text = "\n".join(parts)
    write_text_atomic(text, out_html)
    log.info("wrote report %s (%d kB)", out_html, len(text) // 1024)
    return str(out_html)
