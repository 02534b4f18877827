"""Bad-input matrix, settings side: CLI flags, BAYESLIFT_* variables and pipeline config files.

Each case runs the real command (`bayeslift ...`, or `snakemake -n` on this repo's Snakefile) and checks the
exit code, a short message naming the setting and its allowed range or the file and line, no traceback, and
that nothing was written.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys

import pytest
import yaml

from conftest import PROCESS_ENV, snakemake

MAX_MESSAGE_LINES = 5  # a config problem is a line or a few, never a schema dump


def bayeslift(*args: str, env: dict | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in PROCESS_ENV.items() if not k.startswith("BAYESLIFT_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "bayeslift.cli", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout)


def assert_refused(proc, code: int, *words: str) -> str:
    """Exit ``code``, and the last stderr line names every one of ``words``; no traceback anywhere."""
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    for word in words:
        assert word in last, last
    return last


# -- CLI flags: argparse's usage error, exit 2, before anything loads ------------------------------------

@pytest.mark.parametrize("args, words", [
    (["score", "--input", "in.csv", "--output", "out.csv", "--chunk-size", "0"], ["--chunk-size", "integer >= 1"]),
    (["score", "--input", "in.csv", "--output", "out.csv", "--chunk-size", "-5"], ["--chunk-size", "'-5'"]),
    (["score", "--input", "in.csv", "--output", "out.csv", "--chunk-size", "1e3"], ["--chunk-size", "'1e3'"]),
    (["serve", "--max-body-bytes", "-1"], ["--max-body-bytes", "from 1024 to 1073741824"]),
    (["serve", "--max-body-bytes", "10"], ["--max-body-bytes", "'10'"]),  # would answer 413 to everything
    (["serve", "--max-instances", "0"], ["--max-instances", "from 1 to 10000000"]),
    (["serve", "--workers", "0"], ["--workers", "from 1 to 64"]),
    (["serve", "--port", "70000"], ["--port", "from 1 to 65535"]),
    (["serve", "--port", "http"], ["--port", "'http'"]),
    (["serve", "--body-timeout-s", "0"], ["--body-timeout-s", "from 0.01 to 3600"]),
    (["serve", "--body-timeout-s", "nan"], ["--body-timeout-s", "'nan'"]),
    (["serve", "--cost-per-contact", "nan"], ["--cost-per-contact", "finite number >= 0"]),
    (["serve", "--cost-per-contact", "-1"], ["--cost-per-contact", "finite number >= 0"]),
    (["serve", "--margin", "0"], ["--margin", "finite number > 0"]),
    (["serve", "--margin", "inf"], ["--margin", "finite number > 0"]),
    (["simulate", "--out", "out", "--truth", "truth", "--n-history", "0"], ["--n-history", "integer >= 1"]),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_flag_is_a_usage_error(tmp_path, args, words):
    in_tmp = {"in.csv", "out.csv", "out", "truth"}  # any path a command could write lies in tmp_path
    proc = bayeslift(*[str(tmp_path / a) if a in in_tmp else a for a in args])
    assert_refused(proc, 2, "error: argument", *words)
    assert not any(tmp_path.iterdir())


# -- environment variables: one line naming the variable, exit 1 --------------------------------------

@pytest.mark.parametrize("variable, value, allowed", [
    ("BAYESLIFT_MAX_INSTANCES", "abc", "from 1 to 10000000"),
    ("BAYESLIFT_MAX_INSTANCES", "0", "from 1 to 10000000"),
    ("BAYESLIFT_MAX_BODY_BYTES", "12", "from 1024 to 1073741824"),
    ("BAYESLIFT_MAX_BODY_BYTES", "1.5e6", "integer"),
    ("BAYESLIFT_BODY_TIMEOUT_S", "-1", "from 0.01 to 3600"),
])
def test_bad_variable_stops_serve(truth_surrogate_dir, variable, value, allowed):
    proc = bayeslift("serve", "--model", str(truth_surrogate_dir), "--port", "1", env={variable: value})
    line = assert_refused(proc, 1, "bayeslift error:", variable, allowed, repr(value))
    assert line.startswith("bayeslift error:") and len(proc.stderr.strip().splitlines()) == 1


def test_flag_wins_over_a_variable_only_when_the_variable_is_valid(truth_surrogate_dir):
    """A bad variable is reported even when a flag would replace it: it is still a mistake in the setup."""
    proc = bayeslift("serve", "--model", str(truth_surrogate_dir), "--port", "1", "--max-instances", "5",
                     env={"BAYESLIFT_MAX_INSTANCES": "abc"})
    assert_refused(proc, 1, "BAYESLIFT_MAX_INSTANCES")


@pytest.mark.parametrize("where", ["port in use", "unknown host", "not this machine"])
def test_unusable_address_stops_serve_before_loading(truth_surrogate_dir, where):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        host, port = {"port in use": ("127.0.0.1", taken.getsockname()[1]), "unknown host": ("256.1.1.1", 8080),
                      "not this machine": ("192.0.2.1", 8080)}[where]  # 192.0.2.0/24: documentation-only addresses
        proc = bayeslift("serve", "--model", str(truth_surrogate_dir), "--host", host, "--port", str(port))
    line = assert_refused(proc, 1, "bayeslift error:", f"--host {host}")
    assert "loaded model" not in proc.stderr, line


# -- score --output that cannot be written ----------------------------------------------------------------

@pytest.fixture(scope="module")
def users_csv(tmp_path_factory):
    from bayeslift.simulate import simulate_new_users

    path = tmp_path_factory.mktemp("bad_settings_users") / "users.csv"
    simulate_new_users(5, seed=4)[0].to_csv(path, index=False)
    return path


@pytest.mark.parametrize("output, words", [
    ("/proc/bayeslift-test/out.csv", ["/proc/bayeslift-test"]),
    ("{tmp}/a_file/out.csv", ["a_file"]),
    ("{tmp}", ["is a folder"]),
], ids=["under /proc", "under a file", "a folder"])
def test_unwritable_output_is_one_line(truth_surrogate_dir, users_csv, tmp_path, output, words):
    (tmp_path / "a_file").write_text("not a folder")
    output = output.format(tmp=tmp_path)
    proc = bayeslift("score", "--model", str(truth_surrogate_dir), "--input", str(users_csv), "--output", output,
                     "--quiet")
    assert_refused(proc, 1, "bayeslift error:", *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


# -- pipeline config files, through a real `snakemake -n` ---------------------------------------------------

@pytest.mark.parametrize("config_text, words", [
    ({"model": {"inference": {"chians": 2}}},
     ["config: model.inference.chians: unknown key", "did you mean 'chains'?", "allowed: adapt_delta"]),
    ({"surrogate": {"epochs": -1}}, ["config: surrogate.epochs: -1 is less than the minimum of 1"]),
    ({"surrogate": {"epochs": "many"}}, ["config: surrogate.epochs: 'many' is not of type 'integer'"]),
    ({"model": 3}, ["config: model: 3 is not of type 'object'"]),
    ({"model": {"inference": {"fit_subsample": 5}}}, ["config: model.inference.fit_subsample: 5 matches none of",
                                                      '"minimum": 100']),
    ({"columns": {"numeric": ["a", "a"]}}, ["config: columns.numeric:", "non-unique"]),
    ({"polcy": {"margin": 2}}, ["config: polcy: unknown key", "did you mean 'policy'?"]),
    ("model:\n  chains: 2\nmodel:\n  iter: 300\n", ["bad.yaml: duplicate key 'model' at line 3 (first at line 1)"]),
], ids=["misspelt key", "below minimum", "wrong type", "section not a mapping", "none of oneOf", "repeated name",
        "misspelt section", "duplicate key"])
def test_bad_config_file_is_a_short_message(tmp_path, config_text, words):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(config_text if isinstance(config_text, str) else yaml.safe_dump(config_text))
    proc = snakemake(tmp_path, "-n", "--configfile", str(cfg), check=False)
    assert proc.returncode != 0
    problem = [line for line in proc.stderr.splitlines() if line.startswith("config")]
    assert problem and len(problem) <= MAX_MESSAGE_LINES, proc.stderr
    for word in words:
        assert word in problem[0], proc.stderr
    assert "Failed validating" not in proc.stderr and "Traceback" not in proc.stderr
    assert "Job stats" not in proc.stdout  # stopped before any job was planned
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".snakemake") == ["bad.yaml"]


def test_bad_config_from_the_command_line(tmp_path):
    proc = snakemake(tmp_path, "-n", "--config", "shards=0", check=False)
    assert proc.returncode != 0 and "config: shards: 0 is less than the minimum of 1" in proc.stderr


def test_yaml_syntax_error(tmp_path):
    """Snakemake reads --configfile before the Snakefile runs and names neither file nor line; the run still
    stops before any job, and `bayeslift check-config` (the README's advice) names file, line and column."""
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("model:\n  chains: 2\n  iter: [1, 2\nsurrogate: {}\n")
    proc = snakemake(tmp_path, "-n", "--configfile", str(cfg), check=False)
    shown = proc.stdout + proc.stderr  # Snakemake prints this error on stdout
    assert proc.returncode != 0 and "not valid JSON or YAML" in shown and "Traceback" not in shown
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".snakemake") == ["bad.yaml"]
    check = bayeslift("check-config", str(cfg))
    assert_refused(check, 1, f"config file {cfg}: YAML syntax error at line 4, column 10",
                   "started at line 3, column 9")


