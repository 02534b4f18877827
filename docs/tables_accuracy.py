"""Accuracy tables: the Hillstrom Qini gain and the simulator's sqrt-PEHE per model (bench_eval), Hillstrom's three
arms' profit per targeting rule (bench_eval_arms), and sqrt-PEHE, interval coverage and fit time per simulator
scenario and model (bench_accuracy)."""
from __future__ import annotations

import math
from collections import Counter
import re
import statistics

from table_format import count, num, provenance, table
from table_registry import Context, generator

# ------------------------------------------------------------------------------------------------ bench_eval
def _mean_sd_se(values: list[float]) -> tuple[float, float, float]:
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    return mean, sd, sd / math.sqrt(len(values)) if len(values) > 1 else float("nan")


EVAL_LABELS = {"bayesian": "Bayesian hurdle (rstanarm)", "surrogate": "surrogate of the Bayesian model"}


@generator("bench_eval", "Hillstrom Qini gain over paired splits and the simulator's sqrt-PEHE, per model")
def eval_tables(ctx: Context) -> str:
    data = ctx.bench("bench_eval")
    s = data.get("settings") or {}
    parts = [provenance("bench_eval", data)]
    per_split = data.get("hillstrom_per_split") or []
    if per_split:
        by_model: dict[str, dict[int, float]] = {}
        for r in per_split:
            by_model.setdefault(r["model"], {})[r["split"]] = r["qini_gain"]
        rand = by_model.get("random", {})
        rows = []
        for model, q in by_model.items():
            mean, sd, se = _mean_sd_se(list(q.values()))
            cell = [EVAL_LABELS.get(model, model), f"{num(mean, 1)} ± {num(sd, 1)} (± {num(se, 1)})"]
            paired = [q[k] - rand[k] for k in q if k in rand]
            if model != "random" and paired:
                dm, _, dse = _mean_sd_se(paired)
                wins = sum(d > 0 for d in paired)
                cell += [f"{num(wins / len(paired), 2)} ({wins}/{len(paired)})", f"{num(dm, 1)} (± {num(dse, 1)})"]
            else:
                cell += ["–", "–"]
            rows.append((mean if model != "random" else -math.inf, cell))
        rows.sort(key=lambda r: -r[0])
        n_splits = max(len(q) for q in by_model.values())
        parts += [f"Hillstrom spend, any e-mail vs none, {n_splits} paired random 70/30 splits"
                  + (f" of a {count(s['sample_n'])}-user sample" if s.get("sample_n") else " of all customers")
                  + f"; Bayesian model and surrogate on {min(s.get('bayes_splits', 0), n_splits)} of them "
                  f"(2 × {count(s.get('bayes_iter'))} iterations, surrogate {s.get('surrogate_epochs')} epochs). "
                  "Qini gain per 1,000 users on the 30% (a random ranking's expectation is 0):",
                  table(["model", "Qini gain / 1,000, mean ± sd (± se)", "win rate vs random",
                         "minus random, paired (± se)"], [c for _, c in rows])]
    sim = data.get("simulator") or []
    if sim:
        has_cov = any(r.get("coverage_90") is not None for r in sim)
        body = [[EVAL_LABELS.get(r["model"], r["model"]), num(r["sqrt_pehe"]), num(r.get("ate_error"))]
                + ([num(r.get("coverage_90"), 3)] if has_cov else [])
                for r in sorted(sim, key=lambda r: r["sqrt_pehe"])]
        parts += [f"Simulator ({count(s.get('sim_train'))} training / {count(s.get('sim_test'))} fresh users, "
                  "`linear` scenario), lower is better:",
                  table(["model", "sqrt-PEHE", "ATE error"] + (["90% coverage"] if has_cov else []), body)]
    return "\n\n".join(parts)


# ------------------------------------------------------------------------------------------------ bench_eval_arms
ARM_RULE_LABELS = {"bayeslift": "bayeslift: each customer's best arm (posterior means)",
                   "best_average_arm": "everyone: the best average arm (chosen on the 70%)",
                   "t_learner_causalml": "causalml T-learner (LightGBM): best arm",
                   "x_learner_causalml": "causalml X-learner (LightGBM): best arm", "nobody": "nobody"}


