"""The ``report`` step: figures drawn from the evaluation's tables, and one self-contained HTML page (the PNG
figures embedded as base64). An evaluation of several campaign arms (evaluation.json ``arms``) gets the page of
``report_arms``, into the same files."""
from __future__ import annotations

import html
import json
import logging
from pathlib import Path

import pandas as pd

from .data import DataValidationError
from .evaluation import TABLES
from .io import write_text_atomic
from .report_arms import build_arm_report
from .report_html import (CSS, checks_sentence, delivery_html, diagnostics_html, embed_png, fmt, html_table,
                          model_checks_html, posterior_ate_html, uplift_metric_columns)
from .report_panels import (draw_agreement, draw_calibration, draw_qini, draw_segments, pyplot, require_surrogate,
                            save_figure)

log = logging.getLogger("bayeslift")
__all__ = ["FIGURES", "PRIMARY", "build_report", "default_figure_paths", "make_figures", "model_checks_html",
           "plain_summary", "posterior_ate_html", "primary_models", "read_tables"]
PRIMARY = ("bayesian", "surrogate", "t_lightgbm")


def _qini(tables: dict, primary: list[str]):
    fig, ax = pyplot().subplots(figsize=(7, 4.5))
    draw_qini(ax, tables["curves"], tables["metrics"]["model"].iloc[0], primary)
    return fig


def _calibration(tables: dict, primary: list[str]):
    calib = tables["calibration"]
    fig, axes = pyplot().subplots(1, len(primary), figsize=(4 * len(primary), 3.8), squeeze=False)
    for ax, m in zip(axes[0], primary):
        draw_calibration(ax, calib[calib["model"] == m], m)
    fig.suptitle("Calibration by decile of predicted uplift")
    return fig


def _policy_curve(tables: dict, primary: list[str]):
    fig, ax = pyplot().subplots(figsize=(7, 4.5))
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
    fig, ax = pyplot().subplots(figsize=(7, 0.35 * len(s) + 1.5))
    draw_segments(ax, s, m)
    return fig


def _surrogate_vs_bayesian(tables: dict, primary: list[str]):
    pred = tables["predictions"]
    require_surrogate(pred)
    fig, ax = pyplot().subplots(figsize=(4.8, 4.5))
    draw_agreement(ax, pred["bayesian"], pred["surrogate"], "Surrogate vs Bayesian (holdout), R² = {r2:.3f}")
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
    return {name: save_figure(FIGURES[name](tables, primary_models(tables, primary)), Path(path))
            for name, path in paths.items()}


def primary_models(tables: dict, primary=None) -> list[str]:
    """The models of ``primary`` (default ``PRIMARY``) that were evaluated, else the first three."""
    models = list(dict.fromkeys(tables["metrics"]["model"]))
    return [m for m in (primary or PRIMARY) if m in models] or models[:3]


