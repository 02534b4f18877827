"""Save and load a surrogate folder.

Files (the seed's names): ``surrogate_nn.pth`` (a plain dict: model args, state dicts, output scales;
loaded with ``weights_only=True``), ``feature_columns.pkl`` (a dict: feature spec and encoded column order),
``spend_scaler.pkl`` (a dict of the fitted StandardScaler's numbers, not the sklearn object) and
``manifest.json`` (sha256 of each, versions, training config, fidelity, and ``targeting``: quantiles of the
surrogate's predicted uplift on the holdout users, from which the ``top_k`` rule's threshold is read).

A model folder is untrusted input: loading reads only bytes the manifest vouches for
(:func:`~bayeslift.manifest.read_verified`), unpickles without importing anything
(:func:`~bayeslift.manifest.plain_unpickle`; the checkpoint through :mod:`.torchzip`, without torch, and only
what that reader does not know through ``torch.load(weights_only=True)``), checks every value's type and shape,
and turns each problem into one :class:`~bayeslift.manifest.ModelArtifactError` naming the file. Loading
imports neither torch nor scikit-learn for a folder this bayeslift wrote.
"""
from __future__ import annotations

import dataclasses
import io
import json
import math
import pickle
import re
import reprlib
import shutil
import sys
from pathlib import Path

import numpy as np

from ..data import OUTCOME_TYPES, FeatureSpec
from ..features import FeatureEncoder, FittedScaler, arm_inputs
from ..io import make_temp_dir
from ..manifest import (CHECKPOINT, FEATURE_COLUMNS, MANIFEST, RETRAIN, SCALER, SURROGATE_FILES, ModelArtifactError,
                        plain_unpickle, read_verified, write_manifest)
from ..policy import uplift_quantiles
from .predict import Surrogate
from .torchzip import Unsupported, read_checkpoint

FORMAT = "bayeslift-surrogate/2"  # the folder's (manifest.json); /2: the pickles hold plain data only
CHECKPOINT_FORMAT = "bayeslift-surrogate/1"  # surrogate_nn.pth's dict, unchanged since /1
SCALER_FORMAT = "bayeslift-standard-scaler/1"
SCALER_KEYS = {"format", "feature_names", "mean", "scale", "var", "n_samples_seen"}
CHECKPOINT_KEYS = {"format", "model_args", "spend_net", "interval_net", "spend_scale", "uplift_scale",
                   "outcome_type", "outcome_loc"}
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format; the legacy raw-pickle format is refused


def scaler_to_plain(scaler, feature_names: list[str]) -> dict:
    """The numbers of a fitted StandardScaler as plain Python types (what spend_scaler.pkl holds)."""
    return {
        "format": SCALER_FORMAT,
        "feature_names": list(feature_names),
        "mean": [float(v) for v in scaler.mean_],
        "scale": [float(v) for v in scaler.scale_],
        "var": [float(v) for v in scaler.var_],
        "n_samples_seen": int(scaler.n_samples_seen_),
    }


def targeting_facts(surrogate: Surrogate, x: np.ndarray, users: str) -> dict:
    """The manifest's ``targeting`` entry: quantiles of ``surrogate``'s predicted uplift on encoded users ``x``
    (the holdout), so that ``policy.top_k`` becomes a threshold each user can be compared with alone."""
    pred = surrogate.predict_encoded(x)
    # several arms: the best arm's uplift (top_k over arms is not a rule yet; the quantiles describe the users)
    uplift = pred["uplift"] if "uplift" in pred else np.max([pred[f"uplift_{a}"] for a in surrogate.arm_names], axis=0)
    return {"users": users, "n_users": int(len(uplift)), "uplift_quantiles": uplift_quantiles(uplift)}


