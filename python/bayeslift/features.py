"""The one feature encoder: users -> the numeric matrix every learner sees (the data-checks layer).

Numeric features: ``log1p`` where configured, then standardized with the mean and standard deviation learned
at fit (a scikit-learn ``StandardScaler``, saved with the surrogate as spend_scaler.pkl). Categorical features:
one-hot over the levels learned at fit, in ``FeatureSpec.levels`` order. The surrogate, the baselines and the
benchmarks' peers all encode through :class:`FeatureEncoder`, so the same frame gives them the same matrix.

One rule for values the encoder was not fitted for, as ``data.check_features`` has for files: an unseen or
missing category, a missing or non-finite number, or a negative value under log1p is refused with a
:class:`~bayeslift.data.DataValidationError` naming the column, the values and the rows (0-based positions).
"""
from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

import numpy as np

from .data import DataValidationError, FeatureSpec, unseen_level_error
from .data_errors import format_lines

if TYPE_CHECKING:
    import pandas as pd  # imported where used: scoring's Arrow path encodes without pandas

log = logging.getLogger("bayeslift")
PLACEHOLDER_ROLES = {"id": "id", "treatment": "treatment", "outcome": "outcome"}  # a spec of features only


def _rows(mask: np.ndarray) -> str:
    return format_lines(np.flatnonzero(mask), noun="row")


def _is_categorical(values: pd.Series) -> bool:
    import pandas as pd

    return values.dtype == object or isinstance(values.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(
        values.dtype)


class LevelCodes:
    """A categorical column already coded: each user's index into ``spec.levels[column]``, every one valid
    (scoring's Arrow path codes its dictionary-encoded columns so, without a Python object per user)."""

    def __init__(self, codes: np.ndarray):
        self.codes = codes

    def __len__(self) -> int:
        return len(self.codes)


class FittedScaler:
    """A fitted standardizer's numbers, as a loaded model holds them (no scikit-learn import): the attributes of
    ``sklearn.preprocessing.StandardScaler`` that ``FeatureEncoder`` and spend_scaler.pkl use."""

    mean_: np.ndarray
    scale_: np.ndarray
    var_: np.ndarray
    n_samples_seen_: int
    n_features_in_: int

    def transform(self, x) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64) - self.mean_) / self.scale_


def arm_inputs(spec: FeatureSpec) -> list[str]:
    """The surrogate's arm inputs: the received_campaign flag for one campaign arm; with several, one indicator
    per arm, ``received_<arm>`` (control: all 0)."""
    return ["received_campaign"] if len(spec.arms) <= 1 else [f"received_{a}" for a in spec.arm_slugs]


