"""The generated tables of README.md and docs/*.md (docs/generate_tables.py): the committed text is what the
committed benchmark outputs (docs/bench/*.json) give, a stale table is named, and the renderers take what the
benchmarks write."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "docs"))
import generate_tables as gt  # noqa: E402

RUN = {"benchmark": "bench_serve", "command": "python bench/bench_serve.py --out docs/bench/bench_serve.json",
       "args": {}, "started_utc": "2026-01-02T03:04:05Z", "seconds": 200.0, "commit": "abc1234",
       "tracked_files_modified": False, "machine": {"cpus": 2, "memory_gib": 23.5},
       "load_average": {"start_1_5_15m": [0.4, 0.5, 0.6], "min_1m": 0.4, "max_1m": 2.9, "samples": 20}}


def serve_output(p99_one=4.0):
    rows = [{"workers": 1, "users_per_request": n, "clients": c, "requests": 100, "errors": 0, "p50_ms": 1.0,
             "p99_ms": p99_one if n == 1 else 9.0, "requests_per_s": 500.0, "users_per_s": 500.0 * n}
            for n in (1, 1000) for c in (1, 8)]
    return {"run": RUN, "model": {"asked": "results/surrogate", "truth_surrogate": False, "hidden": 32,
                                  "source": "a Bayesian model's posterior"}, "rows": rows}


def tiny_root(tmp_path, text):
    (tmp_path / "docs" / "bench").mkdir(parents=True)
    (tmp_path / "README.md").write_text(text)
    return tmp_path


def test_committed_tables_are_current():
    proc = subprocess.run([sys.executable, str(REPO / "docs" / "generate_tables.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_every_generator_has_a_block():
    assert {name: where for name, where in gt.placements(REPO).items() if not where} == {}


def test_check_names_the_stale_table_and_a_rewrite_mends_it(tmp_path, capsys):
    root = tiny_root(tmp_path, "# x\n\n<!-- generated: bench_serve -->\n<!-- /generated -->\n\nafter\n")
    (root / "docs" / "bench" / "bench_serve.json").write_text(json.dumps(serve_output()))
    assert gt.main(["--check"], root=root) == 1
    assert "README.md:3: bench_serve" in capsys.readouterr().err
    assert gt.main([], root=root) == 0
    assert gt.main(["--check"], root=root) == 0
    text = (root / "README.md").read_text()
    assert "| 1 | 1 | 8 | 100 | 1.00 ms | 4.00 ms | 500 | 500 |" in text and text.endswith("\nafter\n")
    assert "p99 ≤ 5 ms for 1-user requests at 8 clients: **met** (4.00 ms)" in text
    assert "`python bench/bench_serve.py --out docs/bench/bench_serve.json` at commit `abc1234`" in text
    assert "load average (1 min) 0.4 at the start, 0.4–2.9 during the run" in text
    # a new output file makes the committed table stale
    (root / "docs" / "bench" / "bench_serve.json").write_text(json.dumps(serve_output(p99_one=6.5)))
    assert gt.main(["--check"], root=root) == 1
    assert "README.md:3: bench_serve" in capsys.readouterr().err
    gt.main([], root=root)
    assert "**not met** (6.50 ms)" in (root / "README.md").read_text()


def test_a_missing_output_names_the_command_that_writes_it(tmp_path):
    root = tiny_root(tmp_path, "<!-- generated: bench_accuracy -->\n<!-- /generated -->\n")
    gt.main([], root=root)
    assert ("_Not generated yet: no committed output. `make bench-accuracy BENCH_OUT=docs/bench` writes "
            "`docs/bench/bench_accuracy.json`, then `make docs` fills this table._") in (root / "README.md").read_text()


@pytest.mark.parametrize("text, message", [
    ("<!-- generated: bench_serve -->\ntext\n", "README.md:1: block 'bench_serve' has no <!-- /generated -->"),
    ("<!-- generated: bench_serve -->\n<!-- generated: bench_eval -->\n<!-- /generated -->\n",
     "README.md:2: block 'bench_eval' starts inside block 'bench_serve' (line 1)"),
    ("text\n<!-- /generated -->\n", "README.md:2: <!-- /generated --> without a start marker"),
])
def test_marker_mistakes_are_named(tmp_path, capsys, text, message):
    root = tiny_root(tmp_path, text)
    assert gt.main(["--check"], root=root) == 2
    assert message in capsys.readouterr().err


def test_a_block_without_its_generator_yet_is_left_as_it_is(tmp_path, capsys):
    text = "<!-- generated: future_table -->\nhand-typed for now\n<!-- /generated -->\n"
    root = tiny_root(tmp_path, text)
    assert gt.main([], root=root) == 0 and gt.main(["--check"], root=root) == 0
    assert (root / "README.md").read_text() == text
    assert "README.md:1: no generator named 'future_table' yet: block left as it is" in capsys.readouterr().err


def test_config_keys_table_lists_every_key_of_the_config():
    text = gt.render("config_keys", gt.Context(REPO))

    def leaves(node, prefix=""):
        for key, value in node.items():
            if isinstance(value, dict) and value:
                yield from leaves(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}"
    keys = list(leaves(yaml.safe_load((REPO / "config" / "config.yaml").read_text())))
    assert "resources" in keys and "model.effect.shape" in keys
    assert [k for k in keys if f"| `{k}` | " not in text] == []
    assert "| `model.effect.shape` | `auto` | linear: treatment x every feature;" in text
    assert "| `model.checks.extend_minutes` | `30` | on_fail stop:" in text
    assert "| `evaluation.top_k` | `[0.1, 0.2, 0.3, 0.5]` |" in text and "| `data.train` | `null` |" in text
    assert "| `model.checks.model_checks` | `true` |" in text and "| `resources` | `{}` |" in text
    assert text.index("`data.train`") < text.index("`model.backend`") < text.index("`hillstrom.seed`")


def test_accuracy_tables_take_extra_columns_and_groups():
    def row(suite, rep, model, pehe, cov=None):
        return {"suite": suite, "size": 3000, "scenario": "linear", "replication": rep, "true_ate": 6.0,
                "model": model, "sqrt_pehe": pehe, "ate_error": 0.1, "coverage_90": cov,
                "ate_covered": None if cov is None else True, "fit_s": 2.0, "new_column": "ignored"}
    rows = [row(s, r, "t_lightgbm", 5.0) for s in ("sim", "semi") for r in (0, 1)]
    rows += [row(s, r, "bayes_default (flexible)", 3.0 + r, 0.9) for s in ("sim", "semi") for r in (0, 1)]
    rows += [row("sim", 0, "surrogate_default", 2.5, 0.9)]
    text = gt.accuracy_text({"args": {"sizes": [3000], "n_test": 2000, "iter": 400}, "rows": rows})
    assert ("3,000 training / 2,000 held-out users per sample, Bayesian models 2 × 400 iterations (default: "
            "config/config.yaml's model).") in text
    assert "**suite sim, size 3000**" in text and "**suite semi, size 3000**" in text
    assert "| linear (6.00) | 5.00 | **3.50** | 2.50 (1) | 2 |" in text  # the surrogate is not the lowest fitted
    assert "0.900 ± 0.000; ATE 2/2; beats every baseline 2/2" in text
    assert "the file records no date, machine or load" in text


def test_eval_and_fit_tables_from_their_output_shapes(tmp_path):
    per_split = [{"split": s, "model": m, "qini_gain": q} for s in (0, 1)
                 for m, q in (("t_lightgbm", 40.0 + s), ("bayesian", 10.0 + 4 * s), ("random", 0.0))]
    evaluation = {"settings": {"splits": 2, "bayes_splits": 2, "bayes_iter": 1500, "surrogate_epochs": 40,
                               "sim_train": 5000, "sim_test": 5000},
                  "hillstrom_per_split": per_split,
                  "simulator": [{"model": "bayesian", "sqrt_pehe": 2.4, "ate_error": -0.34},
                                {"model": "random", "sqrt_pehe": 10.9, "ate_error": 0.1}]}
    fit = {"seconds": 277.0, "fit_seconds": 338.0, "n_fitted": 44800, "ate": 6.37, "ate_q05": 5.7, "ate_q95": 7.05,
           "true_ate": 6.3, "sqrt_pehe": 1.19, "diagnostics_passed": True, "problems": [],
           "parts": {"hurdle": {"rhat_max": [1.004], "ess_bulk_min": [400], "ess_tail_min": [512]}}}
    scale = {"fit_users": 64000, "fits": {"default": {**fit, "settings": {}},
                                          "meanfield": {**fit, "settings": {"model": {"inference": {"algorithm": "meanfield"}}},
                                                        "diagnostics_passed": False, "parts": {"hurdle": {"pareto_k": [3.2]}}}}}
    root = tiny_root(tmp_path, "<!-- generated: bench_eval -->\n<!-- /generated -->\n"
                               "<!-- generated: bench_scale_fits -->\n<!-- /generated -->\n")
    (root / "docs" / "bench" / "bench_eval.json").write_text(json.dumps(evaluation))
    (root / "docs" / "bench" / "bench_scale.json").write_text(json.dumps(scale))
    gt.main([], root=root)
    text = (root / "README.md").read_text()
    assert "| t_lightgbm | 40.5 ± 0.7 (± 0.5) | 1.00 (2/2) | 40.5 (± 0.5) |" in text
    assert "| Bayesian hurdle (rstanarm) | 12.0 ± 2.8 (± 2.0) | 1.00 (2/2) | 12.0 (± 2.0) |" in text
    assert "| random | 0.0 ± 0.0 (± 0.0) | – | – |" in text
    assert "| Bayesian hurdle (rstanarm) | 2.40 | −0.34 |" in text
    assert "| default | 277 s | 338 s | 44,800 | 6.37 (5.70–7.05) | 6.30 | 1.19 | passed: R-hat ≤ 1.004, ESS ≥ 400 |" in text
    assert '`{"model": {"inference": {"algorithm": "meanfield"}}}`' in text and "failed: Pareto k 3.2" in text
    assert "Goal for the default model (≤ 10 min end to end): **met** (4 min 37 s)." in text
    (root / "docs" / "bench" / "bench_scale.json").write_text(json.dumps({**scale, "fit_users": 2000}))
    gt.main([], root=root)
    assert "Goal for the default model" not in (root / "README.md").read_text()  # the goal is set at 64,000 users
