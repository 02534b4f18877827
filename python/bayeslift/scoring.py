"""Score users with a trained surrogate: spend under each arm, uplift and its 90% interval.

The batch path streams its input in chunks (memory bounded by the chunk size, not the file size),
checks each chunk with line numbers that refer to the whole file, and writes the output to a temporary
file that is renamed into place only when every chunk succeeded. A CSV is first scored through Arrow's
reader (``arrow_users``: no Python object per user); at the first thing that is not all clear, the pandas
path scores the file from its start and names the problem.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .arrow_users import (IdHashes, NotClear, arrow_batches, check_numeric_types, clear_columns, from_numpy,
                          id_hashes, open_parquet, parquet_batches, parquet_errors)
from .data import DataValidationError, csv_options, read_csv, utf8_error, validate_score_frame
from .data_errors import format_lines, line_numbers
from .io import atomic_path
from .manifest import MANIFEST, ModelArtifactError, model_digest
from .arms import arm_levels
from .decide_arms import arm_economics, check_arm_rule, decide_arm
from .policy import PolicyConfig, decide, for_model
from .surrogate.checkpoint import load_surrogate
from .surrogate.predict import PREDICTION_NAMES, prediction_names

if TYPE_CHECKING:
    import pandas as pd  # imported where used: the Arrow path scores a CSV without pandas

log = logging.getLogger("bayeslift")
PREDICTION_COLUMNS = list(PREDICTION_NAMES)


class UpliftScorer:
    """A loaded surrogate ready to score users (no R needed): the model folder's surrogate and encoder (what
    :class:`~bayeslift.surrogate.estimator.UpliftSurrogate` wraps, through ``load_surrogate``, without importing
    torch or scikit-learn), plus the scoring file's checks (ids, finite predictions) and the targeting policy."""

    def __init__(self, surrogate, encoder, manifest: dict, source: str = "the model's manifest", model_dir=None):
        self.surrogate, self.encoder, self.manifest = surrogate, encoder, manifest
        self.source, self.model_dir = source, model_dir
        #: the prediction columns: PREDICTION_COLUMNS, or per arm with several campaign arms (prediction_names)
        self.prediction_columns = list(prediction_names(surrogate.arm_names))
        #: the decision's column: "treat" (0/1), or with several arms "best_arm" (the chosen arm's level)
        self.decision_column = "best_arm" if surrogate.arm_names else "treat"

    @classmethod
    def load(cls, model_dir: str | os.PathLike) -> "UpliftScorer":
        """Verify and load a surrogate for scoring (this also holds BLAS to one thread, process-wide)."""
        one_inference_thread()
        scorer = cls(*load_surrogate(model_dir), source=str(Path(model_dir) / MANIFEST), model_dir=model_dir)
        one_inference_thread()  # again if reading an older checkpoint imported torch
        return scorer

    @property
    def spec(self):
        return self.encoder.spec

    @property
    def estimator(self):
        """The same model as an ``UpliftSurrogate`` (scikit-learn estimator; imports torch and scikit-learn)."""
        from .surrogate.estimator import UpliftSurrogate

        return UpliftSurrogate.load(self.model_dir)

    def policy(self, policy: PolicyConfig) -> PolicyConfig:
        """``policy`` ready for ``decide`` with this model: the top_k rule gets its uplift threshold from the
        holdout quantiles in the manifest (``targeting``), so batch and HTTP decide each user alike."""
        if policy.arms and not self.surrogate.arm_names:
            raise ValueError("policy arms is for several campaign arms; this model has one: set cost_per_contact "
                             "and margin")
        if self.surrogate.arm_names:
            check_arm_rule(policy)
            self.economics(policy)  # an override naming no arm of this model is refused here, before scoring
            return policy
        quantiles = (self.manifest.get("targeting") or {}).get("uplift_quantiles")
        try:
            return for_model(policy, quantiles)
        except ValueError as exc:
            raise ModelArtifactError(f"{self.source}: {exc}") from None

    def economics(self, policy: PolicyConfig):
        """Several campaign arms: each arm's cost and margin (decide_arms.arm_economics)."""
        return arm_economics(policy, self.spec.arms, self.spec.arm_slugs)

    def decisions(self, predictions, policy: PolicyConfig) -> np.ndarray:
        """The decision column's values: ``policy.decide``'s 0/1 (int64), or with several arms ``decide_arm``'s
        choice as the arm's level (control's level for none)."""
        if not self.surrogate.arm_names:
            return decide(predictions, policy).astype(np.int64)
        chosen = decide_arm(predictions, policy, self.economics(policy))
        return np.asarray(arm_levels(self.spec), dtype=object)[chosen]

    @property
    def version(self) -> dict:
        return {"version": self.manifest.get("created"), "sha256": model_digest(self.manifest)}

    def predict(self, users: pd.DataFrame) -> pd.DataFrame:
        """Checked users (features present and valid) -> prediction columns, same row order and index
        (``UpliftSurrogate.predict_table(users, checked=True)``)."""
        import pandas as pd

        preds = self.surrogate.predict_encoded(self.encoder.transform(users))
        return pd.DataFrame({c: preds[c] for c in self.prediction_columns}, index=users.index)

    def score_frame(self, frame: pd.DataFrame, source: str = "input", offset: int = 0) -> pd.DataFrame:
        """Validate a raw frame of users and return id + predictions; a user without a finite prediction
        is an error naming the line (``offset``: data rows of the file before ``frame``)."""
        import pandas as pd

        users = validate_score_frame(frame, self.spec, source, offset)
        with np.errstate(over="ignore", invalid="ignore"):  # overflow shows as non-finite, refused right after
            predictions = self.predict(users)
        self._check_finite(users, predictions, source, offset)
        return pd.concat([users[[self.spec.id]], predictions], axis=1)

    def _check_finite(self, users: pd.DataFrame, predictions: pd.DataFrame, source: str, offset: int) -> None:
        bad = ~np.isfinite(predictions.to_numpy(dtype=np.float64)).all(axis=1)
        if not bad.any():
            return
        message = f"{source}: the model gives no finite prediction at {format_lines(line_numbers(bad, offset))}"
        first = users[bad].iloc[:1]
        if self.spec.numeric:
            # the feature furthest from the training mean, in training standard deviations, is the suspect
            with np.errstate(over="ignore", invalid="ignore"):
                z = np.abs(self.encoder.transform(first)[0, :len(self.spec.numeric)].astype(np.float64))
            col = self.spec.numeric[int(np.nanargmax(np.nan_to_num(z, nan=np.inf)))]
            message += (f"; column '{col}' is the most extreme feature of the first ({first[col].tolist()[0]!r}): "
                        "check that value")
        raise DataValidationError(message)


