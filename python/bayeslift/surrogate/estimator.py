"""``UpliftSurrogate``: the surrogate as a scikit-learn estimator, over the encoder, networks and checkpoint.

``fit`` learns from the counterfactual tables of the Bayesian model (``CounterfactualTables``, as
``bayeslift.fit_bayesian`` returns them or the pipeline writes them) or from arrays of features and posterior
summaries; ``predict`` gives the uplift per user, ``predict_arms`` the expected outcome under each arm,
``predict_interval`` the 90% uplift interval; ``save``/``load`` write and verify the model folder (with its
manifest) that batch scoring, HTTP and Lambda read.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ..boundary import check_table
from ..data import DataValidationError, FeatureSpec, validate_score_frame, validate_training_frame
from ..data_errors import format_lines
from .checkpoint import load_surrogate, save_surrogate, targeting_facts
from .fidelity import fidelity
from .model import FeatureEncoder, SurrogateConfig
from .predict import PREDICTION_NAMES, prediction_names
from .train import SurrogateTargets, build_targets, fit_surrogate_run, fit_to_floor

__all__ = ["TARGET_COLUMNS", "CounterfactualTables", "UpliftSurrogate"]
log = logging.getLogger("bayeslift")
SOURCE = "X (line n is row n - 2)"  # how messages name the users given to fit and predict
_DEFAULT = SurrogateConfig()  # the estimator's defaults are SurrogateConfig's (config/config.yaml's surrogate)
#: what ``fit(X, y)`` takes as ``y``: per user, the posterior means of the outcome under each arm, and the
#: posterior mean, 5% and 95% quantiles of the uplift (the names ``predict_table`` gives the surrogate's own)
TARGET_COLUMNS = PREDICTION_NAMES
TABLES = {"train_data": "surrogate_train_data", "labels": "surrogate_labels", "uplift": "uplift_summary"}
ARMS, INTERVAL = ["spend_if_treated", "spend_if_control"], ["uplift_lower", "uplift_upper"]


@dataclass
class CounterfactualTables:
    """The Bayesian model's counterfactual tables (python/bayeslift/boundary.yaml), and what produced them.

    ``train_data`` and ``labels``: two rows per user (treated, then control) with the features and the posterior
    summaries of the expected outcome; ``uplift``: one row per user, the posterior summary of the uplift
    (``uplift_mean``, ``uplift_q05``, ``uplift_q95``, ``prob_positive``, ``prob_profit``). Each row's ``split``
    is "train" or "holdout": the surrogate trains on the first and is gated on the second.
    """

    train_data: pd.DataFrame
    labels: pd.DataFrame
    uplift: pd.DataFrame
    spec: FeatureSpec
    ate: dict = field(default_factory=dict)  # the sample average effect's posterior summary
    diagnostics: dict = field(default_factory=dict)  # convergence of the fit (R's check_convergence)
    config: dict = field(default_factory=dict)  # the config sections the fit used
    sources: dict = field(default_factory=dict)  # table -> where it came from, for messages (tables.<table>)

    def check(self) -> None:
        """Raise DataValidationError unless each table matches its declaration and the rows line up."""
        source = {key: self.sources.get(key, f"tables.{key}") for key in TABLES}
        for key, table in TABLES.items():
            check_table(getattr(self, key), table, self.spec, str(source[key]))
        ids = lambda frame: frame[self.spec.id].astype(str)  # noqa: E731
        if len(self.labels) != len(self.train_data) or not (
                ids(self.labels).equals(ids(self.train_data))
                and self.labels["received_campaign"].equals(self.train_data["received_campaign"])):
            raise DataValidationError(f"{source['labels']}: rows do not line up with {source['train_data']} (id and "
                                      "received_campaign)")


class UpliftSurrogate(BaseEstimator):
    """A small PyTorch network that imitates the Bayesian model's per-user posterior (a scikit-learn estimator).

    Parameters are :class:`~bayeslift.surrogate.model.SurrogateConfig`'s (config key ``surrogate``), with its
    defaults, and ``n_jobs``: torch's threads while fitting (one is fastest for these small networks: on 2 busy
    cores, two threads made a 2,000-step fit 25x slower). Fitted attributes: ``surrogate_`` (the networks),
    ``encoder_`` (the feature encoder), ``spec_`` (the feature spec), ``fidelity_`` (R^2 and error against the
    posterior, on the train and holdout users), ``manifest_`` (the facts ``save`` writes; after ``save`` or
    ``load``, the whole manifest), ``feature_names_in_`` and ``n_features_in_``.
    """

    def __init__(self, hidden=_DEFAULT.hidden, steps=_DEFAULT.steps, batch_size=_DEFAULT.batch_size,
                 learning_rate=_DEFAULT.learning_rate, weight_decay=_DEFAULT.weight_decay,
                 uplift_weight=_DEFAULT.uplift_weight, seed=_DEFAULT.seed, fidelity_floor=_DEFAULT.fidelity_floor,
                 validation_fraction=_DEFAULT.validation_fraction,
                 validation_min_users=_DEFAULT.validation_min_users, eval_every=_DEFAULT.eval_every,
                 patience=_DEFAULT.patience, max_width_factor=_DEFAULT.max_width_factor, epochs=_DEFAULT.epochs,
                 n_jobs=1):
        self.hidden = hidden
        self.steps = steps
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.uplift_weight = uplift_weight
        self.seed = seed
        self.fidelity_floor = fidelity_floor
        self.validation_fraction = validation_fraction
        self.validation_min_users = validation_min_users
        self.eval_every = eval_every
        self.patience = patience
        self.max_width_factor = max_width_factor
        self.epochs = epochs
        self.n_jobs = n_jobs

    # -- fitting ---------------------------------------------------------------------------------------------
    def fit(self, X, y=None, *, split=None, columns: Mapping | None = None) -> "UpliftSurrogate":
        """Train on the posterior; returns ``self``.

        ``X`` is either a :class:`CounterfactualTables` (``y``, ``split`` and ``columns`` left out), or the users'
        features (a DataFrame, or a 2-D array of numeric features) with ``y`` their posterior summaries
        (``TARGET_COLUMNS``: a DataFrame with those columns or an array in that order), ``split`` an optional
        array of "train"/"holdout" per user and ``columns`` an optional ``{"numeric", "categorical", "log1p",
        "outcome_type", "id"}`` (by default: numeric columns are numeric features, the others categorical).

        With holdout users, the fidelity gate runs as in the pipeline: below ``fidelity_floor`` the network is
        retrained wider up to ``max_width_factor``, then :class:`SurrogateFidelityError`. Without them no gate
        runs (a warning says so), and the ``top_k`` threshold is learned on the training users.
        """
        if _is_tables(X):
            if y is not None or split is not None or columns is not None:
                raise TypeError("UpliftSurrogate.fit: with counterfactual tables, leave out y, split and columns")
            fit_targets, holdout_targets, encoder = self._targets_from_tables(_as_tables(X))
        else:
            if y is None:
                raise TypeError("UpliftSurrogate.fit: give the counterfactual tables, or features X with their "
                                f"posterior summaries y ({list(TARGET_COLUMNS)})")
            fit_targets, holdout_targets, encoder = self._targets_from_arrays(X, y, split, columns or {})
        return self._train(fit_targets, holdout_targets, encoder)

    def _config(self) -> SurrogateConfig:
        return SurrogateConfig(**{f.name: getattr(self, f.name) for f in fields(SurrogateConfig)})

    def _targets_from_tables(self, tables: CounterfactualTables):
        """As the pipeline's surrogate step: the encoder from the train users, targets per split."""
        tables.check()
        spec, train_data = copy.deepcopy(tables.spec), tables.train_data
        is_train = (train_data["split"] == "train").to_numpy()
        treated = (train_data["received_campaign"] == 1).to_numpy()
        encoder = FeatureEncoder.fit(spec, train_data[is_train & treated])
        fit = build_targets(train_data[is_train], tables.labels, tables.uplift, spec, encoder)
        holdout = build_targets(train_data[~is_train], tables.labels, tables.uplift, spec, encoder)
        return fit, (holdout if len(holdout.x) else None), encoder

    def _targets_from_arrays(self, X, y, split, columns: Mapping):
        frame = X if isinstance(X, pd.DataFrame) else _array_frame(X, columns.get("numeric"))
        spec = _spec_of(frame, columns)
        # the history's own feature rules (levels and training ranges learned into spec), with placeholder roles
        history = pd.DataFrame({spec.id: np.arange(len(frame)), spec.treatment: np.arange(len(frame)) % 2,
                                spec.outcome: np.zeros(len(frame))}, index=frame.index)
        users = validate_training_frame(pd.concat([history, frame[spec.features]], axis=1), spec, SOURCE)
        targets = _target_matrix(y, len(frame))
        holdout = _holdout_mask(split, len(frame))
        encoder = FeatureEncoder.fit(spec, users[~holdout])

        def part(rows):
            t = targets[rows]
            return SurrogateTargets(encoder.transform(users[rows]), t[:, 0], t[:, 1], t[:, 2], t[:, 3], t[:, 4],
                                    spec.outcome_type)
        return part(~holdout), (part(holdout) if holdout.any() else None), encoder

    def _train(self, fit_targets: SurrogateTargets, holdout_targets: SurrogateTargets | None, encoder):
        threads = torch.get_num_threads()
        torch.set_num_threads(max(1, int(self.n_jobs or 1)))
        try:
            return self._train_networks(fit_targets, holdout_targets, encoder)
        finally:
            torch.set_num_threads(threads)

    def _train_networks(self, fit_targets: SurrogateTargets, holdout_targets: SurrogateTargets | None, encoder):
        config = self._config()
        if holdout_targets is not None:
            run, holdout, tries = fit_to_floor(fit_targets, holdout_targets, config)
            scores = {"train": fidelity(run.surrogate, fit_targets), "holdout": holdout}
            training, targeted = {**run.facts(), "widths_tried": tries}, (holdout_targets, "holdout")
        else:
            log.warning("UpliftSurrogate.fit: no holdout users, so no fidelity gate; the top_k threshold comes "
                        "from the training users")
            run = fit_surrogate_run(fit_targets, config)
            scores = {"train": fidelity(run.surrogate, fit_targets)}
            training, targeted = run.facts(), (fit_targets, "train")
        self.surrogate_, self.encoder_, self.spec_, self.fidelity_ = run.surrogate, encoder, encoder.spec, scores
        self.manifest_ = {"training_config": asdict(config), "fidelity": scores, "training": training,
                          "targeting": targeting_facts(run.surrogate, targeted[0].x, targeted[1])}
        self._set_feature_names()
        return self

    def _set_feature_names(self) -> None:
        self.feature_names_in_ = np.asarray(self.spec_.features, dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)

    # -- prediction ------------------------------------------------------------------------------------------
    def predict(self, X) -> np.ndarray:
        """Predicted uplift (expected outcome if treated minus if not), one float per user; with several
        campaign arms, users x arms (each arm minus control, in ``spec_.arms`` order)."""
        table = self.predict_table(X)
        if not self.surrogate_.arm_names:
            return table["uplift"].to_numpy()
        return table[[f"uplift_{a}" for a in self.surrogate_.arm_names]].to_numpy()

    def predict_arms(self, X) -> pd.DataFrame:
        """Expected outcome under each arm: columns ``spend_if_treated`` and ``spend_if_control`` (several
        campaign arms: ``spend_if_control`` and ``spend_if_<arm>`` per arm)."""
        table = self.predict_table(X)
        return table[ARMS] if not self.surrogate_.arm_names else table.filter(regex="^spend_if_")

    def predict_interval(self, X) -> pd.DataFrame:
        """The 90% interval of each user's uplift: columns ``uplift_lower`` and ``uplift_upper`` (several
        campaign arms: ``uplift_<arm>_lower`` and ``uplift_<arm>_upper`` per arm)."""
        table = self.predict_table(X)
        return table[INTERVAL] if not self.surrogate_.arm_names else table.filter(regex="^uplift_.*_(lower|upper)$")

    def predict_table(self, X, *, checked: bool = False) -> pd.DataFrame:
        """All five predictions (``TARGET_COLUMNS``; with several campaign arms, ``prediction_names``), one row
        per user, ``X``'s index.

        ``X``: a DataFrame with the feature columns (others ignored), checked as a scoring file is (names the
        column and the line, line n being row n - 2), or a 2-D array in ``feature_names_in_`` order;
        ``checked``: ``X`` was already checked (``validate_score_frame``).
        """
        check_is_fitted(self, "surrogate_")
        users = X if checked else self._checked(X)
        preds = self.surrogate_.predict_encoded(self.encoder_.transform(users))
        return pd.DataFrame({c: preds[c] for c in prediction_names(self.surrogate_.arm_names)}, index=users.index)

    def _checked(self, X) -> pd.DataFrame:
        frame = X if isinstance(X, pd.DataFrame) else _array_frame(X, list(self.feature_names_in_), exact=True)
        if self.spec_.id not in frame.columns:  # users need no id to be predicted; the check wants one
            frame = frame.assign(**{self.spec_.id: np.arange(len(frame))})
        return validate_score_frame(frame, self.spec_, SOURCE)

    # -- the model folder ------------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> dict:
        """Write the model folder atomically (``save_surrogate``: weights, encoder, manifest); return the manifest."""
        check_is_fitted(self, "surrogate_")
        facts = {k: self.manifest_[k] for k in ("training_config", "fidelity", "training", "targeting")
                 if k in self.manifest_}
        self.manifest_ = save_surrogate(directory, self.surrogate_, self.encoder_, **facts)
        return self.manifest_

    @classmethod
    def load(cls, directory: str | Path) -> "UpliftSurrogate":
        """A fitted estimator from a model folder, after verifying it (``load_surrogate``: ModelArtifactError
        naming the file when anything is missing, tampered with or malformed)."""
        surrogate, encoder, manifest = load_surrogate(directory)
        stored = manifest.get("training_config")
        names = {f.name for f in fields(SurrogateConfig)}
        out = cls(**{k: v for k, v in stored.items() if k in names} if isinstance(stored, dict) else {})
        out.surrogate_, out.encoder_, out.spec_, out.manifest_ = surrogate, encoder, encoder.spec, manifest
        out.fidelity_ = manifest.get("fidelity")
        out._set_feature_names()
        return out


