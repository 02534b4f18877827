"""Hostile model folders (part of the bad-input matrix): every missing, tampered or truncated artifact makes
the real CLI exit 1 with one line naming the file and the problem, runs nothing the folder holds, and
leaves no output behind. Also: outputs honour the umask, and summary.json never holds NaN."""
from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shutil
import stat
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import PROCESS_ENV, VENV_BIN
from test_serving import free_port
from bayeslift.data import DataValidationError
from bayeslift.simulate import simulate_new_users
from bayeslift.summary import write_summary

CLI_TIMEOUT = 120  # s; a loader that reads /dev/zero or waits on a fifo would hang, not fail
FILES = ("surrogate_nn.pth", "feature_columns.pkl", "spend_scaler.pkl")


class RunsShell:
    """Unpickling this runs ``touch marker``: the marker's existence proves code execution."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def edit_manifest(folder: Path, edit) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    edit(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def replace_file(folder: Path, name: str, data: bytes) -> None:
    """Overwrite a model file and update its manifest hash, as an attacker with write access would."""
    (folder / name).write_bytes(data)
    edit_manifest(folder, lambda m: m["files"].__setitem__(name, hashlib.sha256(data).hexdigest()))


def read_pickle(folder: Path, name: str):
    return pickle.loads((folder / name).read_bytes())


def torch_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def symlink_to_copy(folder: Path, name: str) -> None:
    """The file moved out of the folder and linked back: its hash still matches, the link must be refused."""
    outside = folder.parent / f"outside-{name}"
    (folder / name).rename(outside)
    (folder / name).symlink_to(outside)


def fifo_for(folder: Path, name: str) -> None:
    (folder / name).unlink()
    os.mkfifo(folder / name)


def checkpoint_with(folder: Path, edit) -> bytes:
    ckpt = torch.load(folder / "surrogate_nn.pth", weights_only=True)
    edit(ckpt)
    return torch_bytes(ckpt)


def old_sklearn_scaler() -> bytes:
    from sklearn.preprocessing import StandardScaler

    return pickle.dumps(StandardScaler().fit(np.arange(12.0).reshape(4, 3)))


def zip_without_checkpoint() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("archive/data.pkl", b"not a pickle")
    return buffer.getvalue()


def scaler_with(folder: Path, **changes) -> bytes:
    return pickle.dumps({**read_pickle(folder, "spend_scaler.pkl"), **changes})


def spec_without_ranges(folder: Path) -> dict:
    columns = read_pickle(folder, "feature_columns.pkl")
    return {**columns, "spec": {k: v for k, v in columns["spec"].items() if k != "ranges"}}


def truncate(folder: Path, name: str, keep: int) -> None:
    replace_file(folder, name, (folder / name).read_bytes()[:keep])


def link_to_dev_zero(path: Path) -> None:
    path.unlink()
    path.symlink_to("/dev/zero")


def remove_entry(name: str):
    return lambda f, _: edit_manifest(f, lambda m: m["files"].pop(name))


# (case id, tamper(folder, marker), substrings the error line must hold)
CASES = [
    ("manifest-missing", lambda f, _: (f / "manifest.json").unlink(), ["manifest.json", "no manifest"]),
    ("manifest-empty", lambda f, _: (f / "manifest.json").write_text(""), ["manifest.json", "empty"]),
    ("manifest-not-json", lambda f, _: (f / "manifest.json").write_text("{files: oops"),
     ["manifest.json", "not valid JSON"]),
    ("manifest-not-object", lambda f, _: (f / "manifest.json").write_text("[1, 2]"),
     ["manifest.json", "must be a JSON object"]),
    ("manifest-links-dev-zero", lambda f, _: link_to_dev_zero(f / "manifest.json"), ["manifest.json", "symlink"]),
    ("files-empty", lambda f, _: edit_manifest(f, lambda m: m.__setitem__("files", {})),
     ["manifest.json", "does not list surrogate_nn.pth, feature_columns.pkl, spend_scaler.pkl"]),
    *((f"entry-removed-{name}", remove_entry(name), ["manifest.json", f"does not list {name}"]) for name in FILES),
    ("files-a-list", lambda f, _: edit_manifest(f, lambda m: m.__setitem__("files", list(FILES))),
     ["manifest.json", "'files' must map file names"]),
    ("digest-not-hex", lambda f, _: edit_manifest(f, lambda m: m["files"].__setitem__("spend_scaler.pkl", "abc")),
     ["manifest.json", "sha256 of spend_scaler.pkl must be 64"]),
    ("unknown-entry", lambda f, _: edit_manifest(f, lambda m: m["files"].__setitem__("extra.bin", "0" * 64)),
     ["manifest.json", "unknown file(s) 'extra.bin'"]),
    ("path-dotdot-dev-zero",
     lambda f, _: edit_manifest(f, lambda m: m["files"].__setitem__("../../dev/zero", hashlib.sha256(b"").hexdigest())),
     ["manifest.json", "'../../dev/zero' is not a plain file name"]),
    ("path-absolute", lambda f, _: edit_manifest(f, lambda m: m["files"].__setitem__("/etc/passwd", "0" * 64)),
     ["manifest.json", "'/etc/passwd' is not a plain file name"]),
    ("symlink-in-folder", lambda f, _: symlink_to_copy(f, "spend_scaler.pkl"), ["spend_scaler.pkl", "symlink"]),
    ("fifo-in-folder", lambda f, _: fifo_for(f, "feature_columns.pkl"), ["feature_columns.pkl", "special file"]),
    ("listed-file-missing", lambda f, _: (f / "surrogate_nn.pth").unlink(), ["surrogate_nn.pth", "missing"]),
    ("hash-mismatch", lambda f, _: flip_byte(f / "surrogate_nn.pth"),
     ["surrogate_nn.pth", "does not match the manifest"]),
    ("pth-truncated", lambda f, _: truncate(f, "surrogate_nn.pth", 300), ["surrogate_nn.pth", "unreadable checkpoint"]),
    ("pth-garbage", lambda f, _: replace_file(f, "surrogate_nn.pth", b"\x80\x04garbage" * 50),
     ["surrogate_nn.pth", "not a torch checkpoint"]),
    ("pth-zip-not-torch", lambda f, _: replace_file(f, "surrogate_nn.pth", zip_without_checkpoint()),
     ["surrogate_nn.pth", "unreadable checkpoint"]),
    ("pth-malicious", lambda f, m: replace_file(f, "surrogate_nn.pth", torch_bytes({"format": "x", "w": RunsShell(m)})),
     ["surrogate_nn.pth", "system", "must not"]),
    ("pth-wrong-shapes", lambda f, _: replace_file(f, "surrogate_nn.pth", checkpoint_with(
        f, lambda c: c["spend_net"].__setitem__("net.0.weight", torch.zeros(3, 2)))),
     ["surrogate_nn.pth", "spend_net weights have shapes"]),
    ("pth-huge-hidden", lambda f, _: replace_file(f, "surrogate_nn.pth", checkpoint_with(
        f, lambda c: c["model_args"].__setitem__("hidden", 10**9))),
     ["surrogate_nn.pth", "spend_net weights have shapes"]),
    ("pth-oversized", lambda f, _: os.truncate(f / "surrogate_nn.pth", (1 << 30) + 1),
     ["surrogate_nn.pth", "over 1073741824 bytes"]),
    ("pth-nan-weights", lambda f, _: replace_file(f, "surrogate_nn.pth", checkpoint_with(
        f, lambda c: c["interval_net"]["net.2.bias"].fill_(float("nan")))),
     ["surrogate_nn.pth", "interval_net has non-finite weights"]),
    ("pth-missing-key", lambda f, _: replace_file(f, "surrogate_nn.pth", checkpoint_with(
        f, lambda c: c.pop("uplift_scale"))),
     ["surrogate_nn.pth", "lacks ['uplift_scale']"]),
    ("columns-malicious", lambda f, m: replace_file(f, "feature_columns.pkl", pickle.dumps(RunsShell(m))),
     ["feature_columns.pkl", "system", "not plain data"]),
    ("columns-truncated", lambda f, _: truncate(f, "feature_columns.pkl", 40),
     ["feature_columns.pkl", "not a readable pickle"]),
    ("columns-wrong-order", lambda f, _: replace_file(f, "feature_columns.pkl", pickle.dumps(
        {**read_pickle(f, "feature_columns.pkl"), "columns": ["received_campaign"]})),
     ["feature_columns.pkl", "column order does not match"]),
    ("columns-without-ranges", lambda f, _: replace_file(f, "feature_columns.pkl", pickle.dumps(spec_without_ranges(f))),
     ["feature_columns.pkl", "training ranges must be [min, max] for exactly the numeric features"]),
    ("scaler-malicious", lambda f, m: replace_file(f, "spend_scaler.pkl", pickle.dumps({"mean": RunsShell(m)})),
     ["spend_scaler.pkl", "system", "not plain data"]),
    ("scaler-old-sklearn", lambda f, _: replace_file(f, "spend_scaler.pkl", old_sklearn_scaler()),
     ["spend_scaler.pkl", "StandardScaler", "older bayeslift", "retrain"]),
    ("scaler-nan-mean", lambda f, _: replace_file(f, "spend_scaler.pkl", scaler_with(f, mean=[float("nan")] * 4)),
     ["spend_scaler.pkl", "'mean' must be a list of 4 finite numbers"]),
    ("folder-older-format", lambda f, _: edit_manifest(f, lambda m: m.__setitem__("format", "bayeslift-surrogate/1")),
     ["manifest.json", "older bayeslift", "retrain"]),
    ("folder-missing", lambda f, _: shutil.rmtree(f), ["model folder not found"]),
]


@pytest.fixture(scope="module")
def users_csv(tmp_path_factory) -> Path:
    users, _ = simulate_new_users(40, seed=4)
    path = tmp_path_factory.mktemp("users") / "users.csv"
    users.to_csv(path, index=False)
    return path


def bayeslift(*args: str, umask: int | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "bayeslift"), *args], capture_output=True, text=True, env=PROCESS_ENV,
                          timeout=CLI_TIMEOUT, preexec_fn=None if umask is None else (lambda: os.umask(umask)))


def assert_refused(proc: subprocess.CompletedProcess, expected: list[str]) -> None:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "weights_only" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("bayeslift error: ")]
    assert len(errors) == 1, proc.stderr
    for text in expected:
        assert text in errors[0], errors[0]


@pytest.mark.parametrize("tamper, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_score_refuses_bad_model_folder(tamper, expected, truth_surrogate_dir, users_csv, tmp_path):
    folder, marker, out_dir = tmp_path / "surrogate", tmp_path / "pwned", tmp_path / "out"
    shutil.copytree(truth_surrogate_dir, folder)
    tamper(folder, marker)
    proc = bayeslift("score", "--model", str(folder), "--input", str(users_csv), "--output", str(out_dir / "pred.csv"),
                     "--quiet")
    assert_refused(proc, expected)
    assert not marker.exists(), "the model folder ran code"
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_serve_refuses_malicious_folder_before_listening(truth_surrogate_dir, tmp_path):
    folder, marker = tmp_path / "surrogate", tmp_path / "pwned"
    shutil.copytree(truth_surrogate_dir, folder)
    replace_file(folder, "spend_scaler.pkl", pickle.dumps(RunsShell(marker)))
    proc = bayeslift("serve", "--model", str(folder), "--port", str(free_port()))
    assert_refused(proc, ["spend_scaler.pkl", "system", "not plain data"])
    assert not marker.exists()
    assert "Uvicorn running" not in proc.stderr


@pytest.mark.parametrize("umask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_outputs_honour_umask(umask, file_mode, dir_mode, truth_surrogate_dir, users_csv, tmp_path):
    folder, scored = tmp_path / "surrogate", tmp_path / "out" / "pred.csv"
    resave = ("import sys; from bayeslift.surrogate import load_surrogate, save_surrogate; "
              "s, e, _ = load_surrogate(sys.argv[1]); save_surrogate(sys.argv[2], s, e, fidelity={})")
    subprocess.run([str(VENV_BIN / "python"), "-c", resave, str(truth_surrogate_dir), str(folder)], check=True,
                   env=PROCESS_ENV, timeout=CLI_TIMEOUT, preexec_fn=lambda: os.umask(umask))
    proc = bayeslift("score", "--model", str(folder), "--input", str(users_csv), "--output", str(scored), "--quiet",
                     umask=umask)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(folder.stat().st_mode) == dir_mode
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [*folder.iterdir(), scored]}
    assert modes == {name: file_mode for name in [*FILES, "manifest.json", "pred.csv"]}


def test_summary_refuses_non_finite_values(tmp_path, truth_surrogate_dir):
    ate = tmp_path / "ate.json"
    ate.write_text(json.dumps({"ate_mean": float("nan"), "ate_q05": 0.0, "ate_q95": 1.0, "prob_positive": 0.9,
                               "n_users": 3}))
    diagnostics = tmp_path / "diagnostics.json"
    diagnostics.write_text(json.dumps({"passed": True, "problems": []}))
    predictions = tmp_path / "pred.csv"
    predictions.write_text("customer_id,uplift,uplift_lower\n1,0.5,0.1\n2,0.2,-0.1\n")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"fidelity": {"holdout": {"r2_uplift": 0.99}}}))
    out = tmp_path / "summary.json"
    with pytest.raises(DataValidationError, match=r"ate.json: non-finite value\(s\) at ate.ate_mean"):
        write_summary(ate, diagnostics, manifest, predictions, out)
    assert not out.exists() and list(tmp_path.glob(".summary.json*")) == []
