"""Issue 6: chains and shards as separate jobs give the same content; failed shards resume cleanly."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from bayeslift.data import DataValidationError
from bayeslift.scoring import count_data_rows, score_file, shard_chunks
from bayeslift.simulate import simulate_new_users

from conftest import PROCESS_ENV, REPO, VENV_BIN, snakemake

pytestmark = pytest.mark.e2e

TEST_CONFIG = str(REPO / "config" / "test.yaml")
# Small chunks so that 3 shards each get several chunks of the ~800 train + holdout users (and the 300
# scored users, in chunks of 97 from the test config).
GATHERED = ["counterfactuals/surrogate_train_data.csv", "counterfactuals/surrogate_labels.csv",
            "counterfactuals/uplift_summary.csv", "counterfactuals/ate.json", "model/diagnostics_parameters.csv",
            "uplift_predictions.csv"]


def _config(tmp: Path, name: str, shards: int) -> str:
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"counterfactuals": {"chunk_size": 100}, "shards": shards}))
    return str(path)


@pytest.fixture(scope="module")
def unsharded(tiny_pipeline, tmp_path_factory) -> Path:
    """The tiny pipeline (one shard), rerun from its chain fits with small counterfactual chunks."""
    work = tmp_path_factory.mktemp("unsharded") / "run"
    shutil.copytree(tiny_pipeline, work, symlinks=True)
    snakemake(work, "--configfile", TEST_CONFIG, _config(work.parent, "one", 1))
    return work


@pytest.fixture(scope="module")
def sharded(tiny_pipeline, tmp_path_factory) -> Path:
    """The tiny pipeline rerun from its chain fits with 3 shards: counterfactuals and scoring in 3 jobs each.
    (The chain jobs themselves: test_chains_are_fitted_as_jobs_and_combined.)"""
    work = tmp_path_factory.mktemp("sharded") / "run"
    shutil.copytree(tiny_pipeline, work, symlinks=True)
    snakemake(work, "--configfile", TEST_CONFIG, _config(work.parent, "three", 3))
    return work


def test_sharded_run_equals_unsharded_run(unsharded, sharded):
    for rel in GATHERED:
        a, b = (unsharded / "results" / rel).read_bytes(), (sharded / "results" / rel).read_bytes()
        assert a == b, rel
    assert len(list((sharded / "results/counterfactuals/shards").glob("shard_*.rds"))) == 3
    parts = sorted((sharded / "results/scoring/shards").glob("uplift_predictions_*.csv"))
    assert len(parts) == 3
    assert all(len(pd.read_csv(p)) > 0 for p in parts)
    assert len(pd.read_csv(sharded / "results/uplift_predictions.csv")) == 300


def test_chains_are_fitted_as_jobs_and_combined(tiny_pipeline):
    res = tiny_pipeline / "results" / "model"
    cfg = yaml.safe_load(Path(TEST_CONFIG).read_text())["model"]["inference"]
    chains = cfg["chains"]
    assert sorted(p.name for p in (res / "chains").glob("chain_*.rds")) == [f"chain_{c}.rds" for c in range(1, chains + 1)]
    for c in range(1, chains + 1):
        assert (tiny_pipeline / "logs" / f"bayesian_chain_{c}.log").stat().st_size > 0
    diagnostics = json.loads((res / "diagnostics.json").read_text())
    assert diagnostics["chains"] == chains
    # A fit short of the checks is refit longer in rule bayesian_model (another machine's draws may need it):
    # then the combined draws are the last attempt's, not the chain jobs'.
    iters = [a["iter"] for a in (diagnostics.get("extension") or {}).get("attempts") or [{"iter": cfg["iter"]}]]
    extended = len(iters) > 1
    per_chain = iters[-1] // 2
    for part in diagnostics["parts"].values():
        assert part["n_draws"] == chains * per_chain
        assert 0.99 < part["rhat_max"] < 1.05  # R-hat needs >= 2 chains: computed across the chain jobs
    script = f"""
      library(bayeslift)
      fit <- readRDS("{res}/fit.rds")
      chains <- lapply(Sys.glob("{res}/chains/chain_*.rds"), function(p) readRDS(p)$model)
      part <- names(bayeslift:::model_stanfits(fit))[1]
      m <- as.matrix(bayeslift:::model_stanfits(fit)[[part]])
      stacked <- do.call(rbind, lapply(chains, function(f) as.matrix(bayeslift:::model_stanfits(f)[[part]])))
      spec <- fit$spec
      users <- data.table::fread("{tiny_pipeline}/results/prepared/holdout.csv", colClasses = setNames(rep("character", length(spec$categorical)), spec$categorical))
      e <- expected_outcome(fit, as.data.frame(users)[1:7, ])
      n_chains <- vapply(bayeslift:::model_stanfits(fit), function(sf) sf@sim$chains, numeric(1))
      cat(nrow(m), min(n_chains), max(n_chains), isTRUE(all.equal(unname(m), unname(stacked))), dim(e), "\\n")
    """
    proc = subprocess.run(["Rscript", "-e", script], env=PROCESS_ENV, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    n_draws, n_min, n_max, same, e_draws, e_users = proc.stdout.split()
    assert int(n_draws) == chains * per_chain and int(n_min) == int(n_max) == chains
    assert same == ("FALSE" if extended else "TRUE")
    assert (int(e_draws), int(e_users)) == (chains * per_chain, 7)


def test_variational_fit_on_a_subsample_is_one_job_and_exports_every_user(tiny_pipeline, tmp_path):
    """model.inference.algorithm: meanfield and model.inference.fit_subsample through the rules (ATE recovery: test_model_options)."""
    work = tmp_path / "run"
    shutil.copytree(tiny_pipeline, work, symlinks=True)
    shutil.rmtree(work / "results" / "model" / "chains")
    cfg = tmp_path / "vb.yaml"
    cfg.write_text(yaml.safe_dump({"model": {"inference": {"algorithm": "meanfield", "fit_subsample": 300},
                                             "checks": {"on_fail": "warn"}}}))
    snakemake(work, "results/counterfactuals/ate.json", "--configfile", TEST_CONFIG, str(cfg))
    res = work / "results"
    assert [p.name for p in (res / "model" / "chains").glob("chain_*.rds")] == ["chain_1.rds"]
    assert "stratified subsample of 300 of" in (work / "logs" / "bayesian_chain_1.log").read_text()
    diagnostics = json.loads((res / "model" / "diagnostics.json").read_text())
    assert (diagnostics["algorithm"], diagnostics["chains"], diagnostics["n_users"]) == ("meanfield", 1, 300)
    assert set(diagnostics["thresholds"]) == {"pareto_k_max"}
    for part in diagnostics["parts"].values():
        assert part["n_draws"] == 1000 and part["pareto_k"] > 0
    prepared = sum(len(pd.read_csv(res / "prepared" / f"{s}.csv")) for s in ("train", "holdout"))
    assert len(pd.read_csv(res / "counterfactuals" / "uplift_summary.csv")) == prepared
    assert json.loads((res / "counterfactuals" / "ate.json").read_text())["n_draws"] == 1000


def _jobs_run(proc: subprocess.CompletedProcess) -> dict[str, int]:
    """Job counts from snakemake's 'Job stats' table."""
    text = proc.stdout + proc.stderr
    table = text[text.index("Job stats:"):].splitlines()[3:]
    jobs = {}
    for line in table:
        fields = line.split()
        if len(fields) != 2 or not fields[1].isdigit() or fields[0] == "total":
            break
        jobs[fields[0]] = int(fields[1])
    return jobs


