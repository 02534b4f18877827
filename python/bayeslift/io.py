"""Atomic file writes: a failed step never leaves a half-written output behind.

Temporary files and folders are created with mode 0666 / 0777 and the kernel applies the umask, so outputs
get the permissions any other new file would (tempfile.mkstemp and mkdtemp force 0600 / 0700, which hid
models and predictions from a team-mate's account).
"""
from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Iterator

TEMP_ATTEMPTS = 100


def _create_beside(parent: Path, prefix: str, suffix: str, make) -> Path:
    """``make(path)`` on a fresh random name in ``parent``; retried while the name is taken."""
    for _ in range(TEMP_ATTEMPTS):
        path = parent / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            make(path)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"{parent}: no free temporary name after {TEMP_ATTEMPTS} tries")


def make_temp_file(parent: str | os.PathLike, prefix: str, suffix: str = ".tmp") -> Path:
    """A new empty file in ``parent`` (0666 minus the umask), never an existing one (O_EXCL)."""
    return _create_beside(Path(parent), prefix, suffix,
                          lambda p: os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)))


def make_temp_dir(parent: str | os.PathLike, prefix: str) -> Path:
    """A new empty folder in ``parent`` (0777 minus the umask)."""
    return _create_beside(Path(parent), prefix, "", lambda p: os.mkdir(p, 0o777))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = make_temp_file(target.parent, prefix=f".{target.name}.")
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_csv_atomic(frame, path: str | os.PathLike) -> None:
    """Write a pandas frame as CSV with full float precision, atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.17g")


def write_text_atomic(text: str, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
