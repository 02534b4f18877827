"""Checks for the tables R hands to Python, against the one declaration in ``boundary.yaml``.

R/bayeslift/R/boundary.R implements the same rules; tests feed both the same bad files.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .arms import arm_slug
from .data import DataValidationError, FeatureSpec, _lines, read_csv

SCHEMA_PATH = Path(__file__).with_name("boundary.yaml")


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    """The declaration: ``tables`` (per table, its columns) and ``outcome_bounds`` (per outcome type)."""
    return yaml.safe_load(Path(path).read_text())


def expected_columns(table: str, spec: FeatureSpec, schema: dict | None = None) -> list[dict]:
    """The declared columns of ``table`` with ``id``, ``features``, ``arm`` and ``per_arm`` resolved against ``spec``."""
    schema = schema or load_schema()
    declared = schema["tables"][table]["columns"]
    per_arm = [c for c in declared if "per_arm" in c]
    arms = [arm_slug(a) for a in spec.arms] if len(spec.arms) > 1 else []
    out = []
    for col in declared:
        if "per_arm" in col:
            if not arms:
                out.append({k: v for k, v in col.items() if k != "per_arm"})
            elif col is per_arm[0]:  # the arms' sets, one after another, where the first stood
                out += [{**{k: v for k, v in c.items() if k != "per_arm"}, "name": c["per_arm"].format(arm=a)}
                        for a in arms for c in per_arm]
        elif col["type"] == "expected_outcome":
            out.append({**col, "type": "number", **schema["outcome_bounds"][spec.outcome_type]})
        elif col["type"] == "features":
            out += [{"name": f, "type": "number"} for f in spec.numeric]
            out += [{"name": f, "type": "string", "allowed": spec.levels.get(f)} for f in spec.categorical]
        elif col["type"] == "arm":
            out.append({"name": col["name"], "type": "integer", "allowed": list(range(max(1, len(spec.arms)) + 1))})
        elif col["type"] == "id":
            out.append({**col, "name": spec.id})
        else:
            out.append(col)
    return out


def check_table(frame: pd.DataFrame, table: str, spec: FeatureSpec, source: str, schema: dict | None = None) -> None:
    """Raise DataValidationError if ``frame`` does not match the declared ``table``."""
    columns = expected_columns(table, spec, schema)
    names = [c["name"] for c in columns]
    if list(frame.columns) != names:
        raise DataValidationError(f"{source}: columns must be {names} (table {table}); found {list(frame.columns)}")
    for col in columns:
        name, values = col["name"], frame[col["name"]]
        missing = values.isna().to_numpy()
        if missing.any():
            raise DataValidationError(f"{source}: column '{name}' has missing values at {_lines(missing)}")
        if col["type"] in ("number", "integer"):
            numeric = pd.to_numeric(values, errors="coerce")
            bad = numeric.isna().to_numpy() | ~np.isfinite(numeric.to_numpy(dtype=float, na_value=np.nan))
            if col["type"] == "integer":
                bad |= ~bad & (numeric.fillna(0) % 1 != 0).to_numpy()
            if bad.any():
                raise DataValidationError(f"{source}: column '{name}' must be a finite {col['type']} at {_lines(bad)}")
            if "min" in col and (numeric < col["min"]).any():
                raise DataValidationError(f"{source}: column '{name}' must be >= {col['min']} at {_lines((numeric < col['min']).to_numpy())}")
            if "max" in col and (numeric > col["max"]).any():
                raise DataValidationError(f"{source}: column '{name}' must be <= {col['max']} at {_lines((numeric > col['max']).to_numpy())}")
            values = numeric
        allowed = col.get("allowed")
        if allowed is not None:
            if col["type"] == "string":
                outside = ~values.astype(str).isin([str(a) for a in allowed]).to_numpy()
            else:
                outside = ~values.isin(allowed).to_numpy()
            if outside.any():
                raise DataValidationError(f"{source}: column '{name}' must be one of {allowed} at {_lines(outside)}")


def read_table(path: str | Path, table: str, spec: FeatureSpec, schema: dict | None = None) -> pd.DataFrame:
    """Read a boundary CSV and check it; returns the frame."""
    frame = read_csv(path, text_columns=[spec.id, *spec.categorical])
    check_table(frame, table, spec, str(path), schema)
    return frame
