"""Input checks for campaign histories and scoring files.

Every failure raises :class:`DataValidationError` naming the file, the column and the first offending
lines (CSV line numbers, the header being line 1), so a user can open the file and fix it.
"""
from __future__ import annotations

import codecs
import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .arms import arm_slug, control_level, learn_arms
from .data_errors import DataValidationError, _examples, _lines

if TYPE_CHECKING:
    import pandas as pd  # imported where used: scoring's Arrow path reads and checks a file without pandas

#: Largest magnitude ``prepare`` accepts in a numeric feature (as given; log1p only shrinks it) or the
#: outcome: far beyond real spend or tenure, yet far below where float32 (XGBoost, the surrogate) or
#: squaring (standardizing, Stan) overflow.
MAX_ABS_VALUE = 1e12
#: Scoring refuses a numeric feature more than this many training ranges below the training minimum or
#: above the maximum (on the model's scale, after log1p): the model has seen nothing like it there.
RANGE_SPAN = 1.0


OUTCOME_TYPES = ("spend", "binary", "gaussian")


@dataclass
class FeatureSpec:
    """What the models see: column roles, and the category levels learned from the training data."""

    id: str
    treatment: str
    outcome: str
    numeric: list[str]
    categorical: list[str] = field(default_factory=list)
    log1p: list[str] = field(default_factory=list)
    levels: dict[str, list[str]] = field(default_factory=dict)
    #: [min, max] of each numeric feature in training, on the model's scale (after log1p).
    ranges: dict[str, list[float]] = field(default_factory=dict)
    #: "spend" (>= 0, mostly zeros: hurdle model), "binary" (0/1: uplift is a difference in probabilities)
    #: or "gaussian" (any real number).
    outcome_type: str = "spend"
    #: columns.control: the treatment column's control level (as text), or None: the column is 0/1 (arms.py)
    control: str | None = None
    #: the campaign arms' levels in arm-index order 1..K, learned from the history; empty when control is None
    arms: list[str] = field(default_factory=list)

    @property
    def features(self) -> list[str]:
        return list(self.numeric) + list(self.categorical)

    @property
    def n_arms(self) -> int:
        """K, the campaign arms (control not counted): 1 for the 0/1 coding."""
        return max(1, len(self.arms))

    @property
    def arm_slugs(self) -> list[str]:
        """Arm k's column suffix at k - 1; empty for the 0/1 coding."""
        return [arm_slug(a) for a in self.arms]

    @classmethod
    def from_columns(cls, columns: dict) -> "FeatureSpec":
        spec = cls(
            id=columns["id"],
            treatment=columns["treatment"],
            outcome=columns["outcome"],
            numeric=list(columns.get("numeric", [])),
            categorical=list(columns.get("categorical", [])),
            log1p=list(columns.get("log1p", [])),
            outcome_type=columns.get("outcome_type", "spend"),
            control=control_level(columns.get("control")),
        )
        if spec.outcome_type not in OUTCOME_TYPES:
            raise DataValidationError(f"config columns.outcome_type must be one of {list(OUTCOME_TYPES)}, "
                                      f"got {spec.outcome_type!r}")
        unknown = sorted(set(spec.log1p) - set(spec.numeric))
        if unknown:
            raise DataValidationError(f"config columns.log1p names {unknown}, which are not in columns.numeric")
        if not spec.features:
            raise DataValidationError("config columns: give at least one numeric or categorical feature")
        roles = [spec.id, spec.treatment, spec.outcome, *spec.features]
        dupes = sorted({c for c in roles if roles.count(c) > 1})
        if dupes:
            raise DataValidationError(f"config columns: {dupes} given more than one role")
        return spec

    def to_dict(self) -> dict:
        """The fields as plain data; without ``control`` and ``arms`` for the 0/1 coding, so a one-campaign
        spec (and every file holding one) is written as before several arms existed."""
        out = asdict(self)
        if self.control is None and not self.arms:
            del out["control"], out["arms"]
        return out

    def to_json(self, path: str | Path) -> None:
        from .io import write_text_atomic

        write_text_atomic(json.dumps(self.to_dict(), indent=2), path)

    @classmethod
    def from_json(cls, path: str | Path) -> "FeatureSpec":
        return cls(**json.loads(Path(path).read_text()))

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureSpec":
        return cls(**d)