def test_yaml_syntax_error_in_the_default_config(tmp_path):
    """The workflow's own config/config.yaml is read by the Snakefile, which names file, line and column."""
    from conftest import REPO, VENV_BIN

    checkout = tmp_path / "checkout"
    shutil.copytree(REPO / "config", checkout / "config")
    shutil.copy(REPO / "Snakefile", checkout / "Snakefile")  # stops before its includes are read
    default = checkout / "config" / "config.yaml"
    default.write_text(default.read_text() + "surrogate:\n  epochs: [1\n")
    workdir = tmp_path / "run"
    workdir.mkdir()
    proc = subprocess.run([str(VENV_BIN / "snakemake"), "-s", str(checkout / "Snakefile"), "--directory", str(workdir),
                           "--cores", "1", "-n"], cwd=workdir, env=PROCESS_ENV, capture_output=True, text=True)
    lines = default.read_text().splitlines()
    assert_refused(proc, 1, f"config file {default}: YAML syntax error at line {len(lines) + 1}")
    assert [p.name for p in workdir.iterdir() if p.name != ".snakemake"] == []


@pytest.mark.parametrize("text, words", [
    ("model:\n\tchains: 2\n", ["line 2, column 1", "not tabs"]),
    ("- a\n- b\n", ["must hold keys at the top level"]),
    ('{"model": {"chains": 2}, "model": {}}', ["duplicate key(s) ['model']"]),
    ("# only a comment\n", ["holds no keys"]),
], ids=["tab indent", "not a mapping", "duplicate JSON key", "no keys"])
def test_check_config_names_the_file(tmp_path, text, words):
    cfg = tmp_path / "my.yaml"
    cfg.write_text(text)
    assert_refused(bayeslift("check-config", str(cfg)), 1, f"config file {cfg}", *words)


def test_check_config_passes_the_shipped_presets():
    from conftest import REPO

    proc = bayeslift("check-config", str(REPO / "config" / "test.yaml"))
    assert proc.returncode == 0 and "config OK" in proc.stdout and "(presets: demo)" in proc.stdout