def save_surrogate(directory: str | Path, surrogate: Surrogate, encoder: FeatureEncoder, **facts) -> dict:
    """Write the surrogate directory atomically (built beside it, then swapped in); return the manifest."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    import torch

    staging = make_temp_dir(directory.parent, prefix=f".{directory.name}.")
    try:
        checkpoint = {
            "format": CHECKPOINT_FORMAT,
            "model_args": {
                "n_inputs": surrogate.spend_net.net[0].in_features,
                "hidden": surrogate.spend_net.net[0].out_features,
            },
            "spend_net": surrogate.spend_net.state_dict(),
            "interval_net": surrogate.interval_net.state_dict(),
            "spend_scale": float(surrogate.spend_scale),
            "uplift_scale": float(surrogate.uplift_scale),
            "outcome_type": surrogate.link.outcome_type,
            "outcome_loc": float(surrogate.link.loc),
        }
        torch.save(checkpoint, staging / CHECKPOINT)
        # A JSON round trip leaves plain types only (numpy scalars would pickle as globals the loader refuses).
        spec = json.loads(json.dumps(encoder.spec.to_dict()))
        with open(staging / FEATURE_COLUMNS, "wb") as fh:
            pickle.dump({"columns": encoder.columns, "spec": spec}, fh)
        with open(staging / SCALER, "wb") as fh:
            pickle.dump(scaler_to_plain(encoder.scaler, encoder.spec.numeric), fh)
        manifest = write_manifest(staging, list(SURROGATE_FILES), format=FORMAT, **facts)
        if directory.exists():
            shutil.rmtree(directory)
        staging.rename(directory)
        return manifest
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def _is_str_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _is_finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _finite_floats(path: Path, name: str, value, length: int) -> np.ndarray:
    if not (isinstance(value, list) and len(value) == length and all(_is_finite_number(v) for v in value)):
        raise ModelArtifactError(f"{path}: '{name}' must be a list of {length} finite numbers; {RETRAIN}")
    return np.asarray(value, dtype=np.float64)


#: feature_columns.pkl's spec entries this loader reads, and the test each value must pass.
SPEC_CHECKS = {
    "id": lambda v: isinstance(v, str),
    "treatment": lambda v: isinstance(v, str),
    "outcome": lambda v: isinstance(v, str),
    "numeric": _is_str_list,
    "categorical": _is_str_list,
    "log1p": _is_str_list,
    "levels": lambda v: isinstance(v, dict) and all(isinstance(k, str) and _is_str_list(x) for k, x in v.items()),
    "ranges": lambda v: isinstance(v, dict) and all(
        isinstance(k, str) and isinstance(x, list) and len(x) == 2 and all(_is_finite_number(b) for b in x)
        for k, x in v.items()),
    "outcome_type": lambda v: v in OUTCOME_TYPES,
    "control": lambda v: v is None or isinstance(v, str),
    "arms": _is_str_list,
}


def _feature_spec(path: Path, columns) -> FeatureSpec:
    """The FeatureSpec of feature_columns.pkl, after checking every value and the column order."""
    if not (isinstance(columns, dict) and set(columns) == {"columns", "spec"} and isinstance(columns["spec"], dict)):
        raise ModelArtifactError(f"{path}: must hold a dict with 'columns' and 'spec'; {RETRAIN}")
    spec_dict = columns["spec"]
    unknown = sorted(set(spec_dict) - {f.name for f in dataclasses.fields(FeatureSpec)}, key=str)
    bad = [key for key, check in SPEC_CHECKS.items() if key in spec_dict and not check(spec_dict[key])]
    if unknown or bad:
        raise ModelArtifactError(f"{path}: feature spec has unknown entries {reprlib.repr(unknown)} or malformed "
                                 f"{bad}; {RETRAIN}")
    try:
        spec = FeatureSpec.from_dict(spec_dict)
    except TypeError as exc:  # a required entry missing
        raise ModelArtifactError(f"{path}: incomplete feature spec ({exc}); {RETRAIN}") from None
    if not spec.numeric or any(c not in spec.levels for c in spec.categorical):
        raise ModelArtifactError(f"{path}: feature spec lacks numeric features or a categorical's levels; {RETRAIN}")
    # The scoring bound needs a training range for every numeric feature, and only for those.
    if set(spec.ranges) != set(spec.numeric) or any(low > high for low, high in spec.ranges.values()):
        raise ModelArtifactError(f"{path}: feature spec's training ranges must be [min, max] for exactly the numeric "
                                 f"features {spec.numeric}; {RETRAIN}")
    expected = [*arm_inputs(spec), *spec.numeric,
                *(f"{c}={level}" for c in spec.categorical for level in spec.levels[c])]
    if columns["columns"] != expected:
        raise ModelArtifactError(f"{path}: column order does not match its feature spec")
    return spec


def _scaler(path: Path, plain, spec: FeatureSpec) -> FittedScaler:
    """The fitted scaler's numbers of spend_scaler.pkl."""
    if not (isinstance(plain, dict) and set(plain) == SCALER_KEYS and plain["format"] == SCALER_FORMAT):
        found = reprlib.repr(sorted(plain, key=str)) if isinstance(plain, dict) else type(plain).__name__
        raise ModelArtifactError(f"{path}: not a {SCALER_FORMAT} dict of {sorted(SCALER_KEYS)} (found {found}); "
                                 f"{RETRAIN}")
    if plain["feature_names"] != spec.numeric:
        raise ModelArtifactError(f"{path}: scales {reprlib.repr(plain['feature_names'])}, but the model's numeric "
                                 f"features are {spec.numeric!r}")
    n = len(spec.numeric)
    scaler = FittedScaler()
    scaler.mean_ = _finite_floats(path, "mean", plain["mean"], n)
    scaler.scale_ = _finite_floats(path, "scale", plain["scale"], n)
    scaler.var_ = _finite_floats(path, "var", plain["var"], n)
    seen = plain["n_samples_seen"]
    if (scaler.scale_ <= 0).any() or (scaler.var_ < 0).any() or not (
            isinstance(seen, int) and not isinstance(seen, bool) and seen >= 1):
        raise ModelArtifactError(f"{path}: scale must be > 0, var >= 0 and n_samples_seen a count >= 1; {RETRAIN}")
    scaler.n_samples_seen_, scaler.n_features_in_ = seen, n
    return scaler