def test_failed_shard_leaves_gathered_output_absent_and_rerun_resumes(sharded, unsharded, tmp_path):
    work = tmp_path / "run"
    shutil.copytree(sharded, work, symlinks=True)
    cfg = _config(tmp_path, "three", 3)
    res = work / "results"
    # Snakemake does not rebuild missing intermediates of an existing output, so drop the gathered file too:
    # the state after a run in which shards 2 and 3 never finished.
    for rel in ["scoring/shards/uplift_predictions_2.csv", "scoring/shards/uplift_predictions_3.csv",
                "uplift_predictions.csv"]:
        (res / rel).unlink()
    env = {**PROCESS_ENV, "BAYESLIFT_FAIL_SHARD": "2"}

    def cmd(target):  # the target goes first: --configfile takes every argument after it
        return [str(VENV_BIN / "snakemake"), str(target), "-s", str(REPO / "Snakefile"), "--directory", str(work),
                "--cores", "2", "--keep-going", "--configfile", TEST_CONFIG, cfg]
    # Scoring: shard 2 fails, shard 3 still runs (--keep-going); no gathered file is written.
    failed = subprocess.run(cmd("results/uplift_predictions.csv"), cwd=work, env=env, capture_output=True, text=True)
    assert failed.returncode != 0
    assert "batch_uplift_shard" in failed.stderr + failed.stdout
    assert "shard 2 fails on purpose" in (work / "logs" / "batch_uplift_shard_2.log").read_text()
    assert not (res / "scoring/shards/uplift_predictions_2.csv").exists()
    assert (res / "scoring/shards/uplift_predictions_3.csv").exists()
    assert not (res / "uplift_predictions.csv").exists()
    # Rerun (fault fixed): only the missing shards and what depends on them run.
    resumed = subprocess.run(cmd("results/uplift_predictions.csv"), cwd=work, env=PROCESS_ENV,
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _jobs_run(resumed) == {"batch_uplift": 1, "batch_uplift_shard": 1}
    assert (res / "uplift_predictions.csv").read_bytes() == (unsharded / "results/uplift_predictions.csv").read_bytes()
    # Counterfactuals: the same for an R shard.
    (res / "counterfactuals/shards/shard_2.rds").unlink()
    ate = res / "counterfactuals/ate.json"
    ate.unlink()
    failed = subprocess.run(cmd("results/counterfactuals/ate.json"), cwd=work, env=env, capture_output=True, text=True)
    assert failed.returncode != 0 and not (res / "counterfactuals/shards/shard_2.rds").exists() and not ate.exists()
    assert "shard 2 fails on purpose" in (work / "logs" / "counterfactuals_shard_2.log").read_text()
    resumed = subprocess.run(cmd("results/counterfactuals/ate.json"), cwd=work, env=PROCESS_ENV, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _jobs_run(resumed) == {"counterfactuals": 1, "counterfactuals_shard": 1}
    for rel in GATHERED[:4]:
        assert (res / rel).read_bytes() == (unsharded / "results" / rel).read_bytes(), rel


def test_sharded_scoring_of_a_large_file_names_the_line_and_writes_nothing(truth_surrogate_dir, tmp_path):
    users, _ = simulate_new_users(30_000, seed=9)
    users["recency"] = users["recency"].astype(object)
    users.loc[25_617, "recency"] = "soon"  # line 25,619: header + 0-based index
    src = tmp_path / "users.csv"
    users.to_csv(src, index=False)
    assert count_data_rows(src) == 30_000
    ranges = [shard_chunks(30_000, 3_500, s, 3) for s in (1, 2, 3)]
    assert ranges == [(0, 3), (3, 6), (6, None)]
    outs = [tmp_path / f"pred_{s}.csv" for s in (1, 2, 3)]
    for chunks, out in zip(ranges[:2], outs):
        score_file(truth_surrogate_dir, src, out, chunk_size=3_500, progress=False, chunks=chunks)
    with pytest.raises(DataValidationError, match=r"column 'recency' must be numeric; line 25619 hold 'soon'"):
        score_file(truth_surrogate_dir, src, outs[2], chunk_size=3_500, progress=False, chunks=ranges[2])
    assert not outs[2].exists() and not list(tmp_path.glob(".pred_3.csv*"))
    with pytest.raises(DataValidationError, match=r"line 25619 hold 'soon'"):
        score_file(truth_surrogate_dir, src, tmp_path / "all.csv", chunk_size=3_500, progress=False)
    assert not (tmp_path / "all.csv").exists()
    # Without the bad row, the shards concatenated are the unsharded output, byte for byte.
    users.loc[25_617, "recency"] = 3.0
    users.to_csv(src, index=False)
    score_file(truth_surrogate_dir, src, tmp_path / "all.csv", chunk_size=3_500, progress=False)
    parts = []
    for s, (chunks, out) in enumerate(zip(ranges, outs)):
        score_file(truth_surrogate_dir, src, out, chunk_size=3_500, progress=False, chunks=chunks)
        lines = out.read_text().splitlines(keepends=True)
        parts.extend(lines if s == 0 else lines[1:])
    assert "".join(parts) == (tmp_path / "all.csv").read_text()
    # More shards than chunks: the empty ones hold the header only.
    empty = tmp_path / "empty.csv"
    score_file(truth_surrogate_dir, src, empty, chunk_size=3_500, progress=False, chunks=shard_chunks(30_000, 3_500, 1, 20))
    assert empty.read_text().splitlines() == [(tmp_path / "all.csv").read_text().splitlines()[0]]