def read_chunks(path: Path, spec, chunk_size: int, first_chunk: int = 0, stop_chunk: int | None = None):
    """Chunks ``first_chunk`` .. ``stop_chunk - 1`` (all from ``first_chunk`` when None) of the file.

    Ids and categories come as strings, missing only when empty (CSV) or null (Parquet), as in training.
    """
    import pandas as pd

    text = [spec.id, *spec.categorical]
    if path.suffix == ".parquet":
        parquet = open_parquet(path)
        check_numeric_types(path, parquet.schema_arrow, spec)
        for k, batch in enumerate(parquet_batches(path, parquet, chunk_size)):
            if stop_chunk is not None and k >= stop_chunk:
                return
            if k >= first_chunk:
                with parquet_errors(path):
                    frame = batch.to_pandas()
                yield _text_as_strings(frame, text)
        return
    read_csv(path, nrows=0)  # clear errors for a missing or empty file
    skip = first_chunk * chunk_size
    nrows = None if stop_chunk is None else max(0, stop_chunk - first_chunk) * chunk_size
    if nrows == 0:
        return
    try:
        yield from pd.read_csv(path, chunksize=chunk_size, dtype={c: str for c in text}, nrows=nrows,
                               skiprows=range(1, skip + 1) if skip else None, **csv_options(path, text))
    except pd.errors.ParserError as exc:
        raise DataValidationError(f"{path}: not a readable CSV ({exc})") from None
    except UnicodeDecodeError as exc:
        raise utf8_error(path, exc) from None


