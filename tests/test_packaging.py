"""The package as pip sees it: a wheel built here (offline) declares requirements.txt's exact pins, split into
the core and the extras serve / eval / pipeline / dev; every third-party import is declared; envs/ installs the
same pins; and this venv, built from requirements.txt, satisfies the wheel with every extra (pip, --no-index).
The wheel also ships config/'s defaults, from which fit_bayesian reads its config without a checkout."""
from __future__ import annotations

import ast
import email.parser
import importlib.metadata
import json
import shutil
import subprocess
import sys
import zipfile

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from conftest import PROCESS_ENV, REPO

PACKAGE = REPO / "python" / "bayeslift"
EXTRAS = ("serve", "eval", "pipeline", "dev")
# Which extra a module's imports may draw on besides the core (the first part of its name inside bayeslift).
EXTRA_OF_MODULE = {"serving": "serve", "baselines": "eval", "evaluation": "eval", "metrics": "eval", "report": "eval",
                   "budget_figure": "eval", "report_panels": "eval", "report_arms": "eval", "baselines_arms": "eval",
                   "evaluation_arms": "eval", "holdout_metrics_arms": "eval"}


def _pip(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "pip", *args, "--no-index", "--disable-pip-version-check"],
                          env=PROCESS_ENV, capture_output=True, text=True)
    assert proc.returncode == 0, f"pip {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel pip builds from a copy of the sources (no network: this venv's setuptools, no isolation)."""
    src = tmp_path_factory.mktemp("src")
    shutil.copy(REPO / "pyproject.toml", src)
    shutil.copy(REPO / "README.md", src)
    shutil.copytree(PACKAGE, src / "python" / "bayeslift", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(REPO / "config", src / "config")  # mapped into the package as bayeslift/config
    out = tmp_path_factory.mktemp("wheel")
    _pip("wheel", "--no-deps", "--no-build-isolation", "--quiet", "--wheel-dir", str(out), str(src))
    (path,) = out.glob("bayeslift-*.whl")
    return path


@pytest.fixture(scope="module")
def metadata(wheel):
    with zipfile.ZipFile(wheel) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(zf.read(name).decode())


def _groups(metadata) -> dict[str, list[Requirement]]:
    """Requires-Dist by group: '' (the core) and each extra."""
    groups = {"": [], **{e: [] for e in metadata.get_all("Provides-Extra") or []}}
    for line in metadata.get_all("Requires-Dist") or []:
        req = Requirement(line)
        extra = next((e for e in groups if e and req.marker and req.marker.evaluate({"extra": e})), "")
        groups[extra].append(req)
    return groups


def _pins(reqs) -> dict[str, str]:
    return {canonicalize_name(r.name): str(r.specifier) for r in reqs if canonicalize_name(r.name) != "bayeslift"}


def requirements_txt() -> dict[str, str]:
    lines = [ln.split("#")[0].strip() for ln in (REPO / "requirements.txt").read_text().splitlines()]
    return _pins(Requirement(ln) for ln in lines if ln)


def test_wheel_declares_requirements_txt_exactly(metadata):
    groups = _groups(metadata)
    assert set(groups) == {"", *EXTRAS}
    declared = [_pins(reqs) for reqs in groups.values()]
    names = [n for pins in declared for n in pins]
    assert len(names) == len(set(names)), f"a package is declared in two groups: {sorted(names)}"
    merged = {n: spec for pins in declared for n, spec in pins.items()}
    pinned = requirements_txt()
    assert sorted(set(pinned) - set(merged)) == [], "in requirements.txt but not in pyproject.toml"
    assert sorted(set(merged) - set(pinned)) == [], "in pyproject.toml but not in requirements.txt"
    assert {n: s for n, s in merged.items() if s != pinned[n]} == {}, "pins differ from requirements.txt"
    assert all(s.startswith("==") for s in merged.values()), "every requirement is an exact pin"
    assert merged["torch"] == "==2.13.0" and merged["rpy2"] == "==3.5.17"


def test_extras_build_on_each_other(metadata):
    groups = _groups(metadata)
    core = {canonicalize_name(r.name) for r in groups[""]}
    assert {"torch", "numpy", "pandas", "scikit-learn", "pyarrow"} <= core  # `pip install bayeslift` scores users
    assert "lightgbm" in _pins(groups["eval"]) and "uvicorn" in _pins(groups["serve"])
    assert "snakemake" in _pins(groups["pipeline"]) and "pytest" in _pins(groups["dev"])
    self_refs = {e: set().union(*[r.extras for r in reqs if r.name == "bayeslift"]) for e, reqs in groups.items()}
    assert self_refs["pipeline"] == {"eval"}  # its evaluate and report rules
    assert self_refs["dev"] == {"serve", "eval", "pipeline"}  # the tests exercise all of it


def _third_party_imports(path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
        roots |= {n.split(".")[0] for n in names}
    return roots - set(sys.stdlib_module_names) - {"bayeslift", "__future__"}


def test_every_import_is_declared_where_it_is_needed(metadata):
    groups = {e: set(_pins(reqs)) for e, reqs in _groups(metadata).items()}
    provider = importlib.metadata.packages_distributions()
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).with_suffix("").parts[0]
        allowed = groups[""] | groups.get(EXTRA_OF_MODULE.get(module, ""), set())
        for root in sorted(_third_party_imports(path)):
            dists = {canonicalize_name(d) for d in provider.get(root, [])}
            if not dists & allowed:
                missing.append(f"{path.relative_to(REPO)} imports {root} ({sorted(dists) or 'not installed'}), "
                               f"not in the core{' or ' + EXTRA_OF_MODULE[module] if module in EXTRA_OF_MODULE else ''}")
    assert missing == []


def test_wheel_carries_every_package_file(wheel):
    with zipfile.ZipFile(wheel) as zf:
        shipped = {n for n in zf.namelist() if n.startswith("bayeslift/")}
    on_disk = {"bayeslift/" + p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*")
               if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    assert sorted(on_disk - shipped) == []  # e.g. boundary.yaml, read at run time
    assert "bayeslift/boundary.yaml" in shipped and "bayeslift/surrogate/__init__.py" in shipped


def test_conda_env_installs_the_same_pins(metadata):
    env = yaml.safe_load((REPO / "envs" / "python.yaml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert "-r ../requirements.txt" in pip_section and "-e .." in pip_section
    python = next(d.split("=", 1)[1] for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert SpecifierSet(metadata["Requires-Python"]).contains(python), (python, metadata["Requires-Python"])


def test_this_venv_satisfies_the_wheel_with_every_extra(wheel, tmp_path):
    """pip resolves bayeslift[dev] (all extras) offline against what requirements.txt installed here: only
    bayeslift itself would be installed, so every pin is met and nothing needs the network."""
    report = tmp_path / "report.json"
    _pip("install", "--dry-run", "--quiet", "--report", str(report), f"{wheel}[dev]")
    install = json.loads(report.read_text())["install"]
    assert [i["metadata"]["name"] for i in install] == ["bayeslift"]


# ------------------------------------------------------------- the default config, without a checkout
CONFIG = REPO / "config"
#: config/'s files the package needs (every default, the schema, the presets), as the wheel names them
SHIPPED_CONFIG = {f"bayeslift/config/{p.relative_to(CONFIG).as_posix()}": p
                  for p in [CONFIG / "config.yaml", CONFIG / "config.schema.yaml", *sorted(CONFIG.glob("presets/*.yaml"))]}


def test_wheel_ships_the_default_config_itself(wheel):
    with zipfile.ZipFile(wheel) as zf:
        shipped = {n: zf.read(n) for n in zf.namelist() if n.startswith("bayeslift/config/")}
    assert sorted(shipped) == sorted(SHIPPED_CONFIG)  # the run configs beside them (test.yaml, ...) stay out
    assert "bayeslift/config/presets/demo.yaml" in shipped
    assert {n: data == SHIPPED_CONFIG[n].read_bytes() for n, data in shipped.items()} == dict.fromkeys(shipped, True)


INSTALLED_CHECK = """
import json, sys
sys.path.insert(0, sys.argv[1])  # the installed wheel's files, ahead of this checkout's package
from bayeslift import bayesian
from bayeslift.simulate import COLUMNS, simulate_history
settings = bayesian.fit_settings(COLUMNS, model={"inference": {"iter": 300}})
try:
    bayesian.fit_bayesian(simulate_history(200, seed=1)[0], columns=COLUMNS)
    error = None
except bayesian.BayesianFitError as exc:
    error = str(exc)
print(json.dumps({"module": bayesian.__file__, "config_dir": str(bayesian.CONFIG_DIR), "settings": settings,
                  "error": error}))
"""


@pytest.mark.skipif(shutil.which("Rscript") is None, reason="Rscript not on PATH")
def test_fit_bayesian_from_the_installed_wheel(wheel, tmp_path):
    """Installed from the wheel (its files unpacked, run outside the checkout), fit_bayesian reads the shipped
    config, and without the R package bayeslift it says so, naming what to install, before any fit."""
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    no_r_package = tmp_path / "empty_r_library"
    no_r_package.mkdir()
    env = {**PROCESS_ENV, "R_LIBS": str(no_r_package), "R_LIBS_USER": str(no_r_package)}
    proc = subprocess.run([sys.executable, "-c", INSTALLED_CHECK, str(site)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["module"].startswith(str(site)) and out["config_dir"] == str(site / "bayeslift" / "config")
    defaults = yaml.safe_load((CONFIG / "config.yaml").read_text())
    assert out["settings"]["model"]["inference"]["iter"] == 300
    assert out["settings"]["model"]["backend"] == defaults["model"]["backend"]
    assert out["settings"]["policy"] == defaults["policy"]
    assert out["error"] is not None and "R package bayeslift" in out["error"], out["error"]
    assert str(no_r_package) in out["error"] and "R CMD INSTALL R/bayeslift" in out["error"]
