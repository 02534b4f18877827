"""Scoring at the I/O limit (issue 24): a model folder loads without torch or scikit-learn, the Arrow path scores a
CSV without pandas or scipy, and each stand-in computes what it replaces to the last bit."""
from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import PROCESS_ENV
from bayeslift.simulate import simulate_new_users
from bayeslift.surrogate.checkpoint import load_surrogate
from bayeslift.surrogate.torchzip import Unsupported, read_checkpoint

HEAVY = ("torch", "sklearn", "scipy", "pandas")


def test_score_imports_no_torch_sklearn_scipy_or_pandas(truth_surrogate_dir, tmp_path):
    users, _ = simulate_new_users(300, seed=8)
    users.to_csv(tmp_path / "users.csv", index=False)
    script = (
        "import json, sys\n"
        "from bayeslift.scoring import score_file\n"
        "score_file(sys.argv[1], sys.argv[2], sys.argv[3], progress=False)\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n")
    proc = subprocess.run([sys.executable, "-c", script, str(truth_surrogate_dir), str(tmp_path / "users.csv"),
                           str(tmp_path / "scored.csv")], capture_output=True, text=True, env=PROCESS_ENV, check=True)
    assert json.loads(proc.stdout.splitlines()[-1]) == []


def test_torchzip_reads_what_torch_load_reads(truth_surrogate_dir):
    data = (truth_surrogate_dir / "surrogate_nn.pth").read_bytes()
    ours, theirs = read_checkpoint(data), torch.load(io.BytesIO(data), weights_only=True)
    assert set(ours) == set(theirs)
    for net in ("spend_net", "interval_net"):
        assert list(ours[net]) == list(theirs[net])
        for name, tensor in theirs[net].items():
            assert ours[net][name].dtype == np.float32
            assert np.array_equal(ours[net][name], tensor.numpy())
    assert {k: v for k, v in ours.items() if "net" not in k} == {k: v for k, v in theirs.items() if "net" not in k}


@pytest.mark.parametrize("obj", [{"w": torch.zeros(4, 4)[:, 1]}, {"w": torch.zeros(3, dtype=torch.float64)},
                                 {"w": torch.nn.Parameter(torch.zeros(2))}, {"f": print}])
def test_torchzip_leaves_anything_else_to_torch(obj):
    """A view, another dtype, a Parameter, a foreign global: Unsupported, and load_surrogate asks torch.load."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with pytest.raises(Unsupported):
        read_checkpoint(buffer.getvalue())


def test_loaded_networks_match_the_saved_ones(truth_surrogate_dir):
    surrogate, _, _ = load_surrogate(truth_surrogate_dir)
    state = torch.load(truth_surrogate_dir / "surrogate_nn.pth", weights_only=True)["spend_net"]
    for name, tensor in surrogate.spend_net.state_dict().items():
        assert torch.equal(tensor, state[name])


def test_policy_normal_functions_are_scipys():
    from scipy import stats

    from bayeslift.policy import Z_95, norm_ppf, norm_sf

    x = np.random.default_rng(0).normal(size=10_000) * 6
    x[:4] = [np.inf, -np.inf, np.nan, 0.0]
    assert Z_95 == stats.norm.ppf(0.95)
    assert np.array_equal(norm_sf(x), stats.norm.sf(x), equal_nan=True)
    assert all(norm_ppf(q) == stats.norm.ppf(q) for q in (0.95, 0.975, 0.995))


def test_arrow_na_strings_are_pandas():
    from pandas._libs.parsers import STR_NA_VALUES

    from bayeslift.arrow_users import NA_STRINGS

    assert set(NA_STRINGS) == STR_NA_VALUES


def test_arrow_id_hashes_tell_ids_apart_and_ignore_where_they_sit():
    import pyarrow as pa

    from bayeslift.arrow_users import IdHashes, id_hashes

    ids = ["a", "b", "ab", "ba", "a\0", "u1234567", "u12345678", "u1234567u1234567", "u1234567u1234568", "é" * 9]
    hashes = id_hashes(pa.array(ids))
    assert len(set(hashes.tolist())) == len(ids)  # lengths 1 to 18 bytes, words and padding told apart
    shifted = pa.array(["x", "yyyyyyyyyyy", *ids]).slice(2)  # same ids at other offsets into the data buffer
    assert np.array_equal(id_hashes(shifted), hashes)
    seen = IdHashes()
    seen.add(hashes[:4])
    seen.add(hashes[4:])
    assert seen.all_unique()
    seen.add(hashes[4:])
    seen.add(id_hashes(pa.array(["u1234567u1234568"])))
    assert not seen.all_unique()
