"""The README's headline table: one line per benchmark figure that has a committed output file, judged on the
goals the speed tables state."""
from __future__ import annotations

from typing import Callable

from table_format import count, met, millis, num, seconds, short_provenance, table, times
from table_registry import BENCH_COMMANDS, Context, generator
from tables_speed import (FIT_GOAL_S, FIT_GOAL_USERS, SERVE_P99_GOAL_MS, SERVE_USERS_GOAL, SPEEDUP_GOAL,
                          score_goal_met, scored_runs, serve_goal_rows)

# ------------------------------------------------------------------------------------------------ headlines
def pipeline_headlines(data: dict) -> list[list[str]]:
    s = data.get("settings") or {}
    return [[f"surrogate vs R `posterior_epred` rows/s, {r['backend']}, {count(s.get('n'))} users, "
             f"2 × {count(s.get('iter'))} iterations (`make bench`)",
             f"**{times(r['speedup'])}** (goal ≥ 1,000×: {met(r['speedup'] >= SPEEDUP_GOAL)}), fidelity R² "
             f"{num(r['fidelity_r2_holdout'], 4)}; fit {seconds(r['fit_s'])}"] for r in data["rows"]]


def serve_headlines(data: dict) -> list[list[str]]:
    one, best = serve_goal_rows(data["rows"])
    if not (one and best):
        return []
    return [["HTTP, one worker: 1 user at 8 clients; 1,000-user requests (`make bench-serve`)",
             f"p99 {millis(one['p99_ms'])} (goal ≤ 5 ms: {met(one['p99_ms'] <= SERVE_P99_GOAL_MS)}); "
             f"{count(best['users_per_s'])} users/s (goal ≥ 100,000: {met(best['users_per_s'] >= SERVE_USERS_GOAL)})"]]


def scale_headlines(data: dict) -> list[list[str]]:
    rows = []
    fit = (data.get("fits") or {}).get("default")
    if fit:
        goal = f" (goal ≤ 10 min: {met(fit['seconds'] <= FIT_GOAL_S)})" if (data.get("fit_users") or 0) >= FIT_GOAL_USERS else ""
        rows.append([f"Bayesian fit, {count(data.get('fit_users'))} users end to end, default model (`make bench-scale`)",
                     f"{seconds(fit['seconds'])}{goal}; ATE "
                     f"{num(fit['ate'])} (90% {num(fit['ate_q05'])}–{num(fit['ate_q95'])}) vs truth "
                     f"{num(fit['true_ate'])}, sqrt-PEHE {num(fit['sqrt_pehe'])}"])
    scored = scored_runs(data)
    if scored:
        goal = "".join(f" (goal 10M ≤ 60 s, ≤ 2 GiB: {met(score_goal_met(v))})" for n, v in scored if n == 10_000_000)
        rows.append([" / ".join(count(n) for n, _ in scored) + " users CSV → CSV (`make bench-scale`)",
                     " / ".join(seconds(v["seconds"]) for _, v in scored) + ", "
                     + " / ".join(count(v["peak_rss_mib"]) for _, v in scored) + " MiB peak" + goal])
    if "pipeline_shards_1_s" in data:
        rows.append(["tiny pipeline, unsharded vs `shards: 3`, 2 cores",
                     f"{seconds(data['pipeline_shards_1_s'])} vs {seconds(data.get('pipeline_shards_3_s'))}"])
    return rows


def eval_headlines(data: dict) -> list[list[str]]:
    b = {r["model"]: r for r in data.get("hillstrom") or []}.get("bayesian")
    if not b:
        return []
    return [[f"Hillstrom spend Qini gain / 1,000, {b['n_splits']} splits (`make bench-eval`)",
             f"Bayesian {num(b['qini_gain_mean'], 1)} ± {num(b['qini_gain_sd'], 1)}, win rate vs random "
             f"{num(b.get('win_rate_vs_random'), 2)}"]]


#: benchmark -> its README headline rows (what, figure); the accuracy benchmark's tables stand in the README whole
HEADLINES: dict[str, Callable[[dict], list[list[str]]] | None] = {
    "bench_pipeline": pipeline_headlines, "bench_serve": serve_headlines, "bench_scale": scale_headlines,
    "bench_eval": eval_headlines, "bench_accuracy": None,
}


@generator("bench_headlines", "README: one line per benchmark figure that has a committed output file")
def headlines(ctx: Context) -> str:
    rows, missing = [], []
    for benchmark, lines in HEADLINES.items():
        data = ctx.bench_or_none(benchmark)
        if data is None:
            missing.append(benchmark)
        elif lines:
            rows += [[*line, short_provenance(data)] for line in lines(data)]
    out = []
    if rows:
        out.append(table(["what", "figure", "run (date, load average)"], rows))
    if missing:
        out.append("No committed output yet for " + ", ".join(f"`{m}` (`{BENCH_COMMANDS[m]}`)" for m in missing)
                   + ": their tables say so, and earlier figures are labelled as such below.")
    out.append("Each figure comes from `docs/bench/<benchmark>.json`; the tables in docs/benchmarks.md give the "
               "command, commit and machine of each run.")
    return "\n\n".join(out)
