"""The report page of an evaluation of several campaign arms (issue 25; the tables of ``evaluation_arms``): the
per-arm tables, the values of the arm-choosing rules, the multi-arm budget curve, and the one-arm figures drawn
a panel per arm. ``report.build_report`` hands such an evaluation here; the files are the report rule's own."""
from __future__ import annotations

import html
import logging
from pathlib import Path

import pandas as pd

from .budget_figure import plot_budget_curve
from .io import write_text_atomic
from .report_html import (CSS, checks_sentence, delivery_html, diagnostics_html, embed_png, fmt, html_table,
                          uplift_metric_columns)
from .report_panels import (draw_agreement, draw_calibration, draw_qini, draw_segments, pyplot, require_surrogate,
                            save_figure)

log = logging.getLogger("bayeslift")
ARM = "arm"  # every per-arm table's column naming the campaign arm (holdout_metrics_arms.ARM)
RULE_PREFIX = "policy rule: "  # how the policy table names the configured rule (holdout_metrics_arms)
BUDGET_MODEL = "bayesian"  # the model whose budget curve the policy_curve table holds and the page draws


def _arms(tables: dict) -> list[str]:
    return list(dict.fromkeys(tables["metrics"][ARM]))


def _of(table: pd.DataFrame, arm: str) -> pd.DataFrame:
    return table[table[ARM] == arm].reset_index(drop=True)


def _qini(tables: dict, primary: list[str]):
    arms = _arms(tables)
    fig, axes = pyplot().subplots(1, len(arms), figsize=(6.5 * len(arms), 4.5), squeeze=False, layout="constrained")
    for ax, a in zip(axes[0], arms):
        draw_qini(ax, _of(tables["curves"], a), _of(tables["metrics"], a)["model"].iloc[0], primary,
                  title=f"Qini curves: arm {a} vs control")
    return fig


def _calibration(tables: dict, primary: list[str]):
    arms = _arms(tables)
    fig, axes = pyplot().subplots(len(arms), len(primary), figsize=(4 * len(primary), 3.8 * len(arms)),
                                  squeeze=False, layout="constrained")  # rows of panels: titles clear of the axes
    for row, a in zip(axes, arms):
        calib = _of(tables["calibration"], a)
        for ax, m in zip(row, primary):
            draw_calibration(ax, calib[calib["model"] == m], f"{m}, arm {a}")
    fig.suptitle("Calibration by decile of predicted uplift, each arm vs control")
    return fig


def _segments(tables: dict, primary: list[str]):
    arms, m = _arms(tables), primary[0]
    per_arm = {a: _of(tables["segments"], a) for a in arms}
    per_arm = {a: s[s["model"] == m].reset_index(drop=True) for a, s in per_arm.items()}
    rows = max(len(s) for s in per_arm.values())
    fig, axes = pyplot().subplots(1, len(arms), figsize=(7 * len(arms), 0.35 * rows + 1.5), squeeze=False,
                                  layout="constrained")  # the segment labels clear of the panel to their left
    for ax, (a, s) in zip(axes[0], per_arm.items()):
        draw_segments(ax, s, m, title=f"Uplift of arm {a} by segment")
    return fig


def _surrogate_vs_bayesian(tables: dict, primary: list[str]):
    pred = tables["predictions"]
    require_surrogate(pred)
    arms = _arms(tables)
    fig, axes = pyplot().subplots(1, len(arms), figsize=(4.8 * len(arms), 4.5), squeeze=False, layout="constrained")
    for ax, a in zip(axes[0], arms):
        p = _of(pred, a)
        draw_agreement(ax, p["bayesian"], p["surrogate"], f"arm {a}: R² = {{r2:.3f}}")
    fig.suptitle("Surrogate vs Bayesian uplift of each arm (holdout)")
    return fig


#: the report's figures with several arms: the one-arm figures a panel per arm; ``policy_curve`` is the budget curve
ARM_FIGURES = {"qini": _qini, "calibration": _calibration, "segments": _segments,
               "surrogate_vs_bayesian": _surrogate_vs_bayesian}


def make_arm_figures(tables: dict, paths: dict, primary: list[str]) -> dict:
    """Draw each figure of ``paths`` ({name: PNG path}, names of ``report.FIGURES``): ``policy_curve`` the
    Bayesian model's multi-arm budget curve (``budget_figure.plot_budget_curve``), the others ``ARM_FIGURES``."""
    out = {}
    for name, path in paths.items():
        if name == "policy_curve":
            curve = tables["policy_curve"]
            out[name] = plot_budget_curve(curve[curve["model"] == BUDGET_MODEL], path)
        else:
            out[name] = save_figure(ARM_FIGURES[name](tables, primary), Path(path))
    return out


