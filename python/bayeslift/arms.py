"""Campaign arms: the treatment column's levels when ``columns.control`` names the control level.

With ``columns.control: null`` the treatment column is 0/1, 1 the one campaign (data.py checks it). Otherwise
the column holds level names, compared as text: the control level, and every other level a campaign arm. The
arms are the sorted distinct other levels; arm index 0 is control and k (1..K) is ``spec.arms[k - 1]``. The
prepared splits hold that index (R reads it), and arm k's output columns end in ``arm_slug(spec.arms[k - 1])``.

``spec`` below is a :class:`bayeslift.data.FeatureSpec` (not imported: data.py imports this module).
"""
from __future__ import annotations

import re

import numpy as np

from .data_errors import DataValidationError, _examples, _lines


def control_level(value) -> str | None:
    """``columns.control`` as text (a number too: 0 -> "0", compared with the column's text), or None."""
    if value is None:
        return None
    # bool first: YAML reads an unquoted `no` or `off` as false, which is no level name
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or str(value) == "":
        raise DataValidationError(f"config columns.control must be the control level's value (text or a number; "
                                  f"quote a level such as 'no') or null, got {value!r}")
    return str(value)


def arm_slug(level: str) -> str:
    """An arm level as a column suffix (``uplift_<slug>``): lower case, each run of characters other than a-z
    and 0-9 one "_", no "_" at either end ("Email A" -> "email_a"). R's ``arm_slug()`` is the same rule."""
    return re.sub(r"[^a-z0-9]+", "_", str(level).lower()).strip("_")


def campaign_arms(values, control, where: str = "the treatment column") -> list[str]:
    """The campaign arms: the sorted distinct levels of ``values`` (as text, none missing) other than
    ``control``. ``where`` starts each message (the file and column)."""
    control = str(control)
    levels = sorted({str(v) for v in values})
    if control not in levels:
        raise DataValidationError(f"{where} has no line with the control level {control!r} (columns.control); "
                                  f"its levels are {levels[:10]}")
    arms = [level for level in levels if level != control]
    if not arms:
        raise DataValidationError(f"{where} holds only the control level {control!r} (columns.control); at least "
                                  "one campaign arm is needed")
    nameless = [level for level in arms if not arm_slug(level)]
    if nameless:
        raise DataValidationError(f"{where}: campaign level(s) {nameless} have no letter or digit to name their "
                                  "output columns; rename them")
    by_slug: dict[str, list[str]] = {}
    for level in arms:
        by_slug.setdefault(arm_slug(level), []).append(level)
    shared = {slug: group for slug, group in by_slug.items() if len(group) > 1}
    if shared:
        slug, group = next(iter(shared.items()))
        raise DataValidationError(f"{where}: campaign levels {group} share the column suffix {slug!r} "
                                  "(lower case, runs of other characters '_'); rename all but one")
    return arms


def _refuse_missing(column, spec, source: str) -> None:
    missing = column.isna().to_numpy()
    if missing.any():
        raise DataValidationError(f"{source}: column '{spec.treatment}' has missing values at {_lines(missing)}")


def encode_treatment(column, spec, source: str) -> np.ndarray:
    """Arm index per row of a treatment column (a Series) of level names: 0 = ``spec.control``, k =
    ``spec.arms[k - 1]``; missing values and other levels name ``source``, the column and the CSV lines."""
    _refuse_missing(column, spec, source)
    index = {spec.control: 0, **{level: k for k, level in enumerate(spec.arms, start=1)}}
    text = column.astype(str)
    codes = text.map(index)
    unknown = codes.isna().to_numpy()
    if unknown.any():
        raise DataValidationError(f"{source}: column '{spec.treatment}' has levels that are neither the control "
                                  f"{spec.control!r} nor a campaign arm {spec.arms} at {_lines(unknown)}: "
                                  f"{_examples(text[unknown])}")
    return codes.to_numpy(dtype=np.int64)


def learn_arms(column, spec, source: str) -> np.ndarray:
    """A history's treatment column of level names: its campaign arms learned into ``spec.arms`` (every arm is
    then present), and its arm index per row (``encode_treatment``)."""
    _refuse_missing(column, spec, source)
    spec.arms = campaign_arms(column.astype(str), spec.control, where=f"{source}: column '{spec.treatment}'")
    return encode_treatment(column, spec, source)


def arm_levels(spec) -> list[str] | None:
    """Each arm index's level name (control first), or None for the 0/1 coding of one campaign."""
    return None if spec.control is None else [spec.control, *spec.arms]


def decode_treatment(index, spec) -> np.ndarray:
    """The level name of each arm index in ``index`` (``encode_treatment`` undone); needs ``spec.control``."""
    return np.asarray(arm_levels(spec), dtype=object)[np.asarray(index, dtype=np.int64)]