@generator("bench_eval_arms", "Hillstrom three arms: AIPW profit per 1,000 customers of each targeting rule")
def eval_arms_table(ctx: Context) -> str:
    data = ctx.bench("bench_eval_arms")
    s = data["settings"]
    by_rule: dict[str, dict[int, dict]] = {}
    for r in data["per_split"]:
        by_rule.setdefault(r["rule"], {})[r["split"]] = r
    ref = {k: r["value_per_1000"] for k, r in by_rule["best_average_arm"].items()}
    shares = [k for k in data["per_split"][0] if k.startswith("share_")]
    rows = []
    for rule, splits in by_rule.items():
        values = [r["value_per_1000"] for r in splits.values()]
        mean, sd, se = _mean_sd_se(values)
        paired = [r["value_per_1000"] - ref[k] for k, r in splits.items() if k in ref]
        dm, _, dse = _mean_sd_se(paired)
        wins = sum(d > 0 for d in paired)
        label = ARM_RULE_LABELS.get(rule, rule.replace("all_", "everyone: ") if rule.startswith("all_") else rule)
        cell = [label, f"{num(mean, 1)} ± {num(sd, 1)} (± {num(se, 1)})",
                "–" if rule == "best_average_arm" else f"{num(dm, 1)} (± {num(dse, 1)})",
                "–" if rule == "best_average_arm" else f"{wins}/{len(paired)}",
                " / ".join(num(statistics.fmean(r[c] for r in splits.values()), 2) for c in shares)]
        rows.append((mean, cell))
    rows.sort(key=lambda r: -r[0])
    n_splits = max(len(v) for v in by_rule.values())
    levels = " / ".join(c[len("share_"):] for c in shares)
    policy = s.get("policy") or {}
    text = (f"Hillstrom's three arms, {n_splits} paired random 70/30 splits stratified by arm; every model fitted on "
            f"the same {count(s.get('n_fitted'))} users of each 70% (stratified by arm and buying), bayeslift's "
            f"default model at 2 × {count(s.get('bayes_iter'))} iterations. Incremental profit per 1,000 customers "
            f"on the 30% by AIPW (outcome models per arm cross-fitted on the 30%), margin {policy.get('margin')}, "
            f"{policy.get('cost_per_contact')} per e-mail:")
    return "\n\n".join([provenance("bench_eval_arms", data), text,
                         table(["rule", "profit / 1,000, mean ± sd (± se)", "minus best average arm, paired (± se)",
                                "splits above it", f"share given {levels}"], [c for _, c in rows])])


# ------------------------------------------------------------------------------------------------ bench_accuracy
#: columns of bench_accuracy.json's rows that split the results into separate tables when present
ACCURACY_GROUPS = ("suite", "size")
ACCURACY_LABELS = {"t_lightgbm": "T-LGBM", "s_lightgbm": "S-LGBM", "linear_interaction": "linear",
                   "x_learner_causalml": "causalml X", "dr_learner_causalml": "causalml DR",
                   "bcf_stochtree": "BCF (stochtree)", "bcf_hurdle_stochtree": "BCF two-part (stochtree)"}


def _model_kind(model: str) -> str:
    return "surrogate" if model.startswith("surrogate_") else "bayes" if model.startswith("bayes_") else "baseline"


def _model_label(model: str) -> str:
    if model in ACCURACY_LABELS:
        return ACCURACY_LABELS[model]
    if model.startswith("bayes_"):
        return model[len("bayes_"):]
    if model.startswith("surrogate_"):
        return f"{model[len('surrogate_'):]}'s surrogate"
    return model


def _finite(values) -> list[float]:
    return [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]


def accuracy_group_tables(rows: list[dict]) -> str:
    """sqrt-PEHE per scenario and model (lowest fitted model in bold), then coverage of every model with
    intervals; one sample per (scenario, replication). Models named ``bayes_*`` are the Bayesian hurdle model's
    variants, ``surrogate_*`` their surrogates, any other name a rival ("baseline")."""
    for r in rows:
        r["model"] = re.sub(r" \(.*\)$", "", r["model"])  # an auto pick's name in brackets
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    models.sort(key=lambda m: {"baseline": 0, "bayes": 1, "surrogate": 2}[_model_kind(m)])
    cells: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        cells.setdefault((r["scenario"], r["model"]), []).append(r)

    def mean_of(sc, m, key):
        vals = _finite(r.get(key) for r in cells.get((sc, m), []))
        return (statistics.fmean(vals), len(vals)) if vals else (None, 0)

    pehe_rows = []
    for sc in scenarios:
        samples = len({r.get("replication") for r in rows if r["scenario"] == sc})
        true_ate = statistics.fmean(_finite(r.get("true_ate") for r in rows if r["scenario"] == sc) or [float("nan")])
        means = {m: mean_of(sc, m, "sqrt_pehe") for m in models}
        fitted = [v for m, (v, _) in means.items() if v is not None and _model_kind(m) != "surrogate"]
        best = min(fitted) if fitted else None
        row = [f"{sc} ({num(true_ate)})"]
        for m in models:
            v, n = means[m]
            text = num(v) if v is not None else "–"
            if v is not None and v == best:
                text = f"**{text}**"
            if v is not None and n < samples:
                text += f" ({n})"
            row.append(text)
        pehe_rows.append(row + [str(samples)])
    fit_row = ["fit, median (s)"]
    for m in models:
        fit = _finite(r.get("fit_s") for r in rows if r["model"] == m)
        fit_row.append(num(statistics.median(fit), 2) if fit else "–")
    out = ["Mean sqrt-PEHE on the held-out users over the samples (lower is better; lowest fitted model in bold, "
           "a count in brackets where a model has fewer samples):",
           table(["scenario (mean true ATE)", *[_model_label(m) for m in models], "samples"], pehe_rows + [fit_row + [""]])]

    covered = [m for m in models if any(r.get("coverage_90") is not None for r in rows if r["model"] == m)]
    if covered:
        baselines = [m for m in models if _model_kind(m) == "baseline"]
        cov_rows = []
        for sc in scenarios:
            row = [sc]
            for m in covered:
                cov = _finite(r.get("coverage_90") for r in cells.get((sc, m), []))
                if not cov:
                    row.append("–")
                    continue
                text = num(statistics.fmean(cov), 3)
                if len(cov) > 1:
                    text += f" ± {num(statistics.stdev(cov) / math.sqrt(len(cov)), 3)}"
                ate = [r.get("ate_covered") for r in cells[(sc, m)] if r.get("ate_covered") is not None]
                if ate:
                    text += f"; ATE {sum(bool(a) for a in ate)}/{len(ate)}"
                if _model_kind(m) == "bayes" and baselines:
                    wins = total = 0
                    for r in cells[(sc, m)]:
                        rivals = _finite(b.get("sqrt_pehe") for b in rows if b["scenario"] == sc
                                         and b.get("replication") == r.get("replication") and b["model"] in baselines)
                        if rivals and r.get("sqrt_pehe") is not None:
                            total += 1
                            wins += r["sqrt_pehe"] < min(rivals)
                    text += f"; beats every baseline {wins}/{total}"
                row.append(text)
            cov_rows.append(row)
        out += ["Coverage of the 90% per-user intervals, mean ± se over the samples (goal 85–97%); in how many "
                "samples the 90% ATE interval covered the true ATE; for a Bayesian model, in how many its "
                "sqrt-PEHE was below every baseline's:",
                table(["scenario", *[_model_label(m) for m in covered]], cov_rows)]
    return "\n\n".join(out)