class FeatureEncoder:
    """``spec``'s features -> float matrix: standardized (log1p'd) numbers, then one-hot categories.

    ``scaler``: a fitted ``StandardScaler`` over ``spec.numeric`` (its ``mean_`` and ``scale_`` are used), or
    the ``FittedScaler`` of a loaded model.
    """

    def __init__(self, spec: FeatureSpec, scaler):
        self.spec = spec
        self.scaler = scaler

    @classmethod
    def fit(cls, spec: FeatureSpec, frame) -> "FeatureEncoder":
        """Learn the scaler on ``frame``'s users, and the levels of any categorical ``spec`` has none for
        (sorted, as ``validate_training_frame`` learns them; ``spec`` itself is not changed)."""
        from sklearn.preprocessing import StandardScaler

        missing = [c for c in spec.categorical if c not in spec.levels]
        if missing:
            import pandas as pd

            learned = {c: sorted(pd.unique(np.asarray(frame[c]).astype(str)).tolist()) for c in missing}
            spec = dataclasses.replace(spec, levels={**spec.levels, **learned})
        enc = cls(spec, StandardScaler())
        numeric = enc._numeric(frame, "fit")
        if spec.numeric:
            enc.scaler.fit(numeric)
        else:  # StandardScaler refuses zero columns
            enc.scaler.mean_ = enc.scaler.scale_ = enc.scaler.var_ = np.empty(0)
            enc.scaler.n_samples_seen_, enc.scaler.n_features_in_ = len(numeric), 0
        return enc

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, categorical=None, log1p=None) -> "FeatureEncoder":
        """Fit on every column of ``frame``: categorical are those named in ``categorical`` and those of
        object, string or category dtype; the others numeric (frame order kept within each group)."""
        import pandas as pd

        frame = pd.DataFrame(frame)
        given = set(categorical or [])
        cats = [str(c) for c in frame.columns if c in given or _is_categorical(frame[c])]
        numeric = [str(c) for c in frame.columns if str(c) not in cats]
        unknown = sorted(set(log1p or []) - set(numeric))
        if unknown:
            raise DataValidationError(f"log1p names {unknown}, which are not numeric features of {numeric}")
        spec = FeatureSpec(**PLACEHOLDER_ROLES, numeric=numeric, categorical=cats, log1p=list(log1p or []))
        return cls.fit(spec, frame.rename(columns=str))

    @property
    def columns(self) -> list[str]:
        """The surrogate's input names (feature_columns.pkl): the arm inputs (``arm_inputs``), then
        ``feature_names``."""
        return [*arm_inputs(self.spec), *self.feature_names]

    @property
    def feature_names(self) -> list[str]:
        """Names of ``transform``'s columns: the numeric features, then ``column=level`` per category."""
        return [*self.spec.numeric, *(f"{c}={level}" for c in self.spec.categorical for level in self.spec.levels[c])]

    def _numeric(self, columns, source: str) -> np.ndarray:
        """Numeric features as float64 columns, log1p applied where configured (refusing what it cannot take)."""
        n = len(columns[self.spec.features[0]]) if self.spec.features else 0
        values = np.empty((n, len(self.spec.numeric)))
        for j, col in enumerate(self.spec.numeric):
            try:
                values[:, j] = np.asarray(columns[col], dtype=np.float64)
            except (TypeError, ValueError):
                raise DataValidationError(f"{source}: column '{col}' must be numeric") from None
            bad = ~np.isfinite(values[:, j])
            if bad.any():
                raise DataValidationError(f"{source}: column '{col}' has missing or non-finite values at {_rows(bad)}")
            if col in self.spec.log1p:
                negative = values[:, j] < 0
                if negative.any():
                    raise DataValidationError(f"{source}: column '{col}' is log1p-transformed and must be >= 0; "
                                              f"negative at {_rows(negative)}")
                values[:, j] = np.log1p(values[:, j])
        return values

    def _codes(self, columns, col: str, source: str) -> np.ndarray:
        """Level index of each user in column ``col``; refuses missing and unseen categories."""
        values = columns[col]
        if isinstance(values, LevelCodes):
            return values.codes
        import pandas as pd

        levels = self.spec.levels[col]
        if isinstance(getattr(values, "dtype", None), pd.CategoricalDtype):  # e.g. Arrow's dictionary columns
            values = pd.Categorical(values)
            lookup = np.append(pd.Index(levels).get_indexer(values.categories.astype(str)), -1)
            codes = lookup[values.codes]  # code -1 (missing) takes lookup's last entry, -1
        else:
            values = np.asarray(values.to_numpy() if isinstance(values, pd.Series) else values)
            if values.dtype != object:  # e.g. numeric-looking levels read as numbers
                values = values.astype(str)
            # hashing into category codes is ~2.5x faster than comparing strings level by level
            codes = pd.Categorical(values, categories=levels).codes
        unknown = codes < 0
        if unknown.any():
            values = np.asarray(values, dtype=object)
            missing = unknown & pd.isna(values)
            if missing.any():
                raise DataValidationError(f"{source}: column '{col}' has missing values at {_rows(missing)}")
            raise unseen_level_error(source, col, values[unknown], levels, _rows(unknown))
        return codes

    def transform(self, columns, dtype=np.float32, source: str = "X") -> np.ndarray:
        """Users -> matrix of ``feature_names`` (without the treatment flag), one row per user.

        ``columns``: a DataFrame or any mapping of column name -> array (the HTTP service passes validated
        arrays). The scaler's arithmetic is applied directly, in float64, then rounded once to ``dtype``:
        sklearn's input checks cost more than the arithmetic for one-user requests.
        """
        missing = [c for c in self.spec.features if c not in columns]
        if missing:
            raise DataValidationError(f"{source}: missing feature column(s) {missing}; the encoder was fitted on "
                                      f"{self.spec.features}")
        n_numeric = len(self.spec.numeric)
        numeric = self._numeric(columns, source)
        out = np.zeros((len(numeric), len(self.feature_names)), dtype=dtype)
        out[:, :n_numeric] = (numeric - self.scaler.mean_) / self.scaler.scale_
        start = n_numeric
        for col in self.spec.categorical:
            codes = self._codes(columns, col, source)
            out[np.arange(len(codes)), start + codes] = 1
            start += len(self.spec.levels[col])
        return out