# -------------------------------------------------------------------------------------------- HTML
def _plan(row) -> str:
    if row["rule"] == "nobody":
        return "contact nobody"
    if row["rule"].startswith("everyone: "):
        return f"give every customer {row['rule'][len('everyone: '):]}"
    rule, configured = row["rule"], row["rule"].startswith(RULE_PREFIX)
    return (f"follow the {row['model']} model's rule '{rule[len(RULE_PREFIX):] if configured else rule}' ("
            + ("the configured policy rule; " if configured else "")
            + f"it contacts {100 * row['share_treated']:.0f}% of the customers)")


def _sure(row) -> str:
    return ("and its 95% interval is above zero" if row["aipw_low"] > 0
            else "but its 95% interval includes zero, so the gain is not certain")


def arm_plain_summary(ev: dict, ate: pd.DataFrame, metrics: pd.DataFrame, policy: pd.DataFrame,
                      diag: dict | None) -> list[str]:
    """A few sentences of advice for a non-technical reader: each arm's effect, the best plan over the arms
    (the Bayesian model's, its surrogate's and the plans that need no model), and the best-ranking model per arm."""
    lines = []
    for a in ev["arms"]:
        dim = ate[(ate[ARM] == a) & (ate["method"] == "difference_in_means")].iloc[0]
        verdict = ("clearly raises" if dim["ci_low"] > 0 else "clearly lowers" if dim["ci_high"] < 0
                   else "may not change")
        lines.append(f"Campaign arm '{a}' {verdict} spend against control '{ev['control']}': {fmt(dim['estimate'])} "
                     f"per customer on average (95% interval {fmt(dim['ci_low'])} to {fmt(dim['ci_high'])}; the "
                     f"{ev['n_control'] + ev['n_per_arm'][a]:,} held-out customers of those two arms).")
    cands = policy[policy["model"].isin(["bayesian", "surrogate", "-"])]
    best = cands.sort_values("value_aipw", ascending=False).iloc[0]
    lines.append(f"With each arm's contact cost and margin (table below), the best plan found is to {_plan(best)}: "
                 f"about {fmt(best['value_aipw'], 0)} extra profit per 1,000 customers, {_sure(best)}.")
    single = policy[policy["rule"].str.startswith("everyone: best average arm")]
    if len(single) and single.iloc[0]["rule"] != best["rule"]:
        s = single.iloc[0]
        lines.append(f"Giving every customer the single best arm instead ({s['rule'].split('(')[-1].rstrip(')')}) "
                     f"would earn about {fmt(s['value_aipw'], 0)} per 1,000 customers (95% interval "
                     f"{fmt(s['aipw_low'], 0)} to {fmt(s['aipw_high'], 0)}).")
    for a, m in ev["best_ranking_model"].items():
        q = metrics[(metrics[ARM] == a) & (metrics["model"] == m)]["qini_gain"].iloc[0]
        lines.append(f"The model that best ranks customers by how much arm '{a}' helps them is '{m}' (Qini gain "
                     f"{fmt(q, 1)} per 1,000 customers of that arm and control).")
    if diag is not None:
        lines.append(checks_sentence(diag))
    return lines


def posterior_arm_ate_html(post: dict | None) -> list[str]:
    """The Bayesian ATE of each arm (the counterfactuals' ate.json with several arms: ``arms``)."""
    if not post or "arms" not in post:
        return []
    rows = pd.DataFrame([{ARM: a, "ate_mean": s["ate_mean"], "ate_q05": s["ate_q05"], "ate_q95": s["ate_q95"],
                          "prob_positive": s["prob_positive"]} for a, s in post["arms"].items()])
    return [f"<p>Bayesian posterior (delivered model) over all {post['n_users']:,} customers, each arm vs control "
            "(90% intervals; P(ATE &gt; 0)):</p>" + html_table(rows, 3)]


