"""Save and load a surrogate directory.

Files (the seed's names): ``surrogate_nn.pth`` (a plain dict: model args, state dicts, output scales;
loadable with ``weights_only=True``), ``feature_columns.pkl`` (feature spec and encoded column order),
``spend_scaler.pkl`` (the fitted StandardScaler of numeric inputs) and ``manifest.json`` (sha256 of each,
versions, training config, fidelity). Loading verifies the manifest before reading anything else.
"""
from __future__ import annotations

import pickle
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

import torch

from ..data import FeatureSpec
from ..manifest import verify_manifest, write_manifest
from .model import FeatureEncoder, SimpleNN
from .train import Surrogate

CHECKPOINT = "surrogate_nn.pth"
FEATURE_COLUMNS = "feature_columns.pkl"
SCALER = "spend_scaler.pkl"
FORMAT = "bayeslift-surrogate/1"


def save_surrogate(directory: str | Path, surrogate: Surrogate, encoder: FeatureEncoder, **facts) -> dict:
    """Write the surrogate directory atomically (built beside it, then swapped in); return the manifest."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        checkpoint = {
            "format": FORMAT,
            "model_args": {
                "n_inputs": surrogate.spend_net.net[0].in_features,
                "hidden": surrogate.spend_net.net[0].out_features,
            },
            "spend_net": surrogate.spend_net.state_dict(),
            "interval_net": surrogate.interval_net.state_dict(),
            "spend_scale": surrogate.spend_scale,
            "uplift_scale": surrogate.uplift_scale,
            "outcome_type": surrogate.link.outcome_type,
            "outcome_loc": surrogate.link.loc,
        }
        torch.save(checkpoint, staging / CHECKPOINT)
        with open(staging / FEATURE_COLUMNS, "wb") as fh:
            pickle.dump({"columns": encoder.columns, "spec": asdict(encoder.spec)}, fh)
        with open(staging / SCALER, "wb") as fh:
            pickle.dump(encoder.scaler, fh)
        manifest = write_manifest(staging, [CHECKPOINT, FEATURE_COLUMNS, SCALER], format=FORMAT, **facts)
        if directory.exists():
            shutil.rmtree(directory)
        staging.rename(directory)
        return manifest
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def load_surrogate(directory: str | Path) -> tuple[Surrogate, FeatureEncoder, dict]:
    """Verify the manifest, then rebuild the surrogate and its feature encoder."""
    directory = Path(directory)
    manifest = verify_manifest(directory)
    checkpoint = torch.load(directory / CHECKPOINT, map_location="cpu", weights_only=True)
    if checkpoint.get("format") != FORMAT:
        raise ValueError(f"{directory / CHECKPOINT}: unknown checkpoint format {checkpoint.get('format')!r}")
    args = checkpoint["model_args"]
    spend_net = SimpleNN(args["n_inputs"], args["hidden"])
    spend_net.load_state_dict(checkpoint["spend_net"])
    interval_net = SimpleNN(args["n_inputs"] - 1, args["hidden"], 2)
    interval_net.load_state_dict(checkpoint["interval_net"])
    # Safe to unpickle: the manifest check above proved these are the files training wrote.
    with open(directory / FEATURE_COLUMNS, "rb") as fh:
        columns = pickle.load(fh)
    with open(directory / SCALER, "rb") as fh:
        scaler = pickle.load(fh)
    encoder = FeatureEncoder(FeatureSpec.from_dict(columns["spec"]), scaler)
    if encoder.columns != columns["columns"]:
        raise ValueError(f"{directory / FEATURE_COLUMNS}: column order does not match its feature spec")
    surrogate = Surrogate(spend_net, interval_net, checkpoint["spend_scale"], checkpoint["uplift_scale"],
                          checkpoint.get("outcome_type", "spend"), checkpoint.get("outcome_loc", 0.0))
    return surrogate, encoder, manifest
