"""Shared fixtures. Tiers: fast (no R), rpy2 (R through rpy2), e2e (snakemake runs)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
SHARED_DATA = REPO.parent / "shared" / "data"
# The R package bayeslift as `make install` installs it (R/.rlib): for rpy2's embedded R, started after this
# runs, and for every Rscript a test starts.
R_LIBRARY = REPO / "R" / ".rlib"
os.environ["R_LIBS"] = os.pathsep.join(filter(None, [str(R_LIBRARY), os.environ.get("R_LIBS")]))
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
    from bayeslift.surrogate.truth import train_truth_surrogate

    out = tmp_path_factory.mktemp("truth_surrogate") / "surrogate"
    return train_truth_surrogate(out)


@pytest.fixture
def hillstrom_csv() -> Path:
    path = SHARED_DATA / "hillstrom.csv"
    if not path.exists():
        pytest.skip(f"{path} not found (the Hillstrom data lives in ../shared/data, never in the repo)")
    return path
