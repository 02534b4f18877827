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