def _text_as_strings(frame: pd.DataFrame, columns) -> pd.DataFrame:
    """``columns`` as strings, nulls kept (``astype(str)`` would turn None into the category "None")."""
    for col in columns:
        if col in frame.columns:
            values = frame[col]
            frame[col] = values.astype(str).where(values.notna(), None)
    return frame


class UniqueIds:
    """Checks that no id of a file streamed in chunks repeats, in 8 bytes per user: sorted runs of 64-bit
    hashes of the ids (``pd.util.hash_pandas_object``), each run at most half the size of the one before
    (merging costs O(n log n) in all; looking up a chunk, one binary search per run).

    Ids within a chunk are compared exactly. A hash already seen is confirmed by ``earlier(values,
    offset)`` (the lines of ``values`` in the data rows before ``offset``; a re-read of the file, on this
    path only), so two different ids whose hashes collide (odds about users^2 / 2^65) are not reported.
    """

    def __init__(self, column: str, source: str, earlier):
        self.column, self.source, self.earlier = column, source, earlier
        self._runs: list[np.ndarray] = []

    def add(self, ids: pd.Series, offset: int) -> None:
        """Ids of the chunk after ``offset`` data rows; raises on the first id seen twice, naming its lines."""
        import pandas as pd

        if len(ids) == 0:
            return
        hashes = pd.util.hash_pandas_object(ids, index=False).to_numpy()
        suspects = ids.duplicated(keep=False).to_numpy() | self._seen(hashes)
        if suspects.any():
            candidates = pd.unique(ids[suspects])
            before = self.earlier(set(candidates), offset)
            for value in candidates:
                lines = before.get(value, []) + line_numbers(ids.to_numpy() == value, offset).tolist()
                if len(lines) > 1:
                    raise DataValidationError(f"{self.source}: column '{self.column}' has the duplicate id {value!r} "
                                              f"at {format_lines(lines)}; each user must appear once")
        self._insert(hashes)

    def _seen(self, hashes: np.ndarray) -> np.ndarray:
        seen = np.zeros(len(hashes), dtype=bool)
        for run in self._runs:
            at = np.minimum(np.searchsorted(run, hashes), len(run) - 1)
            seen |= run[at] == hashes
        return seen

    def _insert(self, hashes: np.ndarray) -> None:
        run = np.sort(hashes)
        while self._runs and len(self._runs[-1]) <= 2 * len(run):
            # stable sort of two sorted runs is timsort's linear merge
            run = np.sort(np.concatenate([self._runs.pop(), run]), kind="stable")
        self._runs.append(run)


def id_lines(path: Path, spec, chunk_size: int, first_chunk: int, stop_offset: int, values: set) -> dict:
    """Id -> CSV lines where it occurs, for ids in ``values``, from chunk ``first_chunk`` up to data row
    ``stop_offset`` (counted, not assumed: Parquet batches can be short at row-group ends)."""
    found: dict = {}
    offset = first_chunk * chunk_size
    for chunk in read_chunks(path, spec, chunk_size, first_chunk):
        if offset >= stop_offset:
            break
        chunk = chunk.iloc[:stop_offset - offset]
        hit = chunk[spec.id].isin(values).to_numpy()
        for value, line in zip(chunk[spec.id][hit], line_numbers(hit, offset)):
            found.setdefault(value, []).append(int(line))
        offset += len(chunk)
    return found