@generator("bench_accuracy", "sqrt-PEHE, coverage and fit time per simulator scenario and model")
def accuracy_tables(ctx: Context) -> str:
    data = ctx.bench("bench_accuracy")
    return accuracy_text(data)


@generator("bench_accuracy_shape", "shape auto beside shape linear, the default (backend stan), every scenario, 3,000 users")
def accuracy_shape_tables(ctx: Context) -> str:
    return shape_text("bench_accuracy_shape", ctx.bench("bench_accuracy_shape"))


def shape_text(name: str, data: dict) -> str:
    """``accuracy_text``, then which candidate PSIS-LOO kept in each sample (the rows' "model (candidate)")."""
    kept: dict[tuple, Counter] = {}
    for r in data.get("rows") or []:
        model, _, candidate = str(r.get("model", "")).partition(" (")
        if candidate:
            kept.setdefault((r.get("suite"), r.get("size"), r.get("scenario"), model), Counter())[candidate.rstrip(")")] += 1
    rows = [[str(suite), count(size), str(scenario), model.removeprefix("bayes_"),
             ", ".join(f"{c} {n}" for c, n in sorted(counts.items()))]
            for (suite, size, scenario, model), counts in kept.items()]
    return "\n\n".join([accuracy_text(data, name), "Candidate kept by PSIS-LOO, samples:",
                         table(["suite", "users", "scenario", "model", "kept"], rows)])


def default_model_text(data: dict) -> str:
    """What the run's "default" variant was: config.yaml's model at the run's commit, with its back-end and shape
    where the file records the sections (bench_accuracy ``models``)."""
    default = (data.get("models") or {}).get("default")
    commit = (data.get("run") or {}).get("commit")
    text = "config/config.yaml's model" + (f" at commit {commit}" if commit else "")
    if default:
        text += f": backend {default.get('backend')}, shape {(default.get('effect') or {}).get('shape')}"
    elif commit:  # files without the record were all written before shape auto became the default
        text += ": shape linear, the default before shape auto"
    return text


def accuracy_text(data: dict, name: str = "bench_accuracy") -> str:
    rows = [dict(r) for r in data.get("rows") or []]
    a = (data.get("run") or {}).get("args") or data.get("args") or {}
    train = a.get("sizes") or a.get("n_train")
    train = " / ".join(count(n) for n in train) if isinstance(train, list) else count(train) if train else None
    bayes = any(str(r.get("model", "")).startswith("bayes_") for r in rows)
    setting = (f"{train + ' training / ' if train else ''}{count(a.get('n_test'))} held-out users per sample"
               + (f", Bayesian models 2 × {count(a.get('iter'))} iterations (default: {default_model_text(data)})."
                  if bayes else ".") if a.get("n_test") else "")
    parts = [provenance(name, data), setting]
    keys = [k for k in ACCURACY_GROUPS if any(k in r for r in rows)]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r.get(k) for k in keys), []).append(r)
    for group, members in groups.items():
        if keys:
            parts.append("**" + ", ".join(f"{k} {v}" for k, v in zip(keys, group)) + "**")
        parts.append(accuracy_group_tables(members))
    return "\n\n".join(p for p in parts if p)