def _is_tables(X) -> bool:
    return isinstance(X, CounterfactualTables) or (isinstance(X, Mapping) and {*TABLES, "spec"} <= set(X))


def _as_tables(X) -> CounterfactualTables:
    if isinstance(X, CounterfactualTables):
        return X
    spec = X["spec"] if isinstance(X["spec"], FeatureSpec) else FeatureSpec.from_dict(dict(X["spec"]))
    return CounterfactualTables(*(X[k] for k in TABLES), spec)


def _array_frame(X, names, exact: bool = False) -> pd.DataFrame:
    """A 2-D array as a frame of named columns (``names``, or x0, x1, ... when None)."""
    values = np.asarray(X)
    if values.ndim != 2:
        raise DataValidationError(f"X: expected a DataFrame or a 2-D array of users x features, got shape "
                                  f"{values.shape}")
    names = list(names) if names is not None else [f"x{j}" for j in range(values.shape[1])]
    if values.shape[1] != len(names):
        what = "the model's features" if exact else "columns['numeric']"
        raise DataValidationError(f"X: has {values.shape[1]} columns, but {what} are {len(names)}: {names}")
    return pd.DataFrame(values, columns=names)


def _spec_of(frame: pd.DataFrame, columns: Mapping) -> FeatureSpec:
    """The feature spec of an arrays fit: ``columns``' roles, by default numeric dtypes numeric, the rest
    categorical."""
    numeric = columns.get("numeric")
    categorical = columns.get("categorical")
    if numeric is None and categorical is None:
        numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
        categorical = [c for c in frame.columns if c not in numeric]
    spec = FeatureSpec.from_columns({"id": columns.get("id", "id"), "treatment": "received_campaign",
                                     "outcome": "outcome", "numeric": [str(c) for c in numeric or []],
                                     "categorical": [str(c) for c in categorical or []],
                                     "log1p": columns.get("log1p", []),
                                     "outcome_type": columns.get("outcome_type", "spend")})
    missing = [c for c in spec.features if c not in frame.columns]
    if missing:
        raise DataValidationError(f"X: missing feature column(s) {missing}; found {list(frame.columns)}")
    return spec