def unseen_level_error(source: str, column: str, unseen_values, levels: list[str], where: str) -> DataValidationError:
    """The error for categories not among the training ``levels`` (``where``: the lines or rows holding them)."""
    import pandas as pd

    examples = sorted(set(pd.Series(unseen_values).head(20)))[:3]
    return DataValidationError(f"{source}: column '{column}' has categories not seen in training {examples} at "
                               f"{where}; known levels: {levels}")


def _every_line(frame: pd.DataFrame) -> str:
    return f"every data line, 2 to {len(frame) + 1}" if len(frame) > 1 else "its one data line, 2"


def read_csv(path: str | Path, text_columns=(), **kwargs) -> pd.DataFrame:
    """Read a CSV, turning missing, unparsable or non-UTF-8 files into a clear error.

    ``text_columns`` (ids, categories): only an empty field is missing there, so a real category spelt
    "NA" or "None" stays one; the other columns keep pandas' NA strings, so "NA" in a number column is
    still reported as a missing value.
    """
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise DataValidationError(f"{path}: file not found")
    try:
        return pd.read_csv(path, **csv_options(path, text_columns), **kwargs)
    except pd.errors.EmptyDataError:
        raise DataValidationError(f"{path}: file is empty") from None
    except pd.errors.ParserError as exc:
        raise DataValidationError(f"{path}: not a readable CSV ({exc})") from None
    except UnicodeDecodeError as exc:
        raise utf8_error(path, exc) from None


def csv_options(path: Path, text_columns=()) -> dict:
    """``pd.read_csv`` NA options for ``text_columns`` (see ``read_csv``); needs the header, read here."""
    import pandas as pd
    from pandas._libs.parsers import STR_NA_VALUES  # pandas' default NA strings

    if not text_columns:
        return {"keep_default_na": True}
    try:
        header = pd.read_csv(path, nrows=0).columns
    except pd.errors.EmptyDataError:
        raise DataValidationError(f"{path}: file is empty") from None
    except UnicodeDecodeError as exc:
        raise utf8_error(path, exc) from None
    text = set(text_columns)
    # keep_default_na=False: only the strings listed per column below are missing values
    na_values = {c: [""] if c in text else sorted(STR_NA_VALUES) for c in header}
    return {"keep_default_na": False, "na_values": na_values}


def utf8_error(path: Path, exc: UnicodeDecodeError | None = None) -> DataValidationError:
    """Name the first line of ``path`` that is not valid UTF-8 (read a line at a time: memory stays small)."""
    header = None
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if number == 1:  # pandas drops a byte-order mark (Excel's "CSV UTF-8"): so do column numbers and names
                line = line.removeprefix(codecs.BOM_UTF8)
            try:
                text = line.decode("utf-8")
                header = header if header is not None else text
            except UnicodeDecodeError as bad:
                before = line[:bad.start].decode("utf-8")
                return DataValidationError(f"{path}: line {number} is not valid UTF-8 (byte 0x{line[bad.start]:02x} at "
                                           f"column {len(before) + 1}{_field_of(before, header)}); save the file as UTF-8")
    return DataValidationError(f"{path}: not valid UTF-8 ({exc}); save the file as UTF-8")


def _field_of(before: str, header: str | None) -> str:
    """', in field 'x'': the CSV field that the text ``before`` a position on a line ends in (best effort:
    a quoted field spanning lines is not followed)."""
    if header is None:
        return ""
    names = next(csv.reader([header.rstrip("\r\n")]), [])
    index = len(next(csv.reader([before]), [""])) - 1 if before else 0
    return f", in field '{names[index]}'" if index < len(names) else ""


def require_columns(frame: pd.DataFrame, columns: list[str], source: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"{source}: missing required column(s) {missing}; found {list(frame.columns)}"
        )


def coerce_numeric(frame: pd.DataFrame, column: str, source: str, offset: int = 0) -> pd.Series:
    """Return ``column`` as float, naming the lines that are empty, not numbers, or not finite."""
    import pandas as pd

    raw = frame[column]
    missing = raw.isna().to_numpy()
    if missing.any():
        raise DataValidationError(f"{source}: column '{column}' has missing values at {_lines(missing, offset=offset)}")
    values = pd.to_numeric(raw, errors="coerce")
    if values.isna().any():  # pandas gives up on numbers beyond float64 ("1e999"): they are infinite
        values = values.astype(float).where(values.notna(), raw.map(_float_or_nan))
    bad = values.isna().to_numpy()
    if bad.any():
        raise DataValidationError(
            f"{source}: column '{column}' must be numeric; {_lines(bad, offset=offset)} hold {_examples(raw[bad])}"
        )
    values = values.astype(float)
    infinite = ~np.isfinite(values.to_numpy())
    if infinite.any():
        raise DataValidationError(f"{source}: column '{column}' has non-finite values at {_lines(infinite, offset=offset)}")
    return values


