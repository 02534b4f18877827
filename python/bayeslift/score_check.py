"""The check_score_file step: the users to score, checked against the prepared feature spec before any fit.

A bad score file then fails in seconds instead of after the MCMC and the surrogate. The checks are the
scoring ones (``validate_score_frame``: columns, numbers, training categories, the training-range bound)
plus unique ids across the whole file, so sharded scoring need not compare ids across shards.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from .data import DataValidationError, FeatureSpec, validate_score_frame
from .io import write_text_atomic
from .manifest import sha256_file
from .scoring import read_chunks, unique_ids

log = logging.getLogger("bayeslift")


def check_score_file(spec_json, users, out_json, chunk_size: int, stale_outputs=(), results_dir="results") -> dict:
    """Check every user of ``users`` (CSV or Parquet) in chunks and write ``out_json``: rows, columns, size
    and sha256 of the file checked. ``stale_outputs`` (see ``remove_stale_outputs``) are removed first."""
    remove_stale_outputs(stale_outputs, results_dir)
    spec = FeatureSpec.from_json(spec_json)
    users = Path(users)
    ids = unique_ids(users, spec, chunk_size)
    rows, columns = 0, None
    for chunk in read_chunks(users, spec, chunk_size):
        validate_score_frame(chunk, spec, str(users), offset=rows)
        ids.add(chunk[spec.id], rows)
        rows += len(chunk)
        columns = len(chunk.columns)
    if rows == 0:
        raise DataValidationError(f"{users}: no users to score")
    marker = {"file": str(users), "rows": rows, "columns": columns, "bytes": users.stat().st_size,
              "sha256": sha256_file(users)}
    write_text_atomic(json.dumps(marker, indent=2), out_json)
    log.info("checked %d users in %s", rows, users)
    return marker


def remove_stale_outputs(paths, results_dir) -> list[Path]:
    """Remove ``paths`` (files, or folders with what they hold) left by an earlier run, so that a run that
    fails before rebuilding them leaves none that could pass for its own. Refuses any path not strictly
    inside ``results_dir``; a symbolic link is removed itself, never what it points to."""
    root = Path(os.path.abspath(results_dir))
    removed = []
    for path in map(Path, paths):
        target = Path(os.path.abspath(path))  # abspath, not resolve: a link is judged by where it lies
        # the folder holding it must resolve inside the results too: a linked subfolder could lead anywhere
        if root not in target.parents or Path(os.path.realpath(root)) not in [
                Path(os.path.realpath(target.parent)), *Path(os.path.realpath(target.parent)).parents]:
            raise ValueError(f"{path}: refusing to remove a path outside {root}")
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.is_dir():
            shutil.rmtree(target)
        else:
            continue
        removed.append(target)
        log.info("removed %s from an earlier run: this run rebuilds it", path)
    return removed