def build_arm_report(ev: dict, tables: dict, figures: dict, out_html, title: str, diag: dict | None,
                     delivered: dict | None, post: dict | None, primary: list[str]) -> str:
    """The report page of an evaluation of several campaign arms: ``ev`` its evaluation.json, ``tables`` its
    tables (``report.read_tables``), ``figures`` {name: PNG path}, the fit's diagnostics, the delivered fit's and
    its posterior ATE (``report.build_report`` reads them), ``primary`` the models drawn bold and in panels."""
    figs = make_arm_figures(tables, figures, primary)
    ate, metrics, policy = tables["ate"], tables["metrics"], tables["policy"]
    arms, truth = ", ".join(f"'{a}'" for a in ev["arms"]), ev["truth_known"]
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>",
             f"<p>{len(ev['arms'])} campaign arms ({html.escape(arms)}) and control '{html.escape(str(ev['control']))}'"
             f"; {ev['n_holdout']:,} held-out customers ({ev['n_control']:,} control, "
             + ", ".join(f"{n:,} {html.escape(a)}" for a, n in ev["n_per_arm"].items()) + ").</p>"]
    parts.append("<div class='summary'><h2>What to do</h2>"
                 + "".join(f"<p>{html.escape(s)}</p>" for s in arm_plain_summary(ev, ate, metrics, policy, diag))
                 + "".join(delivery_html(diag, delivered, ev["n_holdout"])) + "</div>")
    parts.append("<h2>Average effect of each campaign arm (ATE)</h2><p>Extra spend per customer caused by each arm "
                 "compared with control, estimated four ways on the held-out customers of that arm and control (95% "
                 "intervals), and by the Bayesian model.</p>")
    parts.append(html_table(ate[[ARM, "method", "estimate", "se", "ci_low", "ci_high", "source"]]))
    parts += posterior_arm_ate_html(post)
    parts.append("<h2>Who to target with each arm: Qini curves</h2><p>One panel per arm: the extra spend per 1,000 "
                 "customers if the top x% by the predicted uplift of that arm got it rather than nothing, on the "
                 "held-out customers of that arm and control. Higher above the dashed random line is better.</p>")
    parts.append(embed_png(figs["qini"]))
    parts.append(html_table(metrics[[ARM, *uplift_metric_columns(metrics)]]))
    parts.append("<p class='note'>qini_gain: area between the Qini curve and random targeting (spend per 1,000 "
                 "customers of the arm and control; 95% bootstrap interval). uplift_at_k: observed extra spend per "
                 "customer in the top k%. "
                 + ("sqrt_pehe / ate_error / coverage_90: errors against the simulator's true uplift of the arm, over "
                    "every held-out customer." if truth else "") + "</p>")
    parts.append("<h2>Are the predictions right? Calibration, arm by arm</h2><p>Per arm (rows) and model (columns), "
                 "customers of that arm and control are grouped into ten equal groups by predicted uplift; dots are "
                 "the observed uplift in each group (with 95% interval), and they should lie on the dashed line.</p>"
                 + embed_png(figs["calibration"]))
    parts.append("<h2>Value of choosing an arm for each customer</h2><p>Extra profit per 1,000 customers compared "
                 "with contacting nobody (for the arm given: margin x extra spend - contact cost), estimated on the "
                 "holdout with AIPW and IPW (95% intervals)"
                 + (", and the true value from the simulator" if truth else "")
                 + ". share_&lt;arm&gt;: the share of customers given each arm; spend: contact costs per 1,000.</p>")
    parts.append(html_table(policy, 1))
    economics = pd.DataFrame([{ARM: a, **e} for a, e in ev["policy"]["per_arm"].items()])
    parts.append("<p>Each arm's economics (config <code>policy</code>, <code>policy.arms</code> per arm):</p>"
                 + html_table(economics, 2))
    parts.append("<p class='note'>'everyone: best average arm' gives every customer the arm of highest estimated "
                 "average profit on this very holdout, so its value is optimistic; the model rules choose an arm per "
                 f"customer. The configured rule is '{html.escape(ev['policy']['rule_label'])}'; P(profit &gt; 0) for "
                 f"the Bayesian rule: {html.escape(ev['policy']['prob_profit_method'])}.</p>")
    parts.append("<h2>Spending a contact budget over the arms</h2><p>The multi-arm budget (Qini) curve of the Bayesian "
                 "model: for each budget of contact spend, the customers and arms of highest predicted profit per unit "
                 "of cost (the maq solution) against each arm alone; values by AIPW on the holdout (band: 95% "
                 "interval of the budgeted allocation).</p>" + embed_png(figs["policy_curve"]))
    parts.append(f"<h2>Which customers respond to each arm? Segments ({html.escape(primary[0])})</h2>"
                 + embed_png(figs["segments"]))
    if "surrogate_vs_bayesian" in figs:
        parts.append("<h2>Fast scoring model vs Bayesian model, arm by arm</h2><p>The fast (surrogate) model should "
                     "reproduce the Bayesian model's uplift of every arm: points on the dashed line.</p>"
                     + embed_png(figs["surrogate_vs_bayesian"]))
    parts += diagnostics_html(diag, delivered)
    parts.append("</body></html>")
    text = "\n".join(parts)
    write_text_atomic(text, out_html)
    log.info("wrote report %s (%d kB; %d campaign arms)", out_html, len(text) // 1024, len(ev["arms"]))
    return str(out_html)
