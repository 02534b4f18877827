"""The report page's HTML parts: tables, embedded figures, the Bayesian fit's checks and diagnostics, and which fit
is delivered; shared by the one-arm report (``report``) and the several-arm one (``report_arms``)."""
from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd


def embed_png(path) -> str:
    """An <img> holding the PNG at ``path`` (base64): the page needs no other file."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(Path(path).stem)}" src="data:image/png;base64,{data}">'


def html_table(frame: pd.DataFrame, digits: int = 3) -> str:
    """``frame`` as an HTML table, floats with ``digits`` decimals and thousands separators, NaN blank."""
    fmt = frame.copy()
    for c in fmt.columns:
        if pd.api.types.is_float_dtype(fmt[c]):
            fmt[c] = fmt[c].map(lambda v: "" if pd.isna(v) else f"{v:,.{digits}f}")
    return fmt.to_html(index=False, escape=True, border=0, classes="tab")


def fmt(v, d=2):
    """A number with ``d`` decimals and thousands separators."""
    return f"{v:,.{d}f}"


def uplift_metric_columns(metrics: pd.DataFrame) -> list[str]:
    """The metrics table's columns the page shows: the model, Qini gain (interval), AUUC lift, uplift at k% and,
    when the truth is known, the truth metrics."""
    return ["model", "qini_gain", "qini_gain_low", "qini_gain_high", "auuc_lift"] + \
        [c for c in metrics.columns if c.startswith("uplift_at_") and not c.endswith(("_low", "_high"))] + \
        [c for c in ("sqrt_pehe", "ate_error", "coverage_90") if c in metrics.columns]


def checks_sentence(diag: dict) -> str:
    """Whether the Bayesian model's sampling checks passed, for a non-technical reader."""
    return ("The Bayesian model's sampling checks passed." if diag.get("passed")
            else "Warning: the Bayesian model's sampling checks FAILED (" + "; ".join(diag.get("problems", []))
            + "); treat its numbers with caution and re-run with more iterations.")


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
    out = [f"<h3>Model checks</h3><p>Approximate leave-one-out fit (PSIS-LOO): elpd {fmt(loo['elpd'], 1)} "
           f"(se {fmt(loo['se'], 1)}, effective parameters {fmt(loo['p_loo'], 1)}); {int(loo['n_high_k'])} of "
           f"{int(loo['n_users']):,} customers with Pareto k &gt; 0.7 (unreliable LOO when many).</p>"]
    sel = checks.get("selection")
    if sel and sel.get("method") in MIXTURE_METHODS:
        weights = ", ".join(f"{html.escape(str(k))} {float(v):.3f}" for k, v in sel["weights"].items())
        out.append(f"<p><code>model: auto</code> mixed the candidates by {MIXTURE_METHODS[sel['method']]}: the posterior "
                   f"is a mixture of them with "
                   f"weights {weights} (the no-effect model's weight is the belief that the campaign changes nothing)."
                   "</p>" + html_table(pd.DataFrame(sel["table"]), 2))
    elif sel:
        on = (f" on a stratified subsample of {int(sel['n_users']):,} of the {int(sel['of_users']):,} customers "
              "(<code>effect.shape_subsample</code>), then fitted the kept shape on all of them"
              if sel.get("n_users") and sel.get("n_users") != sel.get("of_users") else "")
        out.append(f"<p><code>effect.shape: auto</code> compared candidates by LOO{on} and kept "
                   f"<b>{html.escape(str(sel['chosen']))}</b> (a more complex model wins only when credibly better)."
                   "</p>" + html_table(pd.DataFrame(sel["table"]), 2))
    if checks.get("ppc"):
        out.append("<p>Posterior predictive checks: statistics of the observed spend against data sets replicated "
                   "from the model; p-values near 0 or 1 flag a misfit.</p>" + html_table(pd.DataFrame(checks["ppc"]), 3))
    return out


def posterior_ate_html(post: dict | None) -> list[str]:
    """The Bayesian ATE (counterfactuals' ate.json), and whether the per-customer intervals were calibrated."""
    if not post:
        return []
    out = [f"<p>Bayesian posterior (delivered model) over all {post['n_users']:,} customers: {fmt(post['ate_mean'], 3)} "
           f"(90% interval {fmt(post['ate_q05'], 3)} to {fmt(post['ate_q95'], 3)}; "
           f"P(ATE &gt; 0) = {fmt(post['prob_positive'], 3)}).</p>"]
    if post.get("interval_scale") is not None:
        out.append(f"<p>Per-customer 90% uplift intervals are calibrated by parametric bootstrap "
                   f"(<code>model.intervals.calibrate</code>): every half-width was multiplied by "
                   f"{fmt(post['interval_scale'], 3)}. The ATE interval above is the posterior's own.</p>")
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


def diagnostics_html(diag: dict | None, delivered: dict | None) -> list[str]:
    """The evaluated Bayesian fit's sampling diagnostics, problems and model checks (diagnostics.json)."""
    if diag is None:
        return []
    refit = (delivered or {}).get("fitted_on") == "all"
    parts = ["<h2>Bayesian model fit diagnostics</h2>"
             + ("<p>Of the fit on the train split, evaluated above.</p>" if refit else "")]
    parts.append(f"<p>Backend {html.escape(str(diag.get('backend')))}, {diag.get('n_users')} customers, "
                 f"{fmt(diag.get('fit_seconds', float('nan')), 1)} s. Checks "
                 f"<b>{'passed' if diag.get('passed') else 'FAILED'}</b>.</p>")
    rows = [{"part": k, **v} for k, v in diag.get("parts", {}).items()]
    if rows:
        parts.append(html_table(pd.DataFrame(rows), 3))
    if diag.get("problems"):
        parts.append("<ul>" + "".join(f"<li>{html.escape(p)}</li>" for p in diag["problems"]) + "</ul>")
    parts += model_checks_html(diag.get("model_checks"))
    return parts
