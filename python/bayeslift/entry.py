"""Glue for the Snakemake entry scripts: log to the rule's log file, turn known failures into one line."""
from __future__ import annotations

import logging
import sys

from .data import DataValidationError
from .manifest import ModelArtifactError
from .surrogate.fidelity import SurrogateFidelityError

# ModelArtifactError covers ManifestError: every problem with a model folder's files.
USER_ERRORS = (DataValidationError, ModelArtifactError, SurrogateFidelityError)


def run_step(log_path: str, step, *args, **kwargs):
    """Call ``step(*args, **kwargs)`` with logging to ``log_path``; exit 1 with a clear message on bad input."""
    logger = logging.getLogger("bayeslift")
    logger.setLevel(logging.INFO)
    handler = logging.FileHandler(log_path, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    try:
        return step(*args, **kwargs)
    except USER_ERRORS as exc:
        logger.error("%s", exc)
        print(f"bayeslift error: {exc}", file=sys.stderr)
        sys.exit(1)
    finally:
        logger.removeHandler(handler)
        handler.close()
