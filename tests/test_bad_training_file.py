"""Bad campaign histories: `prepare` exits non-zero, names the file, column and line, and writes nothing.

Each case runs the prepare step in a child process through the same `run_step` the Snakemake entry uses,
so the exit status and the one-line message are the ones a user sees. Fast tier: no R, no MCMC.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import yaml

from bayeslift.data import FeatureSpec
from bayeslift.prepare import read_prepared
from bayeslift.simulate import COLUMNS, simulate_history

from conftest import PROCESS_ENV, REPO, snakemake
from test_bad_score_file import with_value as frame_with_value

PREPARE = """
import json, sys
from bayeslift.entry import run_step
from bayeslift.prepare import prepare_training_data
src, out, columns, log = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
run_step(log, prepare_training_data, src, columns, 0.3, 1, out + "/train.csv", out + "/holdout.csv",
         out + "/feature_spec.json")
"""


@pytest.fixture(scope="module")
def history():
    frame, _ = simulate_history(400, seed=21)
    return frame


def run_prepare(tmp_path, content: bytes, columns=COLUMNS) -> subprocess.CompletedProcess:
    src = tmp_path / "history.csv"
    src.write_bytes(content)
    out = tmp_path / "results" / "prepared"
    return subprocess.run([sys.executable, "-c", PREPARE, str(src), str(out), json.dumps(columns),
                           str(tmp_path / "prepare.log")],
                          env=PROCESS_ENV, capture_output=True, text=True, cwd=tmp_path)


def csv_bytes(frame) -> bytes:
    return frame.to_csv(index=False).encode()


def with_value(row: int, column: str, value):
    """The score-file cases' edit, written out as the history's CSV bytes."""
    edit = frame_with_value(row, column, value)
    return lambda frame: csv_bytes(edit(frame))


def latin1_in_channel(frame) -> bytes:
    lines = csv_bytes(frame).splitlines(keepends=True)
    row = next(i for i in range(5, len(lines)) if lines[i].endswith(b",web\n"))
    lines[row] = lines[row].replace(b",web\n", b",w\xe9b\n")  # latin-1 e-acute
    return b"".join(lines)


BOM = b"\xef\xbb\xbf"  # what Excel's "CSV UTF-8" puts first


def latin1_in_header_after_bom(frame) -> bytes:
    return BOM + csv_bytes(frame).replace(b"customer_id", b"cu\xe9stomer_id", 1)


def first_web_line(frame) -> int:
    return int(np.flatnonzero(frame["channel"].to_numpy()[4:] == "web")[0]) + 4 + 2


BAD_HISTORIES = {
    "spend_1e308": (with_value(9, "spend", 1e308),
                    r"history.csv: column 'spend' has values beyond \+-1e\+12 \(the largest magnitude the model takes\) at line 11$"),
    "spend_inf": (with_value(9, "spend", "inf"), r"history.csv: column 'spend' has non-finite values at line 11$"),
    "spend_1e999": (with_value(2, "spend", "1e999"), r"history.csv: column 'spend' has non-finite values at line 4$"),
    "tenure_1e308": (with_value(4, "tenure", 1e308), r"history.csv: column 'tenure' has values beyond \+-1e\+12 .* at line 6$"),
    "log1p_past_spend_1e300": (with_value(3, "past_spend", 1e300),
                               r"history.csv: column 'past_spend' has values beyond \+-1e\+12 .* at line 5$"),
    "tenure_minus_1e300": (with_value(5, "tenure", -1e300), r"history.csv: column 'tenure' has values beyond .* at line 7$"),
    "negative_log1p": (with_value(2, "past_spend", -1.0),
                       r"history.csv: column 'past_spend' is log1p-transformed and must be >= 0; negative at line 4$"),
    "single_level_category": (lambda f: csv_bytes(f.assign(channel="web")),
                              r"history.csv: column 'channel' has the single category \['web'\] on every data line, 2 to 401"),
    "constant_numeric": (lambda f: csv_bytes(f.assign(is_new=1)),
                         r"history.csv: column 'is_new' is constant \(1 on every data line, 2 to 401\)"),
    "latin1_byte": (latin1_in_channel, None),  # message built from the file: see the test
    # columns are counted after the BOM, as pandas and an editor see the line (before: column 4)
    "latin1_in_the_header_after_a_bom": (latin1_in_header_after_bom,
                                         r"history.csv: line 1 is not valid UTF-8 \(byte 0xe9 at column 3\); save the "
                                         r"file as UTF-8$"),
    "not_a_number": (with_value(3, "recency", "soon"), r"history.csv: column 'recency' must be numeric; line 5 hold 'soon'$"),
    "empty_number": (with_value(0, "tenure", None), r"history.csv: column 'tenure' has missing values at line 2$"),
    "NA_in_a_number": (with_value(12, "recency", "NA"), r"history.csv: column 'recency' has missing values at line 14$"),
    "empty_category": (with_value(7, "channel", None), r"history.csv: column 'channel' has missing values at line 9$"),
    "missing_column": (lambda f: csv_bytes(f.drop(columns=["tenure"])),
                       r"history.csv: missing required column\(s\) \['tenure'\]"),
    "duplicate_id": (with_value(5, "customer_id", 1), r"history.csv: column 'customer_id' has duplicate ids \(1\) at lines 2, 7$"),
    "empty_file": (lambda f: b"", r"history.csv: file is empty$"),
    "header_only": (lambda f: csv_bytes(f.iloc[:0]), r"history.csv: no data rows$"),
}


@pytest.mark.parametrize("case", list(BAD_HISTORIES))
def test_bad_history_exits_non_zero_names_the_problem_and_writes_nothing(history, tmp_path, case):
    make, message = BAD_HISTORIES[case]
    proc = run_prepare(tmp_path, make(history))
    assert proc.returncode == 1, proc.stderr
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("bayeslift error: "), proc.stderr
    if case == "latin1_byte":
        message = (rf"history.csv: line {first_web_line(history)} is not valid UTF-8 \(byte 0xe9 at column \d+, in "
                   r"field 'channel'\); save the file as UTF-8$")
    assert re.search(message, error.removeprefix("bayeslift error: ")), error
    assert not (tmp_path / "results").exists()


def test_a_history_with_a_byte_order_mark_prepares(history, tmp_path):
    """Excel's "CSV UTF-8" starts with a BOM: it is not part of the id column's name."""
    proc = run_prepare(tmp_path, BOM + csv_bytes(history))
    assert proc.returncode == 0, proc.stderr
    prepared = tmp_path / "results" / "prepared"
    spec = FeatureSpec.from_json(prepared / "feature_spec.json")
    ids = [read_prepared(prepared / name, spec)["customer_id"] for name in ("train.csv", "holdout.csv")]
    assert sorted(ids[0].tolist() + ids[1].tolist()) == sorted(history["customer_id"].tolist())


@pytest.mark.parametrize("level", ["NA", "None", "null", "N/A"])
def test_a_category_spelt_like_a_missing_value_is_a_category(history, tmp_path, level):
    frame = history.copy()
    frame.loc[frame["channel"] == "phone", "channel"] = level
    proc = run_prepare(tmp_path, csv_bytes(frame))
    assert proc.returncode == 0, proc.stderr
    prepared = tmp_path / "results" / "prepared"
    spec = FeatureSpec.from_json(prepared / "feature_spec.json")
    assert spec.levels["channel"] == sorted(["multichannel", level, "web"])
    train = read_prepared(prepared / "train.csv", spec)
    assert (train["channel"] == level).sum() > 0 and train["channel"].notna().all()


@pytest.mark.e2e
def test_prepare_rule_alone_fails_and_leaves_nothing_under_prepared(history, tmp_path):
    (tmp_path / "history.csv").write_bytes(csv_bytes(history.assign(channel="web")))
    (tmp_path / "users.csv").write_bytes(csv_bytes(history.drop(columns=["campaign", "spend"])))
    cfg = tmp_path / "user.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"train": "history.csv", "score": "users.csv"}}))
    proc = snakemake(tmp_path, "results/prepared/train.csv", "--configfile", str(REPO / "config/test.yaml"), str(cfg),
                     check=False)
    assert proc.returncode != 0
    assert "history.csv: column 'channel' has the single category ['web']" in proc.stderr
    prepared = tmp_path / "results" / "prepared"
    assert not prepared.exists() or not any(prepared.iterdir())
