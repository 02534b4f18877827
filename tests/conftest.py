"""Shared fixtures. Tiers: fast (no R), rpy2 (R through rpy2), e2e (snakemake runs)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
SHARED_DATA = REPO.parent / "shared" / "data"
# The environment before any test imports rpy2, which sets R_HOME and LD_LIBRARY_PATH in os.environ;
# a child Python inheriting that LD_LIBRARY_PATH loads mismatched system libraries (seen: `import ssl` fails).
PROCESS_ENV = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the real snakemake on this repo's Snakefile inside ``workdir``."""
    env = dict(PROCESS_ENV)
    cmd = [str(VENV_BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--cores", "2", *args]
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory) -> Path:
    """The whole pipeline on the tiny test config (simulated data), run once per session."""
    workdir = tmp_path_factory.mktemp("tiny_pipeline")
    snakemake(workdir, "--configfile", str(REPO / "config" / "test.yaml"))
    return workdir


@pytest.fixture(scope="session")
def truth_surrogate_dir(tmp_path_factory) -> Path:
    """A real surrogate trained (without R) on the simulator's true expected spend; fast to build."""
    from bayeslift.data import FeatureSpec
    from bayeslift.simulate import COLUMNS, simulate_history
    from bayeslift.surrogate import SurrogateConfig, save_surrogate
    from bayeslift.surrogate.model import FeatureEncoder
    from bayeslift.surrogate.train import SurrogateTargets, fit_surrogate

    history, truth = simulate_history(2000, seed=11)
    spec = FeatureSpec.from_columns(COLUMNS)
    spec.levels = {"channel": sorted(history["channel"].unique())}
    encoder = FeatureEncoder.fit(spec, history)
    uplift = truth["true_uplift"].to_numpy()
    targets = SurrogateTargets(
        x=encoder.transform(history),
        spend_treated=truth["true_spend_if_treated"].to_numpy(),
        spend_control=truth["true_spend_if_control"].to_numpy(),
        uplift_mean=uplift,
        uplift_q05=uplift - 0.5 - 0.2 * np.abs(uplift),
        uplift_q95=uplift + 0.5 + 0.3 * np.abs(uplift),
    )
    surrogate = fit_surrogate(targets, SurrogateConfig(hidden=64, epochs=60, seed=3))
    out = tmp_path_factory.mktemp("truth_surrogate") / "surrogate"
    save_surrogate(out, surrogate, encoder, training_config={"source": "simulator truth"}, fidelity={})
    return out


@pytest.fixture
def hillstrom_csv() -> Path:
    path = SHARED_DATA / "hillstrom.csv"
    if not path.exists():
        pytest.skip(f"{path} not found (the Hillstrom data lives in ../shared/data, never in the repo)")
    return path