def unique_ids(path: Path, spec, chunk_size: int, first_chunk: int = 0) -> UniqueIds:
    """The duplicate-id check of ``path`` streamed from chunk ``first_chunk`` on."""
    return UniqueIds(spec.id, str(path), lambda values, offset: id_lines(path, spec, chunk_size, first_chunk, offset, values))


def _count_rows(path: Path) -> int | None:
    if path.suffix == ".parquet":
        return open_parquet(path).metadata.num_rows
    return None


def count_data_rows(path: str | os.PathLike) -> int:
    """Data rows of a CSV (lines after the header; a last line without newline counts) or Parquet file."""
    path = Path(path)
    if path.suffix == ".parquet":
        return _count_rows(path)
    lines, last = 0, b"\n"
    with open(path, "rb") as handle:
        while block := handle.read(1 << 24):
            lines += block.count(b"\n")
            last = block[-1:]
    if last != b"\n":
        lines += 1
    return max(0, lines - 1)


def shard_chunks(n_rows: int, chunk_size: int, shard: int, shards: int) -> tuple[int, int | None]:
    """Chunk range ``[first, stop)`` of shard ``shard`` (1-based) of ``shards``: whole chunks, contiguous.

    The last shard's ``stop`` is None (to the end of the file), so a miscounted file is never cut short.
    """
    if not 1 <= shard <= shards:
        raise ValueError(f"shard {shard} is not in 1..{shards}")
    n_chunks = -(-n_rows // chunk_size)
    first = (shard - 1) * n_chunks // shards
    return first, None if shard == shards else max(first, shard * n_chunks // shards)


def _table_writer(path, schema, parquet: bool):
    """Arrow writers: CSV floats as the shortest text that reads back to the same float64, about 10x
    faster than pandas' formatted to_csv (which took ~90% of the time for 10M users)."""
    if parquet:
        return pq.ParquetWriter(path, schema)
    return pacsv.CSVWriter(path, schema, write_options=pacsv.WriteOptions(quoting_style="needed"))


def one_inference_thread() -> None:
    """Process-wide: BLAS (and torch, when imported) on one thread. Scoring multiplies small matrices, and the
    threads OpenBLAS starts for the larger ones made a 1,000-user request 15x slower on a busy 2-core machine."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def score_file(model_dir, input_path, output_path, chunk_size: int = 100_000, progress: bool = True,
               policy: PolicyConfig | None = None, chunks: tuple[int, int | None] | None = None) -> int:
    """Score every user of ``input_path`` (CSV or Parquet) into ``output_path`` (same format); return rows.

    Every user is checked (``UpliftScorer.score_frame``; ids unique within the chunks scored) before
    anything is written. With a ``policy``, a 0/1 ``treat`` column from the configured targeting rule is added
    (``policy.decide``, as the HTTP service decides). With ``chunks``
    (``(first, stop)``, see ``shard_chunks``), only those chunks are scored (line numbers still refer to
    the whole file) and an empty range writes a CSV with the header only.
    """
    from tqdm import tqdm

    scorer = UpliftScorer.load(model_dir)
    policy = scorer.policy(policy) if policy is not None else None
    input_path, output_path = Path(input_path), Path(output_path)
    parquet_out = output_path.suffix == ".parquet"
    first_chunk, stop_chunk = chunks if chunks is not None else (0, None)
    bar = tqdm(total=_count_rows(input_path), unit="users", disable=not progress, file=sys.stderr, mininterval=1.0)
    with atomic_path(output_path) as tmp:
        try:
            rows = 0
            if input_path.suffix != ".parquet" and not parquet_out:
                rows = _score_with_arrow(scorer, policy, input_path, tmp, chunk_size, first_chunk, stop_chunk, bar)
            if not rows:
                bar.reset()
                rows = _score_with_pandas(scorer, policy, input_path, tmp, chunk_size, first_chunk, stop_chunk, bar,
                                          parquet_out)
        finally:
            bar.close()
        if rows == 0 and chunks is not None and not parquet_out:
            # Header only, written by the same writer as non-empty shards so gathered files stay byte-identical.
            fields = [pa.field(scorer.spec.id, pa.string()),
                      *(pa.field(c, pa.float64()) for c in scorer.prediction_columns)]
            decision = pa.field(scorer.decision_column, pa.string() if scorer.surrogate.arm_names else pa.int64())
            schema = pa.schema(fields + ([decision] if policy is not None else []))
            header_writer = _table_writer(tmp, schema, parquet=False)
            header_writer.write_table(schema.empty_table())
            header_writer.close()
        elif rows == 0:
            raise DataValidationError(f"{input_path}: no users to score")
    log.info("scored %d users from %s into %s", rows, input_path, output_path)
    return rows


def _score_with_pandas(scorer: UpliftScorer, policy, input_path: Path, tmp: Path, chunk_size: int, first_chunk: int,
                       stop_chunk: int | None, bar, parquet_out: bool) -> int:
    """``score_file`` chunk by chunk through pandas and ``score_frame``: the path that names every problem."""
    offset, rows, writer = first_chunk * chunk_size, 0, None
    # Within the chunks scored here; the pipeline's check_score_file covers the whole file before sharding.
    ids = unique_ids(input_path, scorer.spec, chunk_size, first_chunk)
    try:
        for chunk in read_chunks(input_path, scorer.spec, chunk_size, first_chunk, stop_chunk):
            scored = scorer.score_frame(chunk, str(input_path), offset=offset + rows)
            ids.add(chunk[scorer.spec.id], offset + rows)
            if policy is not None:
                scored[scorer.decision_column] = scorer.decisions(scored, policy)
            table = pa.Table.from_pandas(scored, preserve_index=False)
            writer = writer or _table_writer(tmp, table.schema, parquet_out)
            writer.write_table(table)
            rows += len(scored)
            bar.update(len(scored))
    finally:
        if writer is not None:
            writer.close()
    return rows


def _score_with_arrow(scorer: UpliftScorer, policy, input_path: Path, tmp: Path, chunk_size: int, first_chunk: int,
                      stop_chunk: int | None, bar) -> int:
    """``score_file``'s CSV path through Arrow: the same checks (``clear_columns``), encoder, networks, ``decide``
    and writer as the pandas path, so the same bytes; returns the rows written, 0 when the pandas path must
    score the file (something not all clear, or no rows)."""
    spec = scorer.spec
    ids = IdHashes()  # checked once all are read: a repeat sends the file to the pandas path, output unused
    rows, writer = 0, None
    try:
        for batch in arrow_batches(input_path, spec, chunk_size, first_chunk, stop_chunk):
            columns = clear_columns(batch, spec)
            ids.add(id_hashes(batch.column(spec.id)))
            with np.errstate(over="ignore", invalid="ignore"):  # overflow shows as non-finite, refused right after
                preds = scorer.surrogate.predict_encoded(scorer.encoder.transform(columns))
            if not all(np.isfinite(preds[c]).all() for c in scorer.prediction_columns):
                raise NotClear("a prediction is not finite")
            table = {spec.id: batch.column(spec.id), **{c: from_numpy(preds[c]) for c in scorer.prediction_columns}}
            if policy is not None:
                chosen = scorer.decisions(preds, policy)
                table[scorer.decision_column] = from_numpy(chosen) if chosen.dtype != object else pa.array(chosen, pa.string())
            table = pa.Table.from_arrays(list(table.values()), names=list(table))
            writer = writer or _table_writer(tmp, table.schema, parquet=False)
            writer.write_table(table)
            rows += batch.num_rows
            bar.update(batch.num_rows)
        if not ids.all_unique():
            raise NotClear("an id may repeat")
    except NotClear as exc:
        log.debug("%s: scored through pandas from the start (Arrow's path stopped: %s)", input_path, exc)
        return 0
    finally:
        if writer is not None:
            writer.close()
    return rows
