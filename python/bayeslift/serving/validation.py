"""Request validation shared by the HTTP server and the Lambda handler.

Turns a request body into checked feature columns (numpy arrays, one per feature) plus the ids, or
raises :class:`RequestError` carrying the HTTP status and per-instance details (index and field).
Checks run per column with C-level operations (``set(map(type, ...))``, numpy conversions); the slow
per-element diagnosis only runs once a column is known to hold a bad value.
"""
from __future__ import annotations

import json
import math
import sys
from dataclasses import replace
from dataclasses import dataclass

import numpy as np
import orjson
import pandas as pd

from ..data import RANGE_SPAN, FeatureSpec, outside_training_range, range_message

MAX_DETAILS = 100  # error details listed per response; the message gives the full count


class RequestError(Exception):
    """A client's mistake: carries the HTTP status and a structured error body."""

    def __init__(self, status: int, code: str, message: str, details: list[dict] | None = None,
                 headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "details": self.details[:MAX_DETAILS]}}


def detail(index, field, problem: str) -> dict:
    return {"index": index, "field": field, "problem": problem}


class _NonFinite:
    """Stands in for a NaN / Infinity / -Infinity literal, which JSON does not allow."""

    __slots__ = ("literal",)

    def __init__(self, literal: str):
        self.literal = literal


class _HugeInt:
    """Stands in for an integer literal longer than Python's int-from-text limit (``sys.get_int_max_str_digits``):
    valid JSON, but no value this service can read or echo. Kept as a marker so it is reported on its field."""

    __slots__ = ("digits",)

    def __init__(self, digits: int):
        self.digits = digits


def _parse_int(text: str):
    try:
        return int(text)
    except ValueError:  # past the digit limit; raising it globally would let one request cost seconds of CPU
        return _HugeInt(len(text.lstrip("-")))


class _Missing:
    __slots__ = ()


MISSING = _Missing()


def parse_body(body: bytes, fast: bool = True) -> tuple[object, bool]:
    """Bytes -> (parsed JSON, whether it held NaN/Infinity literals); malformed JSON (or not UTF-8) is a 400.

    ``fast`` tries orjson first. It refuses NaN/Infinity and lone surrogates (the stdlib parser then
    decides) and reads integers beyond 64 bits as floats: callers re-parse with ``fast=False`` before
    reporting a validation error.
    """
    if not body or not body.strip():
        raise RequestError(400, "malformed_json", "request body is empty; send a JSON object")
    if fast:
        try:
            return orjson.loads(body), False
        except orjson.JSONDecodeError:
            pass
    seen = []

    def constant(literal: str) -> _NonFinite:
        seen.append(literal)
        return _NonFinite(literal)

    try:
        return json.loads(body, parse_constant=constant, parse_int=_parse_int), bool(seen)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        msg = str(exc) if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
        raise RequestError(400, "malformed_json", f"request body is not valid JSON ({msg})") from None


def _kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, _NonFinite):
        return value.literal
    if isinstance(value, _HugeInt):
        return f"an integer of {value.digits} digits"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "object"}.get(type(value), type(value).__name__)


def _number_problem(value, nonnegative: bool) -> str | None:
    if value is MISSING:
        return "required field is missing"
    if isinstance(value, _NonFinite):
        return f"must be a finite number, got {value.literal}"
    if isinstance(value, _HugeInt):
        return f"must be a finite number, got {_kind(value)}"
    if type(value) not in (int, float):
        return f"must be a number, got {_kind(value)}"
    try:
        x = float(value)
    except OverflowError:
        return "must be a finite number, got an integer too large for a float"
    if not math.isfinite(x):
        return "must be a finite number"
    if nonnegative and x < 0:
        return "must be >= 0 (the model takes log1p of it)"
    return None


def _numeric_column(values: list, field: str, nonnegative: bool, errors: list) -> np.ndarray | None:
    if set(map(type, values)) <= {int, float}:
        try:
            arr = np.array(values, dtype=np.float64)
        except OverflowError:
            arr = None
        if arr is not None and np.isfinite(arr).all() and not (nonnegative and (arr < 0).any()):
            return arr
    for i, v in enumerate(values):
        problem = _number_problem(v, nonnegative)
        if problem:
            errors.append(detail(i, field, problem))
    return None


def _categorical_column(values: list, field: str, levels: list[str] | None, errors: list) -> np.ndarray | None:
    allowed = set(levels) if levels is not None else None
    if set(map(type, values)) == {str} and (allowed is None or set(values) <= allowed):
        return np.array(values, dtype=object)
    for i, v in enumerate(values):
        if v is MISSING:
            errors.append(detail(i, field, "required field is missing"))
        elif type(v) is not str:
            errors.append(detail(i, field, f"must be a string, got {_kind(v)}"))
        elif allowed is not None and v not in allowed:
            errors.append(detail(i, field, f"unknown category {v[:50]!r}; allowed: {levels}"))
    return None


def _id_column(values: list, field: str, errors: list) -> list | None:
    if set(map(type, values)) <= {str, int} and "" not in values:
        return values
    for i, v in enumerate(values):
        if v is MISSING:
            errors.append(detail(i, field, "required field is missing"))
        elif v == "":  # as in a CSV, where an empty id is a missing one
            errors.append(detail(i, field, "id is empty"))
        elif isinstance(v, _HugeInt):
            errors.append(detail(i, field, f"an integer id may have at most {sys.get_int_max_str_digits()} "
                                           f"digits, got {_kind(v)}; send a long id as a string"))
        elif type(v) not in (str, int):
            errors.append(detail(i, field, f"must be a string or an integer, got {_kind(v)}"))
    return None


