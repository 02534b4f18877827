"""The accuracy benchmark's summary over replications (bench/bench_accuracy.py): which model was best per
sample and how often one sample's coverage lands in the goal's band."""
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import bench_accuracy  # noqa: E402


def rows(scenario, replication, values):
    """One scenario-sample: model -> (sqrt_pehe, coverage_90 or None)."""
    return [{"scenario": scenario, "replication": replication, "model": m, "sqrt_pehe": p, "ate_error": 0.5,
             "coverage_90": c, "ate_covered": c is not None or None, "fit_s": 1.0} for m, (p, c) in values.items()]


def test_summary_counts_best_samples_and_coverage_in_band():
    table = pd.DataFrame(
        rows("linear", 0, {"linear_interaction": (5.0, None), "bayes_horseshoe": (3.0, 1.00),
                           "surrogate_horseshoe": (2.9, 1.00)})
        + rows("linear", 1, {"linear_interaction": (4.0, None), "bayes_horseshoe": (4.5, 0.90),
                             "surrogate_horseshoe": (4.4, 0.90)})
        + rows("linear", 2, {"linear_interaction": (6.0, None), "bayes_horseshoe (flexible)": (2.0, 0.60),
                             "surrogate_horseshoe": (2.1, 0.60)}))
    out = bench_accuracy.summarize(table).set_index(["scenario", "model"])
    hs = out.loc[("linear", "bayes_horseshoe")]  # the LOO pick's name in brackets is dropped
    # best in samples 0 and 2 (a surrogate beating its model does not count), in band only in sample 1
    assert hs["best_share"] == pytest.approx(2 / 3)
    assert hs["coverage_in_band"] == pytest.approx(1 / 3)
    assert hs["coverage_90"] == pytest.approx(np.mean([1.0, 0.9, 0.6]))
    assert hs["coverage_median"] == pytest.approx(0.9)
    assert out.loc[("linear", "linear_interaction"), "best_share"] == pytest.approx(1 / 3)
    assert np.isnan(out.loc[("linear", "linear_interaction"), "coverage_in_band"])
    assert np.isnan(out.loc[("linear", "surrogate_horseshoe"), "best_share"])
    assert hs["replications"] == 3


SNAKEMAKE_LOG = """Select jobs to execute...
Execute 2 jobs...

[Wed Dec  2 18:14:39 2026]
localrule bayesian_chain:
    input: results/prepared/train.csv
    output: results/delivered/model/chains/chain_1.rds
    log: logs/delivered/bayesian_chain_1.log
    jobid: 14
    reason: Missing output files: results/delivered/model/chains/chain_1.rds
    wildcards: delivered=delivered/, chain=1
    threads: 1

[Wed Dec  2 18:14:40 2026]
localrule baselines:
    jobid: 23
    reason: Missing output files: results/baselines/predictions.csv

[Wed Dec  2 18:14:45 2026]
Finished jobid: 23 (Rule: baselines)
1 of 3 steps (33%) done
[Wed Dec  2 18:17:11 2026]
Finished jobid: 14 (Rule: bayesian_chain)
[Wed Dec  2 18:17:12 2026]
localrule summary:
    jobid: 17
"""


def test_end_to_end_job_times_from_snakemakes_log():
    import bench_end_to_end

    jobs = bench_end_to_end.job_times(SNAKEMAKE_LOG)  # the unfinished summary job is left out
    assert [(j["rule"], j["start_s"], j["seconds"]) for j in jobs] == [("bayesian_chain", 0, 152), ("baselines", 1, 5)]
    assert [bench_end_to_end.stage(j) for j in jobs] == ["bayesian_chain (refit on every row)", "baselines"]