def _float_or_nan(value) -> float:
    """``value`` if it is a number too large for float64 (then infinite), else NaN: not a number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return np.nan
    return number if np.isinf(number) else np.nan


def check_features(frame: pd.DataFrame, spec: FeatureSpec, source: str, offset: int = 0) -> pd.DataFrame:
    """Check and coerce feature columns; categories must be among the training levels when known."""
    import pandas as pd

    out = pd.DataFrame(index=frame.index)
    for col in spec.numeric:
        values = coerce_numeric(frame, col, source, offset)
        if col in spec.log1p and (values < 0).any():
            raise DataValidationError(
                f"{source}: column '{col}' is log1p-transformed and must be >= 0; "
                f"negative at {_lines((values < 0).to_numpy(), offset=offset)}"
            )
        out[col] = values
    for col in spec.categorical:
        raw = frame[col]
        missing = raw.isna().to_numpy()
        if missing.any():
            raise DataValidationError(f"{source}: column '{col}' has missing values at {_lines(missing, offset=offset)}")
        values = raw.astype(str)
        if col in spec.levels:
            unseen = ~values.isin(spec.levels[col]).to_numpy()
            if unseen.any():
                raise unseen_level_error(source, col, values[unseen], spec.levels[col],
                                         _lines(unseen, offset=offset))
        out[col] = values
    return out


def check_magnitude(values: np.ndarray, column: str, source: str) -> None:
    """Refuse values the model cannot compute with: beyond ``MAX_ABS_VALUE`` or not finite."""
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(values) <= MAX_ABS_VALUE)  # NaN and inf compare False: caught too
    if bad.any():
        raise DataValidationError(f"{source}: column '{column}' has values beyond +-{MAX_ABS_VALUE:g} (the "
                                  f"largest magnitude the model takes) at {_lines(bad)}")


def check_unique_ids(ids: pd.Series, column: str, source: str) -> None:
    import pandas as pd

    missing = ids.isna().to_numpy()
    if missing.any():
        raise DataValidationError(f"{source}: column '{column}' has missing ids at {_lines(missing)}")
    dup = ids.duplicated(keep=False).to_numpy()
    if dup.any():
        raise DataValidationError(f"{source}: column '{column}' has duplicate ids ({_examples(pd.unique(ids[dup]))}) "
                                  f"at {_lines(dup)}")


def validate_training_frame(frame: pd.DataFrame, spec: FeatureSpec, source: str) -> pd.DataFrame:
    """Check a campaign history and return it with the used columns only, typed.

    Rules: required columns present; treatment exactly 0/1 with both arms present (with ``spec.control``: level
    names, the arms learned into ``spec`` and coded 0..K, arms.py); outcome numeric and,
    by ``spec.outcome_type``, >= 0 (spend) or exactly 0/1 (binary); no missing values in used columns; ids
    unique. Category levels are learned into ``spec``.
    """
    import pandas as pd

    require_columns(frame, [spec.id, spec.treatment, spec.outcome, *spec.features], source)
    if len(frame) == 0:
        raise DataValidationError(f"{source}: no data rows")
    check_unique_ids(frame[spec.id], spec.id, source)

    if spec.control is not None:
        treatment = learn_arms(frame[spec.treatment], spec, source)
    else:
        treatment = coerce_numeric(frame, spec.treatment, source)
        not_binary = ~treatment.isin([0.0, 1.0]).to_numpy()
        if not_binary.any():
            raise DataValidationError(f"{source}: column '{spec.treatment}' must be exactly 0 or 1; "
                                      f"{_lines(not_binary)} hold {_examples(frame[spec.treatment][not_binary])}")
        treatment = treatment.astype(int).to_numpy()
        arms = set(np.unique(treatment).tolist())
        if arms != {0, 1}:
            raise DataValidationError(f"{source}: column '{spec.treatment}' has only arm {sorted(arms)}; both "
                                      "treated (1) and control (0) are needed")

    outcome = coerce_numeric(frame, spec.outcome, source)
    check_magnitude(outcome.to_numpy(), spec.outcome, source)
    if spec.outcome_type == "spend":
        negative = (outcome < 0).to_numpy()
        if negative.any():
            raise DataValidationError(f"{source}: column '{spec.outcome}' must be >= 0; negative at {_lines(negative)}")
    elif spec.outcome_type == "binary":
        not_01 = ~outcome.isin([0.0, 1.0]).to_numpy()
        if not_01.any():
            raise DataValidationError(f"{source}: column '{spec.outcome}' is a binary outcome and must be exactly 0 "
                                      f"or 1; {_lines(not_01)} hold {_examples(frame[spec.outcome][not_01])}")

    features = check_features(frame, spec, source)
    for col in spec.categorical:
        spec.levels[col] = sorted(features[col].unique().tolist())
        if len(spec.levels[col]) < 2:
            raise DataValidationError(f"{source}: column '{col}' has the single category {spec.levels[col]} on "
                                      f"{_every_line(frame)}; it cannot inform the model (drop it from "
                                      "columns.categorical)")
    for col in spec.numeric:
        # Raw values are bounded too: a log1p feature of 1e300 is 690.8 to the model, yet garbage, and it
        # would stretch the training range that bounds scoring.
        check_magnitude(features[col].to_numpy(), col, source)
        scaled = model_scale(features[col].to_numpy(), col, spec)
        spec.ranges[col] = [float(scaled.min()), float(scaled.max())]
    for col in spec.numeric:
        if features[col].nunique() < 2:
            raise DataValidationError(f"{source}: column '{col}' is constant ({features[col].iloc[0]:g} on "
                                      f"{_every_line(frame)}); it cannot inform the model")

    out = pd.DataFrame({spec.id: frame[spec.id].to_numpy()})
    out[spec.treatment] = treatment
    out[spec.outcome] = outcome.to_numpy()
    for col in spec.features:
        out[col] = features[col].to_numpy()
    return out


def model_scale(values, column: str, spec: FeatureSpec) -> np.ndarray:
    """A numeric feature as the model sees it before standardizing: log1p where configured."""
    values = np.asarray(values, dtype=np.float64)
    return np.log1p(values) if column in spec.log1p else values


def outside_training_range(columns, spec: FeatureSpec) -> dict[str, np.ndarray]:
    """Column -> mask of users beyond ``RANGE_SPAN`` training ranges of the training min/max (only columns
    with such users). ``columns``: a DataFrame or a mapping of column name -> array. Specs written before
    ranges were recorded have none and pass."""
    out = {}
    with np.errstate(invalid="ignore", over="ignore"):
        for col, (low, high) in spec.ranges.items():
            span = RANGE_SPAN * (high - low)
            scaled = model_scale(columns[col], col, spec)
            bad = ~((scaled >= low - span) & (scaled <= high + span))
            if bad.any():
                out[col] = bad
    return out


def range_message(col: str, spec: FeatureSpec) -> str:
    low, high = spec.ranges[col]
    scale = "log1p " if col in spec.log1p else ""
    return (f"more than {RANGE_SPAN:g} training range(s) outside the training {scale}range [{low:.6g}, {high:.6g}] "
            f"of '{col}'; the model cannot extrapolate that far")


def validate_score_frame(frame: pd.DataFrame, spec: FeatureSpec, source: str, offset: int = 0) -> pd.DataFrame:
    """Check users to score: id plus the training features, within the bound of the training range of each
    numeric feature (``outside_training_range``); other columns are ignored.

    ``offset`` is the number of data rows before this chunk, so line numbers stay right when streaming.
    """
    require_columns(frame, [spec.id, *spec.features], source)
    missing = frame[spec.id].isna().to_numpy()
    if missing.any():
        raise DataValidationError(f"{source}: column '{spec.id}' has missing ids at {_lines(missing, offset=offset)}")
    features = check_features(frame, spec, source, offset)
    for col, outside in outside_training_range(features, spec).items():
        raise DataValidationError(f"{source}: column '{col}' at {_lines(outside, offset=offset)} holds "
                                  f"{_examples(frame[col][outside])}: {range_message(col, spec)}")
    features.insert(0, spec.id, frame[spec.id].to_numpy())
    return features

