"""Bad files of users to score: `bayeslift score` and the pipeline's early `check_score_file` exit non-zero,
name the file, column and line, and leave no output behind (no half-written or earlier run's predictions).

Fast tier: the CLI in a child process on the truth surrogate (no R); e2e: real snakemake runs.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
import yaml

from bayeslift.data import DataValidationError, read_csv
from bayeslift.prepare import prepare_training_data, text_reading
from bayeslift.score_check import check_score_file, remove_stale_outputs
from bayeslift.scoring import PREDICTION_COLUMNS, UniqueIds, UpliftScorer
from bayeslift.simulate import COLUMNS, simulate_history, simulate_new_users
from bayeslift.surrogate.checkpoint import save_surrogate
from bayeslift.surrogate.model import FeatureEncoder, SurrogateConfig
from bayeslift.surrogate.train import fit_surrogate
from bayeslift.surrogate.truth import simulated_truth_targets

from conftest import PROCESS_ENV, REPO, VENV_BIN, snakemake

TEST_CONFIG = str(REPO / "config" / "test.yaml")


@pytest.fixture(scope="module")
def users():
    frame, _ = simulate_new_users(12, seed=41)
    frame["customer_id"] = [f"u{i:03d}" for i in range(len(frame))]
    return frame


@pytest.fixture(scope="module")
def truth_spec_json(truth_surrogate_dir, tmp_path_factory):
    """The truth surrogate's feature spec (levels and ranges) as prepare writes it."""
    path = tmp_path_factory.mktemp("spec") / "feature_spec.json"
    UpliftScorer.load(truth_surrogate_dir).spec.to_json(path)
    return path


def score_cli(model_dir, src, out, chunk_size: int = 2) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "bayeslift"), "score", "--model", str(model_dir), "--input", str(src),
                           "--output", str(out), "--chunk-size", str(chunk_size), "--quiet"],
                          env=PROCESS_ENV, capture_output=True, text=True)


def with_value(row: int, column: str, value):
    def mutate(frame):
        frame = frame.copy()
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
        return frame
    return mutate


def write(frame_or_bytes, path):
    if isinstance(frame_or_bytes, bytes):
        path.write_bytes(frame_or_bytes)
    elif path.suffix == ".parquet":
        frame_or_bytes.to_parquet(path, index=False)
    else:
        frame_or_bytes.to_csv(path, index=False)
    return path


BOM = b"\xef\xbb\xbf"  # what Excel's "CSV UTF-8" puts first


def latin1_on_line(line: int):
    def mutate(frame):
        lines = frame.to_csv(index=False).encode().splitlines(keepends=True)
        lines[line - 1] = lines[line - 1].replace(b",", b",\xe9", 1)  # a latin-1 e-acute opens field 2
        return b"".join(lines)
    return mutate


def bom_and_latin1_opening_line(line: int):
    def mutate(frame):
        lines = frame.to_csv(index=False).encode().splitlines(keepends=True)
        lines[line - 1] = b"\xe9" + lines[line - 1]
        return BOM + b"".join(lines)
    return mutate


