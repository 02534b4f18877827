"""Artifact manifests: sha256 of every file, package versions and training facts.

Scoring and serving call :func:`verify_manifest` before unpickling or loading anything from a model
directory, so a swapped or corrupted file is refused rather than executed.
"""
from __future__ import annotations

import hashlib
import json
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

MANIFEST = "manifest.json"


class ManifestError(RuntimeError):
    """A model directory's files do not match its manifest."""


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_versions(names=("bayeslift", "torch", "numpy", "pandas", "scikit-learn")) -> dict:
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def write_manifest(directory: str | Path, files: list[str], **facts) -> dict:
    """Hash ``files`` (names inside ``directory``) and write manifest.json beside them."""
    directory = Path(directory)
    manifest = {
        "files": {name: sha256_file(directory / name) for name in files},
        "versions": package_versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **facts,
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


def verify_manifest(directory: str | Path) -> dict:
    """Return the manifest after checking every listed file's sha256; raise ManifestError otherwise."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.exists():
        raise ManifestError(f"{path}: no manifest; is {directory} a bayeslift surrogate directory?")
    try:
        manifest = json.loads(path.read_text())
        files = manifest["files"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ManifestError(f"{path}: unreadable manifest ({exc})") from None
    for name, expected in files.items():
        target = directory / name
        if not target.exists():
            raise ManifestError(f"{target}: listed in the manifest but missing")
        actual = sha256_file(target)
        if actual != expected:
            raise ManifestError(f"{target}: sha256 {actual[:12]}... does not match the manifest's {expected[:12]}...")
    return manifest


def model_digest(manifest: dict) -> str:
    """One sha256 naming a model version: the hash of its sorted file hashes."""
    joined = "".join(f"{k}:{v};" for k, v in sorted(manifest["files"].items()))
    return hashlib.sha256(joined.encode()).hexdigest()