def _torch_load(path: Path, data: bytes) -> dict:
    """torch.load(weights_only=True) of verified bytes, with torch's many failure types made one clear error."""
    import torch

    try:
        checkpoint = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's message advises weights_only=False, which would run whatever the file holds: never relay it.
        refused = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f"the Python global {refused.group(1)}" if refused else "objects that are not weights"
        raise ModelArtifactError(f"{path}: holds {what}, which a weights file must not hold (nothing was run); "
                                 f"{RETRAIN}") from None
    except Exception as exc:  # RuntimeError, EOFError, KeyError, zipfile errors... on truncated or garbage files
        first_line = (str(exc).splitlines() or [""])[0].split(". ")[0]
        raise ModelArtifactError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {first_line}); "
                                 f"truncated or {RETRAIN}") from None
    return checkpoint


def _is_tensor(value) -> bool:
    torch = sys.modules.get("torch")  # imported only when torch.load read the checkpoint
    return isinstance(value, np.ndarray) or (torch is not None and isinstance(value, torch.Tensor))


def _network(path: Path, state, n_inputs: int, hidden: int, n_outputs: int, name: str) -> list[np.ndarray]:
    """A network's [first weight, first bias, last weight, last bias] (float32 arrays), checked."""
    # Shapes are compared before the network is built: a tampered `hidden` must not allocate gigabytes.
    expected = {"net.0.weight": (hidden, n_inputs), "net.0.bias": (hidden,), "net.2.weight": (n_outputs, hidden),
                "net.2.bias": (n_outputs,)}
    shapes = {k: tuple(v.shape) for k, v in state.items() if _is_tensor(v)} if isinstance(state, dict) else {}
    if shapes != expected:
        raise ModelArtifactError(f"{path}: {name} weights have shapes {reprlib.repr(shapes)}, not the {expected} of "
                                 "its model_args")
    if all(isinstance(v, np.ndarray) for v in state.values()):  # torchzip's float32 arrays
        if len(state) != len(expected):
            raise Unsupported("entries besides the weights")  # torch's load_state_dict names them
        layers = [state[k] for k in expected]
    else:
        from .model import SimpleNN

        net = SimpleNN(n_inputs, hidden, n_outputs)
        try:
            net.load_state_dict(state)
        except (RuntimeError, TypeError, ValueError, KeyError, AttributeError) as exc:
            detail = " ".join(str(exc).split())
            raise ModelArtifactError(f"{path}: {name} weights do not fit the network ({detail})") from None
        first, last = net.net[0], net.net[2]
        layers = [t.detach().numpy() for t in (first.weight, first.bias, last.weight, last.bias)]
    if not all(np.isfinite(a).all() for a in layers):
        raise ModelArtifactError(f"{path}: {name} has non-finite weights")
    return layers