def parquet_bytes(frame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def flipped_page_header(frame) -> bytes:
    """A Parquet file whose first page header (it starts right after the 4-byte magic) is garbage: the
    footer reads, the page does not."""
    data = bytearray(parquet_bytes(frame))
    data[4:12] = bytes(b ^ 0xFF for b in data[4:12])
    return bytes(data)


def as_text_with(row: int, column: str, value: str):
    """``column`` as a Parquet string column holding ``value`` at ``row`` (a typed Parquet column cannot mix)."""
    def mutate(frame):
        return frame.assign(**{column: frame[column].astype(str).where(frame.index != row, value)})
    return mutate


# case -> (make the file from the 12 users, expected message after "<file>: "); CSV line = row + 2.
BAD_USERS = {
    "missing_column": (lambda f: f.drop(columns=["tenure"]), r"missing required column\(s\) \['tenure'\]"),
    "unseen_category": (with_value(5, "channel", "fax"),
                        r"column 'channel' has categories not seen in training \['fax'\] at line 7;"),
    "past_spend_1e300": (with_value(2, "past_spend", 1e300),
                         r"column 'past_spend' at line 4 holds 1e\+300: more than 1 training range\(s\) outside the "
                         r"training log1p range \[.*\] of 'past_spend'"),
    "tenure_1e308": (with_value(6, "tenure", 1e308),
                     r"column 'tenure' at line 8 holds 1e\+308: more than 1 training range\(s\) outside the training range"),
    "tenure_minus_50": (with_value(9, "tenure", -50.0), r"column 'tenure' at line 11 holds -50.0: more than 1 training"),
    "recency_inf": (with_value(1, "recency", "inf"), r"column 'recency' has non-finite values at line 3$"),
    "recency_1e999": (with_value(1, "recency", "1e999"), r"column 'recency' has non-finite values at line 3$"),
    "negative_log1p": (with_value(3, "past_spend", -2.0), r"column 'past_spend' is log1p-transformed and must be >= 0; "
                                                          r"negative at line 5$"),
    "not_a_number": (with_value(10, "recency", "soon"), r"column 'recency' must be numeric; line 12 hold 'soon'$"),
    "empty_number": (with_value(0, "tenure", None), r"column 'tenure' has missing values at line 2$"),
    "NA_in_a_number": (with_value(4, "recency", "NA"), r"column 'recency' has missing values at line 6$"),
    "empty_category": (with_value(8, "channel", None), r"column 'channel' has missing values at line 10$"),
    "empty_id": (with_value(7, "customer_id", None), r"column 'customer_id' has missing ids at line 9$"),
    "duplicate_id_in_a_chunk": (with_value(3, "customer_id", "u002"),
                                r"column 'customer_id' has the duplicate id 'u002' at lines 4, 5; each user must appear once$"),
    "duplicate_id_across_chunks": (with_value(9, "customer_id", "u001"),
                                   r"column 'customer_id' has the duplicate id 'u001' at lines 3, 11;"),
    "latin1_byte": (latin1_on_line(6), r"line 6 is not valid UTF-8 \(byte 0xe9 at column \d+, in field 'past_spend'\); "
                                       r"save the file as UTF-8$"),
    "empty_file": (lambda f: b"", r"file is empty$"),
    "header_only": (lambda f: f.iloc[:0], r"no users to score$"),
    "parquet_duplicate_across_chunks": (with_value(11, "customer_id", "u000"),
                                        r"column 'customer_id' has the duplicate id 'u000' at lines 2, 13;"),
    "parquet_null_category": (with_value(2, "channel", None), r"column 'channel' has missing values at line 4$"),
    # pandas reads past a BOM, so the message's field names must too (before: in field '\ufeffcustomer_id')
    "latin1_byte_after_a_bom": (bom_and_latin1_opening_line(6), r"line 6 is not valid UTF-8 \(byte 0xe9 at column 1, "
                                                                r"in field 'customer_id'\); save the file as UTF-8$"),
    # the same message as the CSV cases: a string column is read value by value
    "parquet_not_a_number": (as_text_with(10, "recency", "soon"), r"column 'recency' must be numeric; line 12 hold 'soon'$"),
    "parquet_timestamp_in_a_number": (lambda f: f.assign(tenure=pd.Timestamp("2024-01-31")),
                                      r"column 'tenure' must be numeric; the Parquet column's type is timestamp\[.+\]$"),
    "parquet_boolean_in_a_number": (lambda f: f.assign(is_new=f["is_new"] > 0),
                                    r"column 'is_new' must be numeric; the Parquet column's type is bool$"),
    "parquet_truncated": (lambda f: parquet_bytes(f)[:-100], r"not a readable Parquet file \(Parquet magic bytes not "
                                                             r"found in footer\. .+\)$"),
    "parquet_that_is_a_csv": (lambda f: f.to_csv(index=False).encode(), r"not a readable Parquet file \(Parquet magic"),
    "parquet_corrupt_page": (flipped_page_header, r"not a readable Parquet file \(.+\)$"),
    "parquet_empty": (lambda f: b"", r"file is empty$"),
}


def bad_file(case, users, tmp_path):
    make, message = BAD_USERS[case]
    src = write(make(users), tmp_path / ("users.parquet" if case.startswith("parquet") else "users.csv"))
    return src, rf"^{re.escape(str(src))}: {message}"


@pytest.mark.parametrize("case", list(BAD_USERS))
def test_bad_score_file_exits_non_zero_names_the_problem_and_writes_nothing(truth_surrogate_dir, users, tmp_path, case):
    src, message = bad_file(case, users, tmp_path)
    out = tmp_path / "out" / "pred.csv"
    proc = score_cli(truth_surrogate_dir, src, out)
    assert proc.returncode == 1, proc.stderr
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("bayeslift error: "), proc.stderr
    assert re.search(message, error.removeprefix("bayeslift error: ")), error
    assert not out.parent.exists() or not any(out.parent.iterdir())  # no output, no temporary file


@pytest.mark.parametrize("case", list(BAD_USERS))
def test_check_score_file_finds_the_same_problems(truth_spec_json, users, tmp_path, case):
    src, message = bad_file(case, users, tmp_path)
    marker = tmp_path / "results" / "prepared" / "score_check.json"
    with pytest.raises(DataValidationError) as err:
        check_score_file(truth_spec_json, src, marker, chunk_size=2)
    assert re.search(message, str(err.value)), str(err.value)
    assert not marker.exists()


def test_a_score_file_with_a_byte_order_mark_scores(truth_surrogate_dir, truth_spec_json, users, tmp_path):
    """Excel's "CSV UTF-8" starts with a BOM: it is not part of the id column's name."""
    src = write(BOM + users.to_csv(index=False).encode(), tmp_path / "users.csv")
    assert check_score_file(truth_spec_json, src, tmp_path / "results" / "score_check.json", 5)["rows"] == 12
    out = tmp_path / "pred.csv"
    proc = score_cli(truth_surrogate_dir, src, out, chunk_size=5)
    assert proc.returncode == 0, proc.stderr
    assert pd.read_csv(out)["customer_id"].tolist() == users["customer_id"].tolist()


def test_no_finite_prediction_is_an_error_naming_line_and_column(truth_surrogate_dir, users):
    """A model folder without training ranges (written before they were recorded) passes the range bound;
    the prediction check still refuses what the model cannot compute (before: an empty row with treat=0)."""
    scorer = UpliftScorer.load(truth_surrogate_dir)
    scorer.spec.ranges = {}
    frame = with_value(6, "tenure", 1e308)(users)
    with pytest.raises(DataValidationError, match=r"users.csv: the model gives no finite prediction at line 8; "
                                                  r"column 'tenure' is the most extreme feature of the first \(1e\+308\)"):
        scorer.score_frame(frame.iloc[3:], "users.csv", offset=3)  # line numbers count the rows before the frame


def test_check_score_file_writes_marker_and_removes_earlier_outputs(truth_spec_json, users, tmp_path):
    src = write(users, tmp_path / "users.csv")
    results = tmp_path / "results"
    stale = [results / "uplift_predictions.csv", results / "summary.json", results / "scoring" / "shards" / "p_1.csv"]
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("from an earlier run")
    marker = results / "prepared" / "score_check.json"
    check_score_file(truth_spec_json, src, marker, 5, stale_outputs=[*stale[:2], results / "scoring"],
                     results_dir=results)
    facts = json.loads(marker.read_text())
    assert (facts["rows"], facts["columns"]) == (12, len(users.columns))
    assert facts["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert not any(p.exists() for p in stale) and not (results / "scoring").exists()


def test_remove_stale_outputs_stays_inside_the_results_folder(tmp_path):
    results, outside = tmp_path / "results", tmp_path / "keep.csv"
    results.mkdir()
    outside.write_text("mine")
    (results / "uplift_predictions.csv").symlink_to(outside)
    remove_stale_outputs([results / "uplift_predictions.csv", results / "summary.json"], results)
    assert outside.read_text() == "mine" and not (results / "uplift_predictions.csv").is_symlink()
    (results / "linked").symlink_to(tmp_path)  # a subfolder linked out of the results
    for path in [outside, results, results / ".." / "keep.csv", results / "linked" / "keep.csv"]:
        with pytest.raises(ValueError, match="refusing to remove a path outside"):
            remove_stale_outputs([path], results)
    assert outside.exists() and results.exists()


def test_a_hash_seen_before_is_confirmed_before_it_is_called_a_duplicate():
    ids = pd.Series(["a", "b"])
    tracker = UniqueIds("id", "users.csv", earlier=lambda values, offset: {})  # nothing earlier matches exactly
    tracker._insert(pd.util.hash_pandas_object(ids, index=False).to_numpy())  # as if colliding ids came first
    tracker.add(ids, offset=2)  # no error: the hash hit was a collision
    found = UniqueIds("id", "users.csv", earlier=lambda values, offset: {"b": [2]})
    found.add(pd.Series(["b"]), 0)
    with pytest.raises(DataValidationError, match=r"users.csv: column 'id' has the duplicate id 'b' at lines 2, 4;"):
        found.add(pd.Series(["c", "b"]), offset=1)


def test_many_chunks_keep_few_hash_runs():
    tracker = UniqueIds("id", "users.csv", earlier=lambda values, offset: {})
    for k in range(200):
        tracker.add(pd.Series([f"u{k}_{i}" for i in range(50)]), offset=50 * k)
    assert sum(len(run) for run in tracker._runs) == 10_000 and len(tracker._runs) <= 14
    assert all(np.all(np.diff(run.astype(np.float64)) >= 0) for run in tracker._runs)


# Files the Arrow path (bayeslift.arrow_users) must score as the pandas path does, or hand over to it.
ARROW_VARIANTS = {
    "plain": lambda t: t, "crlf": lambda t: t.replace("\n", "\r\n"), "bom": lambda t: "\ufeff" + t,
    "quoted": lambda t: t.replace(",web", ',"web"'), "blank_line": lambda t: t.replace("\n", "\n\n", 3),
    "line_break_in_quotes": lambda t: t.replace("u001,", '"u0\n01",', 1),
    "space_in_number": lambda t: t.replace("\nu002,", "\nu002, ", 1),
    "unseen_level": lambda t: t.replace(",web\n", ",fax\n", 1), "duplicate_id": lambda t: t + t.splitlines()[3] + "\n",
}


@pytest.mark.parametrize("chunks", [None, (1, 3)], ids=["whole", "shard"])
@pytest.mark.parametrize("variant", list(ARROW_VARIANTS))
def test_arrow_and_pandas_paths_write_the_same_bytes_or_the_same_error(truth_surrogate_dir, users, tmp_path,
                                                                        monkeypatch, variant, chunks):
    from bayeslift import scoring

    src = tmp_path / "users.csv"
    src.write_text(ARROW_VARIANTS[variant](users.to_csv(index=False)), newline="")
    arrow = scoring._score_with_arrow

    def outcome(fast: bool):
        monkeypatch.setattr(scoring, "_score_with_arrow", arrow if fast else lambda *args: 0)
        out = tmp_path / f"{fast}.csv"
        try:
            scoring.score_file(truth_surrogate_dir, src, out, chunk_size=5, progress=False, chunks=chunks)
        except DataValidationError as exc:
            return str(exc)
        return out.read_bytes()

    assert outcome(True) == outcome(False)


@pytest.fixture(scope="module")
def na_level_surrogate(tmp_path_factory):
    """A surrogate whose channel levels, learned by prepare from the file, include a real "NA"."""
    work = tmp_path_factory.mktemp("na_level")
    encoder, targets = simulated_truth_targets(2000, seed=11)
    history, _ = simulate_history(2000, seed=11)  # the users of the truth targets, in the same order
    history.loc[history["channel"] == "phone", "channel"] = "NA"
    history.to_csv(work / "history.csv", index=False)
    spec = prepare_training_data(work / "history.csv", COLUMNS, 0.3, 1, work / "train.csv", work / "holdout.csv",
                                 work / "feature_spec.json")
    frame = read_csv(work / "history.csv", **text_reading(spec))
    encoder = FeatureEncoder.fit(spec, frame)
    surrogate = fit_surrogate(dataclasses.replace(targets, x=encoder.transform(frame)),
                              SurrogateConfig(hidden=16, epochs=10, seed=3))
    save_surrogate(work / "surrogate", surrogate, encoder, training_config={"source": "NA level"}, fidelity={})
    return work / "surrogate"


def test_a_category_spelt_NA_is_scored_as_that_category(na_level_surrogate, users, tmp_path):
    frame = users.copy()
    frame.loc[frame["channel"] == "phone", "channel"] = "NA"
    assert (frame["channel"] == "NA").sum() > 0
    src, out = write(frame, tmp_path / "users.csv"), tmp_path / "pred.csv"
    proc = score_cli(na_level_surrogate, src, out, chunk_size=5)
    assert proc.returncode == 0, proc.stderr
    scored = pd.read_csv(out, keep_default_na=False)
    assert scored["customer_id"].tolist() == frame["customer_id"].tolist()
    assert np.isfinite(scored[PREDICTION_COLUMNS].to_numpy(dtype=float)).all()
    scorer = UpliftScorer.load(na_level_surrogate)
    assert "NA" in scorer.spec.levels["channel"]
    one_hot = scorer.encoder.transform(frame)[:, scorer.encoder.columns.index("channel=NA") - 1]
    assert (one_hot == (frame["channel"] == "NA")).all()


# --- the pipeline: the score file is checked before any fit; a failed re-score leaves no old outputs ---

def _run(workdir, cfg, *args, env=None):
    cmd = [str(VENV_BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores", "2",
           *args, "--configfile", TEST_CONFIG, str(cfg)]
    return subprocess.run(cmd, cwd=workdir, env={**PROCESS_ENV, **(env or {})}, capture_output=True, text=True)


@pytest.mark.e2e
def test_bad_score_file_stops_the_pipeline_before_any_fit(tmp_path):
    simulate_history(800, seed=7)[0].to_csv(tmp_path / "history.csv", index=False)
    simulate_new_users(50, seed=8)[0].drop(columns=["tenure"]).to_csv(tmp_path / "users.csv", index=False)
    cfg = tmp_path / "user.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"train": "history.csv", "score": "users.csv"}}))
    proc = snakemake(tmp_path, "--configfile", TEST_CONFIG, str(cfg), check=False)
    assert proc.returncode != 0
    assert "users.csv: missing required column(s) ['tenure']" in proc.stderr
    # whichever of the two checks Snakemake started first stopped the run
    logs = [tmp_path / f"logs/{rule}.log" for rule in ("check_score_file_before_fit", "check_score_file")]
    assert any(log.exists() and "users.csv: missing required column(s) ['tenure']" in log.read_text() for log in logs)
    assert not (tmp_path / "results/model").exists() and not list((tmp_path / "logs").glob("bayesian_chain*"))
    assert not list((tmp_path / "results/prepared").glob("score_check*"))


@pytest.mark.e2e
def test_failed_rescore_leaves_no_earlier_predictions_and_does_not_refit(tiny_pipeline, tmp_path):
    work = tmp_path / "run"
    shutil.copytree(tiny_pipeline, work, symlinks=True)
    res = work / "results"
    fitted = {p: p.stat().st_mtime_ns for p in [*res.glob("model/chains/*.rds"), res / "model/fit.rds"]}
    cfg = tmp_path / "rescore.yaml"
    # 1. A score file the check refuses: it fails in seconds, and the earlier predictions and summary are gone.
    users = pd.read_csv(work / "data/simulated/new_users.csv")
    with_value(10, "channel", "fax")(users).to_csv(work / "bad.csv", index=False)
    cfg.write_text(yaml.safe_dump({"data": {"score": "bad.csv"}}))
    proc = _run(work, cfg)
    assert proc.returncode != 0
    assert "bad.csv: column 'channel' has categories not seen in training ['fax'] at line 12" in proc.stderr
    assert not (res / "uplift_predictions.csv").exists() and not (res / "summary.json").exists()
    assert not (res / "scoring").exists()
    # 2. A good file whose scoring fails (fault injected): the check passes, the shard fails, nothing stale.
    new_users, _ = simulate_new_users(40, seed=99, id_start=5_000_001)
    new_users.to_csv(work / "new.csv", index=False)
    cfg.write_text(yaml.safe_dump({"data": {"score": "new.csv"}}))
    proc = _run(work, cfg, env={"BAYESLIFT_FAIL_SHARD": "1"})
    assert proc.returncode != 0
    assert "shard 1 fails on purpose" in (work / "logs/batch_uplift_shard_1.log").read_text(), proc.stderr[-3000:]
    assert json.loads((res / "prepared/score_check.json").read_text())["rows"] == 40
    assert not (res / "uplift_predictions.csv").exists() and not (res / "summary.json").exists()
    # A model change made together with the new score file still refits (nothing masks it; see data.smk).
    both = tmp_path / "both.yaml"
    both.write_text(yaml.safe_dump({"data": {"score": "new.csv"}, "model": {"inference": {"iter": 400}}}))
    planned = _run(work, both, "-n")
    assert planned.returncode == 0 and "rule bayesian_chain:" in planned.stdout, planned.stdout[-3000:]
    # 3. Fixed: only scoring runs again; the fit is untouched throughout (a new score file never refits).
    proc = _run(work, cfg)
    assert proc.returncode == 0, proc.stderr[-3000:]
    scored = pd.read_csv(res / "uplift_predictions.csv")
    assert scored["customer_id"].tolist() == new_users["customer_id"].tolist()
    assert json.loads((res / "summary.json").read_text())["scored"]["n_users"] == 40
    assert {p: p.stat().st_mtime_ns for p in fitted} == fitted