@dataclass
class ValidatedInstances:
    """Checked users: ids as sent, and one float64 / object array per feature (same order as sent)."""

    ids: list
    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.ids)

    def to_frame(self, spec: FeatureSpec) -> pd.DataFrame:
        """The users as the DataFrame the batch scorer sees (id column, then the features)."""
        frame = pd.DataFrame({c: self.columns[c] for c in spec.features})
        frame.insert(0, spec.id, self.ids)
        return frame


def validate_instances(payload: object, spec: FeatureSpec, max_instances: int,
                       non_finite: bool = False) -> ValidatedInstances:
    """Parsed body -> :class:`ValidatedInstances`, or :class:`RequestError` (422 / 413) with details.

    ``non_finite`` says the body held a NaN/Infinity literal (see :func:`parse_body`); one in a field the
    model reads is reported with its index and field, one anywhere else still fails the request.
    """
    if not isinstance(payload, dict):
        raise RequestError(422, "invalid_request", "the body must be a JSON object with an 'instances' list",
                           [detail(None, None, f"expected an object, got {_kind(payload)}")])
    instances = payload.get("instances", MISSING)
    if instances is MISSING:
        raise RequestError(422, "invalid_request", "'instances' is required",
                           [detail(None, "instances", "required field is missing")])
    if not isinstance(instances, list):
        raise RequestError(422, "invalid_request", "'instances' must be a list of user objects",
                           [detail(None, "instances", f"must be an array, got {_kind(instances)}")])
    if not instances:
        raise RequestError(422, "empty_instances", "'instances' is empty; send 1 or more users",
                           [detail(None, "instances", "must hold at least 1 user")])
    if len(instances) > max_instances:
        raise RequestError(413, "too_many_instances",
                           f"{len(instances)} instances exceed this server's maximum of {max_instances} per request",
                           [detail(None, "instances", f"at most {max_instances} instances per request")])
    if set(map(type, instances)) != {dict}:
        errors = [detail(i, None, f"each instance must be an object, got {_kind(v)}")
                  for i, v in enumerate(instances) if type(v) is not dict]
        raise _invalid(errors)

    errors: list[dict] = []
    ids = _id_column([u.get(spec.id, MISSING) for u in instances], spec.id, errors)
    columns = {}
    for col in spec.numeric:
        columns[col] = _numeric_column([u.get(col, MISSING) for u in instances], col, col in spec.log1p, errors)
    for col in spec.categorical:
        columns[col] = _categorical_column([u.get(col, MISSING) for u in instances], col,
                                           spec.levels.get(col), errors)
    range_errors = _beyond_training_range(columns, spec)
    if errors or range_errors:
        code = "invalid_instances" if errors else "out_of_range"
        raise _invalid(sorted(errors + range_errors, key=lambda d: d["index"]), code)
    if non_finite:
        raise RequestError(422, "invalid_instances", "NaN and Infinity are not valid JSON numbers",
                           [detail(None, None, "body holds a NaN or Infinity literal")])
    return ValidatedInstances(ids=ids, columns=columns)


def _beyond_training_range(columns: dict, spec: FeatureSpec) -> list[dict]:
    """One detail per value beyond the training range the model may extrapolate to (``data.RANGE_SPAN``).
    Columns that already failed are skipped; specs without ranges (older models) pass."""
    if not spec.ranges:
        return []
    checked = {c: r for c, r in spec.ranges.items() if columns.get(c) is not None}
    if len(checked) < len(spec.ranges):
        spec = replace(spec, ranges=checked)
    errors = []
    for col, mask in outside_training_range(columns, spec).items():
        problem = range_message(col, spec)
        errors += [detail(int(i), col, problem) for i in np.flatnonzero(mask)]
    return errors


def feature_bounds(spec: FeatureSpec) -> dict[str, dict]:
    """Numeric feature -> the request values it accepts, ``{"minimum", "maximum"}`` (inclusive), and its
    ``training_range``, on the scale clients send (log1p features mapped back with expm1)."""
    if not spec.ranges:
        return {}
    cols = list(spec.ranges)
    low, high = np.array([spec.ranges[c] for c in cols], dtype=np.float64).T
    span = RANGE_SPAN * (high - low)
    log1p = np.array([c in spec.log1p for c in cols])

    def unscale(x):  # the inverse of data.model_scale
        return np.where(log1p, np.expm1(x), x)

    bounds = np.stack([np.where(log1p, np.maximum(unscale(low - span), 0.0), low - span), unscale(high + span)])
    for _ in range(8):  # expm1 can round a bound just past the check: step it inward until accepted
        outside = outside_training_range({c: bounds[:, j] for j, c in enumerate(cols)}, spec)
        if not outside:
            break
        for col, mask in outside.items():
            j = cols.index(col)
            inward = np.array([np.inf, -np.inf])
            bounds[mask, j] = np.nextafter(bounds[mask, j], inward[mask])
    training = np.stack([unscale(low), unscale(high)])
    return {c: {"minimum": float(bounds[0, j]), "maximum": float(bounds[1, j]),
                "training_range": [float(training[0, j]), float(training[1, j])]} for j, c in enumerate(cols)}


def _invalid(errors: list[dict], code: str = "invalid_instances") -> RequestError:
    shown = "" if len(errors) <= MAX_DETAILS else f" (first {MAX_DETAILS} listed)"
    if code == "out_of_range":
        return RequestError(422, code, f"{len(errors)} value(s) in 'instances' lie beyond the range the model can "
                            f"extrapolate to{shown}; GET /metadata lists each feature's minimum and maximum", errors)
    return RequestError(422, code, f"{len(errors)} problem(s) in 'instances'{shown}", errors)
