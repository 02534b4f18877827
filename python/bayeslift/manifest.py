"""The model folder's layout and its manifest: sha256 of every file, package versions and training facts.

Loading reads a model folder only through :func:`read_verified`: the manifest must list exactly the files
the loader reads, each a regular file inside the folder whose bytes hash to the listed sha256, and the
loader parses those very bytes (never the file a second time). Pickled artifacts are read back with
:func:`plain_unpickle`, which builds plain data only and never imports or calls anything.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import platform
import re
import reprlib
import stat
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

MANIFEST = "manifest.json"
CHECKPOINT = "surrogate_nn.pth"
FEATURE_COLUMNS = "feature_columns.pkl"
SCALER = "spend_scaler.pkl"
#: Every file of a surrogate folder besides the manifest; the loader reads each, so each must be listed.
SURROGATE_FILES = (CHECKPOINT, FEATURE_COLUMNS, SCALER)
MAX_MANIFEST_BYTES = 1 << 20  # a real manifest is a few KB; refuse to parse a huge one
MAX_MODEL_FILE_BYTES = 1 << 30  # a surrogate's files are KBs to MBs; never read gigabytes to hash them
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
RETRAIN = ("written by an older bayeslift or not by bayeslift; retrain (snakemake --forcerun surrogate_model) "
           "to rebuild the model folder")


class ModelArtifactError(RuntimeError):
    """A model folder is missing, tampered with, truncated or not what this bayeslift writes."""


class ManifestError(ModelArtifactError):
    """A model folder's files do not match its manifest."""


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


def _read_regular_file(path: Path, what: str, limit: int | None = None) -> bytes:
    """The bytes of ``path``, refusing anything but a regular file (a symlink, device or fifo could point
    outside the folder or never end: /dev/zero). lstat names the problem; the fstat after an O_NOFOLLOW,
    O_NONBLOCK open closes the gap where the file is swapped in between."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        raise ManifestError(f"{path}: the {what} is missing") from None
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read the {what} ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        kind = "a symlink" if stat.S_ISLNK(mode) else "a folder" if stat.S_ISDIR(mode) else "a special file"
        raise ManifestError(f"{path}: the {what} is {kind}, not a regular file; model folders hold regular files only")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read the {what} ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as fh:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            raise ManifestError(f"{path}: the {what} is not a regular file")
        if limit is not None and opened.st_size > limit:
            raise ManifestError(f"{path}: the {what} is over {limit} bytes; not written by bayeslift")
        return fh.read()


def _read_manifest(directory: Path) -> dict:
    if not directory.is_dir():
        problem = "not a folder" if directory.exists() else "model folder not found"
        raise ManifestError(f"{directory}: {problem}; give the folder training wrote (results/surrogate)")
    path = directory / MANIFEST
    if not os.path.lexists(path):
        raise ManifestError(f"{path}: no manifest; is {directory} a bayeslift surrogate directory?")
    raw = _read_regular_file(path, "manifest", MAX_MANIFEST_BYTES)
    if not raw.strip():
        raise ManifestError(f"{path}: the manifest is empty")
    try:
        manifest = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError; nesting too deep
        raise ManifestError(f"{path}: the manifest is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise ManifestError(f"{path}: the manifest must be a JSON object, found {type(manifest).__name__}")
    return manifest


def _check_listing(path: Path, files, required: tuple[str, ...]) -> None:
    """``files`` must map exactly the ``required`` plain file names to sha256 hex digests."""
    if not isinstance(files, dict):
        raise ManifestError(f"{path}: 'files' must map file names to sha256 digests, found {type(files).__name__}")
    for name, digest in files.items():
        if not name or name in (".", "..") or os.path.basename(name) != name or "\\" in name or "\0" in name:
            raise ManifestError(f"{path}: listed file {reprlib.repr(name)} is not a plain file name inside the "
                                "model folder")
        if not isinstance(digest, str) or not SHA256_HEX.fullmatch(digest):
            raise ManifestError(f"{path}: the sha256 of {name} must be 64 lowercase hex digits, "
                                f"found {reprlib.repr(digest)}")
    missing = [name for name in required if name not in files]
    if missing:
        raise ManifestError(f"{path}: does not list {', '.join(missing)}; the loader reads every one of "
                            f"{', '.join(required)}, so each must be hashed")
    extra = sorted(set(files) - set(required))
    if extra:
        raise ManifestError(f"{path}: lists unknown file(s) {reprlib.repr(extra)[1:-1]}; a surrogate folder holds "
                            f"{', '.join(required)} only")


def read_verified(directory: str | Path, required: tuple[str, ...] = SURROGATE_FILES) -> tuple[dict, dict[str, bytes]]:
    """The manifest and the verified bytes of each ``required`` file; raise ManifestError on any mismatch."""
    directory = Path(directory)
    manifest = _read_manifest(directory)
    path = directory / MANIFEST
    if "files" not in manifest:
        raise ManifestError(f"{path}: the manifest has no 'files' entry")
    _check_listing(path, manifest["files"], tuple(required))
    contents = {}
    for name in required:
        target = directory / name
        data = _read_regular_file(target, "model file listed in the manifest", MAX_MODEL_FILE_BYTES)
        actual, expected = hashlib.sha256(data).hexdigest(), manifest["files"][name]
        if actual != expected:
            raise ManifestError(f"{target}: sha256 {actual[:12]}... does not match the manifest's {expected[:12]}...")
        contents[name] = data
    return manifest, contents


def verify_manifest(directory: str | Path, required: tuple[str, ...] = SURROGATE_FILES) -> dict:
    """Return the manifest after checking it lists exactly ``required`` and every hash matches."""
    return read_verified(directory, required)[0]


class _GlobalRefused(Exception):
    def __init__(self, module: str, name: str):
        super().__init__(f"{module}.{name}")


class PlainUnpickler(pickle.Unpickler):
    """Refuses every global, so only what pickle builds itself comes out: dict, list, tuple, set, str,
    bytes, int, float, bool and None. No class is imported and nothing is called."""

    def find_class(self, module, name):
        raise _GlobalRefused(module, name)


def plain_unpickle(path: Path, data: bytes):
    """Plain data from pickled ``data`` (read from ``path``); ModelArtifactError for anything else."""
    stream = io.BytesIO(data)
    try:
        value = PlainUnpickler(stream).load()
    except _GlobalRefused as exc:
        raise ModelArtifactError(f"{path}: holds the Python object {exc}, not plain data: {RETRAIN}") from None
    except Exception as exc:  # pickle raises many types on truncated or garbage input
        raise ModelArtifactError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc}); {RETRAIN}") from None
    if stream.tell() != len(data):
        raise ModelArtifactError(f"{path}: {len(data) - stream.tell()} stray bytes after the pickle; {RETRAIN}")
    return value


def model_digest(manifest: dict) -> str:
    """One sha256 naming a model version: the hash of its sorted file hashes."""
    joined = "".join(f"{k}:{v};" for k, v in sorted(manifest["files"].items()))
    return hashlib.sha256(joined.encode()).hexdigest()