def _target_matrix(y, n: int) -> np.ndarray:
    """``y`` as an n x 5 float array in ``TARGET_COLUMNS`` order, finite, with the interval around the mean."""
    if isinstance(y, pd.DataFrame):
        missing = [c for c in TARGET_COLUMNS if c not in y.columns]
        if missing:
            raise DataValidationError(f"y: missing column(s) {missing}; y holds {list(TARGET_COLUMNS)}")
        y = y[list(TARGET_COLUMNS)]
    try:
        values = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataValidationError(f"y: must be numbers ({list(TARGET_COLUMNS)})") from None
    if values.shape != (n, len(TARGET_COLUMNS)):
        raise DataValidationError(f"y: expected shape ({n}, {len(TARGET_COLUMNS)}) (a row per user of X: "
                                  f"{list(TARGET_COLUMNS)}), got {values.shape}")
    for j, name in enumerate(TARGET_COLUMNS):
        bad = ~np.isfinite(values[:, j])
        if bad.any():
            raise DataValidationError(f"y: column '{name}' must be finite; not at rows {_rows(bad)}")
    outside = (values[:, 3] > values[:, 2]) | (values[:, 2] > values[:, 4])
    if outside.any():
        raise DataValidationError(f"y: uplift_lower <= uplift <= uplift_upper fails at rows {_rows(outside)}")
    return values


def _holdout_mask(split, n: int) -> np.ndarray:
    if split is None:
        return np.zeros(n, dtype=bool)
    labels = pd.Series(np.asarray(split, dtype=object).ravel())
    if len(labels) != n:
        raise DataValidationError(f"split: has {len(labels)} values for {n} users of X")
    bad = ~labels.isin(["train", "holdout"]).to_numpy()
    if bad.any():
        raise DataValidationError(f"split: must be 'train' or 'holdout'; rows {_rows(bad)} hold "
                                  f"{labels[bad].head(3).tolist()}")
    holdout = (labels == "holdout").to_numpy()
    if holdout.all():
        raise DataValidationError("split: every user is 'holdout'; the surrogate needs 'train' users")
    return holdout


def _rows(mask: np.ndarray) -> str:
    """0-based row positions of ``mask``, as format_lines shows line numbers."""
    return format_lines(np.flatnonzero(mask)).removeprefix("lines ").removeprefix("line ")