def plain_summary(ev: dict, ate: pd.DataFrame, metrics: pd.DataFrame, policy: pd.DataFrame, diag: dict) -> list[str]:
    """A few sentences of advice for a non-technical reader."""
    lines = []
    dim = ate[ate["method"] == "difference_in_means"].iloc[0]
    verdict = ("clearly raises" if dim["ci_low"] > 0 else "clearly lowers" if dim["ci_high"] < 0
               else "may not change")
    lines.append(f"On the {ev['n_holdout']:,} held-out customers, the campaign {verdict} spend: "
                 f"{fmt(dim['estimate'])} per customer on average (95% interval {fmt(dim['ci_low'])} to "
                 f"{fmt(dim['ci_high'])}).")
    cands = policy[policy["model"].isin(["bayesian", "surrogate", "-"]) | policy["rule"].str.startswith("P(")]
    cands = cands[~cands["model"].str.startswith("oracle")]
    best = cands.sort_values("value_aipw", ascending=False).iloc[0]
    who = "nobody" if best["rule"] == "nobody" else "everybody" if best["rule"] == "everybody" else \
        f"the customers picked by the {best['model']} model's rule '{best['rule']}' ({100 * best['share_treated']:.0f}% of them)"
    sure = "and its 95% interval is above zero" if best["aipw_low"] > 0 else \
        "but its 95% interval includes zero, so the gain is not certain"
    p = ev["policy"]
    lines.append(f"With a contact cost of {p['cost_per_contact']} and a margin of {p['margin']} per unit of spend, "
                 f"the best plan found is to contact {who}: about {fmt(best['value_aipw'], 0)} extra profit per "
                 f"1,000 customers, {sure}.")
    top = metrics.sort_values("qini_gain", ascending=False)
    rnd = metrics.loc[metrics["model"] == "random", "qini_gain"]
    lines.append(f"The model that best ranks customers by how much the campaign helps them is '{top.iloc[0]['model']}' "
                 f"(Qini gain {fmt(top.iloc[0]['qini_gain'], 1)} per 1,000 customers"
                 + (f"; random ranking: {fmt(rnd.iloc[0], 1)})." if len(rnd) else ")."))
    if diag is not None:
        lines.append(checks_sentence(diag))
    return lines


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
    if len(ev.get("arms", [])) > 1:  # several campaign arms (issue 25): the per-arm page, into the same files
        return build_arm_report(ev, t, figures, out_html, title, diag, delivered, post, primary_models(t, primary))
    figs = make_figures(t, figures, primary)
    ate, metrics, policy = t["ate"], t["metrics"], t["policy"]
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    parts.append("<div class='summary'><h2>What to do</h2>"
                 + "".join(f"<p>{html.escape(s)}</p>" for s in plain_summary(ev, ate, metrics, policy, diag))
                 + "".join(delivery_html(diag, delivered, ev["n_holdout"])) + "</div>")
    parts.append("<h2>Average effect of the campaign (ATE)</h2><p>Extra spend per customer caused by the campaign, "
                 "estimated four ways on the held-out customers (95% intervals), and by the Bayesian model.</p>")
    parts.append(html_table(ate[["method", "estimate", "se", "ci_low", "ci_high", "source"]]))
    parts += posterior_ate_html(post)
    parts.append("<h2>Who to target: Qini curves</h2><p>Each curve shows the extra spend per 1,000 customers if the "
                 "top x% by predicted uplift were contacted. Higher above the dashed random line is better.</p>")
    parts.append(embed_png(figs["qini"]))
    parts.append(html_table(metrics[uplift_metric_columns(metrics)]))
    parts.append("<p class='note'>qini_gain: area between the Qini curve and random targeting (spend per 1,000 "
                 "customers; 95% bootstrap interval). uplift_at_k: observed extra spend per customer in the top k%. "
                 + ("sqrt_pehe / ate_error / coverage_90: errors against the simulator's true uplift." if ev["truth_known"] else "")
                 + "</p>")
    parts.append("<h2>Are the predictions right? Calibration</h2><p>Customers are grouped into ten equal groups by "
                 "predicted uplift; dots are the observed uplift in each group (with 95% interval), and they should "
                 "lie on the dashed line.</p>" + embed_png(figs["calibration"]))
    parts.append("<h2>Value of targeting rules</h2><p>Extra profit per 1,000 customers compared with contacting nobody "
                 "(margin x extra spend - contact cost), estimated on the holdout with AIPW and IPW (95% intervals)"
                 + (", and the true value from the simulator" if ev["truth_known"] else "") + ".</p>")
    parts.append(html_table(policy, 1) + embed_png(figs["policy_curve"]))
    parts.append(f"<p class='note'>P(profit &gt; 0) for the Bayesian rule: {html.escape(ev['policy']['prob_profit_method'])}.</p>")
    parts.append("<h2>Which customers respond? Segments</h2>" + embed_png(figs["segments"]))
    if "surrogate_vs_bayesian" in figs:
        parts.append("<h2>Fast scoring model vs Bayesian model</h2><p>The fast (surrogate) model should reproduce the "
                     "Bayesian model's uplift: points on the dashed line.</p>" + embed_png(figs["surrogate_vs_bayesian"]))
    parts += diagnostics_html(diag, delivered)
    parts.append("</body></html>")
    text = "\n".join(parts)
    write_text_atomic(text, out_html)
    log.info("wrote report %s (%d kB)", out_html, len(text) // 1024)
    return str(out_html)