def _surrogate(path: Path, checkpoint: dict, n_inputs: int, arm_names: list[str]) -> Surrogate:
    """The networks and output scales of a checkpoint whose first layer takes ``n_inputs`` encoded columns, the
    first ``len(arm_names)`` (at least 1) the arm inputs."""
    n_arms = max(1, len(arm_names))
    args = checkpoint["model_args"]
    if not (isinstance(args, dict) and args.get("n_inputs") == n_inputs and isinstance(args.get("hidden"), int)
            and not isinstance(args["hidden"], bool) and args["hidden"] >= 1):
        raise ModelArtifactError(f"{path}: model_args {reprlib.repr(args)} do not fit the {n_inputs} encoded "
                                 f"columns of {FEATURE_COLUMNS}")
    spend_layers = _network(path, checkpoint["spend_net"], n_inputs, args["hidden"], 1, "spend_net")
    interval_layers = _network(path, checkpoint["interval_net"], n_inputs - n_arms, args["hidden"], 2 * n_arms,
                               "interval_net")
    scales = [checkpoint[k] for k in ("spend_scale", "uplift_scale", "outcome_loc")]
    if not (all(_is_finite_number(v) for v in scales) and scales[0] > 0 and scales[1] > 0
            and checkpoint["outcome_type"] in OUTCOME_TYPES):
        raise ModelArtifactError(f"{path}: output scales must be finite (spend_scale, uplift_scale > 0) and "
                                 f"outcome_type one of {list(OUTCOME_TYPES)}")
    return Surrogate.from_layers(spend_layers, interval_layers, float(scales[0]), float(scales[1]),
                                 checkpoint["outcome_type"], float(scales[2]), arm_names=arm_names)


def _checked_checkpoint(path: Path, checkpoint) -> dict:
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        found = checkpoint.get("format") if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise ModelArtifactError(f"{path}: checkpoint format {reprlib.repr(found)}, expected {CHECKPOINT_FORMAT!r}; "
                                 f"{RETRAIN}")
    missing = sorted(CHECKPOINT_KEYS - set(checkpoint))
    if missing:
        raise ModelArtifactError(f"{path}: checkpoint lacks {missing}; {RETRAIN}")
    return checkpoint


def _checkpoint_surrogate(path: Path, data: bytes, n_inputs: int, arm_names: list[str]) -> Surrogate:
    """The surrogate of surrogate_nn.pth's verified bytes: through torchzip (no torch) when it knows every
    part of the file, else through torch.load, whose reading and errors are then those of earlier versions."""
    if not data.startswith(ZIP_MAGIC):
        raise ModelArtifactError(f"{path}: not a torch checkpoint (no zip header); truncated or {RETRAIN}")
    try:
        return _surrogate(path, _checked_checkpoint(path, read_checkpoint(data)), n_inputs, arm_names)
    except Unsupported:
        return _surrogate(path, _checked_checkpoint(path, _torch_load(path, data)), n_inputs, arm_names)


def _check_targeting(path: Path, manifest: dict) -> None:
    """A ``targeting`` entry, when present, must be a dict whose quantiles are finite and non-decreasing."""
    if "targeting" not in manifest:
        return  # an older model: every rule but top_k still works (the scorer says so for top_k)
    entry = manifest["targeting"]
    q = entry.get("uplift_quantiles") if isinstance(entry, dict) else None
    n = entry.get("n_users") if isinstance(entry, dict) else None
    if not (isinstance(q, list) and len(q) >= 2 and all(_is_finite_number(v) for v in q)
            and all(a <= b for a, b in zip(q, q[1:])) and isinstance(n, int) and not isinstance(n, bool) and n >= 1):
        raise ModelArtifactError(f"{path}: 'targeting' must hold n_users (a count >= 1) and uplift_quantiles (at "
                                 f"least 2 finite, non-decreasing numbers); {RETRAIN}")


def load_surrogate(directory: str | Path) -> tuple[Surrogate, FeatureEncoder, dict]:
    """Verify the manifest, then rebuild the surrogate and its feature encoder (ModelArtifactError if anything
    in the folder is missing, tampered with or not what this bayeslift writes)."""
    directory = Path(directory)
    manifest, contents = read_verified(directory, SURROGATE_FILES)
    if manifest.get("format") != FORMAT:
        found = reprlib.repr(manifest.get("format"))
        raise ModelArtifactError(f"{directory / MANIFEST}: model format {found}, expected {FORMAT!r}; {RETRAIN}")
    _check_targeting(directory / MANIFEST, manifest)
    columns_path, scaler_path, checkpoint_path = (directory / n for n in (FEATURE_COLUMNS, SCALER, CHECKPOINT))
    spec = _feature_spec(columns_path, plain_unpickle(columns_path, contents[FEATURE_COLUMNS]))
    encoder = FeatureEncoder(spec, _scaler(scaler_path, plain_unpickle(scaler_path, contents[SCALER]), spec))
    arm_names = spec.arm_slugs if len(spec.arms) > 1 else []
    surrogate = _checkpoint_surrogate(checkpoint_path, contents[CHECKPOINT], len(encoder.columns), arm_names)
    return surrogate, encoder, manifest
