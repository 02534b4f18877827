"""Users to score read by Arrow: Parquet files, and the CSV fast path of batch scoring (``scoring.score_file``).

Parquet: record batches, with a damaged file or a date in a numeric column named as a DataValidationError.
CSV: typed batches, one all-clear test of the scoring checks, id hashes. Nothing on the CSV path names a
problem: anything the pandas path might read differently or refuse (a parse error, a missing, non-numeric or
non-finite value, an unseen category, a value beyond the training range bound, an id that may repeat) raises
:class:`NotClear`, and the pandas path then scores the file from its start and names the file, column and line.
The CSV path imports no pandas.
"""
from __future__ import annotations

import codecs
import csv
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .data import DataValidationError, FeatureSpec, outside_training_range
from .features import LevelCodes

BLOCK_BYTES = 1 << 24  # CSV bytes per batch: ~500k users of a 6-column file; memory stays bounded
_MIX = np.uint64(0xFF51AFD7ED558CCD)  # murmur3's finalizer constant
_STEP = np.uint64(0x9E3779B97F4A7C15)  # odd: multiplying by it is a bijection of 64-bit words
_WORD_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)  # the low k bytes of a word
#: pandas' default NA strings (``pandas._libs.parsers.STR_NA_VALUES``, which a test compares): the pandas path
#: reads them as missing in numeric columns
NA_STRINGS = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A",
              "NA", "NULL", "NaN", "None", "n/a", "nan", "null")


@contextmanager
def parquet_errors(path: Path):
    """pyarrow's failures on a damaged file (ArrowInvalid for a bad footer, a plain OSError for a corrupt
    page) as one :class:`DataValidationError` naming the file, on one line (thrift's messages span two)."""
    try:
        yield
    except (pa.ArrowException, OSError) as exc:
        raise DataValidationError(f"{path}: not a readable Parquet file ({' '.join(str(exc).split())})") from None


def open_parquet(path: Path) -> pq.ParquetFile:
    """The Parquet file at ``path``, or a clear error when it is missing, empty or not Parquet."""
    if not path.exists():
        raise DataValidationError(f"{path}: file not found")
    if path.is_file() and path.stat().st_size == 0:
        raise DataValidationError(f"{path}: file is empty")
    with parquet_errors(path):
        return pq.ParquetFile(path)


def parquet_batches(path: Path, parquet: pq.ParquetFile, chunk_size: int):
    """Record batches of ``parquet``; pages are decoded here, so a corrupt one fails here."""
    batches = parquet.iter_batches(batch_size=chunk_size)
    while True:
        with parquet_errors(path):
            batch = next(batches, None)
        if batch is None:
            return
        yield batch


def check_numeric_types(path: Path, schema: pa.Schema, spec) -> None:
    """Refuse dates, times, durations and booleans in numeric features: pandas would turn them into counts of
    microseconds or 0/1 without a word, where a CSV's "True" and JSON's true are refused (strings and
    decimals are checked value by value, as in a CSV)."""
    for col in spec.numeric:
        kind = schema.field(col).type if col in schema.names else None
        if kind is not None and (pa.types.is_temporal(kind) or pa.types.is_boolean(kind)):
            raise DataValidationError(f"{path}: column '{col}' must be numeric; the Parquet column's type is "
                                      f"{schema.field(col).type}")


class NotClear(Exception):
    """The fast path stops here; the pandas path takes the file over."""


def arrow_batches(path: Path, spec: FeatureSpec, chunk_size: int, first_chunk: int = 0,
                  stop_chunk: int | None = None, block_size: int = BLOCK_BYTES):
    """Record batches of ``path`` from chunk ``first_chunk`` (of ``chunk_size`` rows) up to ``stop_chunk``.

    Typed as the pandas path reads them: ids, categories and unused columns as strings (an empty one stays
    "", which ``clear_columns`` refuses, where pandas reads it as missing), numeric features as float64 with
    pandas' NA strings as nulls.
    """
    header = _header(path)
    if len(set(header)) != len(header) or any(c not in header for c in [spec.id, *spec.features]):
        raise NotClear("header")
    types = {c: pa.float64() if c in spec.numeric else pa.string() for c in header}
    text = [c for c in header if c not in spec.numeric]
    read = pacsv.ReadOptions(block_size=block_size)
    convert = pacsv.ConvertOptions(column_types=types, null_values=list(NA_STRINGS), strings_can_be_null=False)
    # Rows before the first chunk are parsed and dropped here, and a blank line or a line break in a quoted
    # field is not all clear: then rows are lines, as pandas' skiprows (so the chunks) count them.
    parse = pacsv.ParseOptions(ignore_empty_lines=False)
    skip = first_chunk * chunk_size
    left = None if stop_chunk is None else max(0, stop_chunk - first_chunk) * chunk_size
    try:
        reader = pacsv.open_csv(path, read_options=read, parse_options=parse, convert_options=convert)
        if reader.schema.names != header:  # e.g. a byte-order mark pandas drops
            raise NotClear("header")
        while left is None or left > 0:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            if any(_has_line_break(batch.column(c)) for c in text):
                raise NotClear("a line break inside a quoted field")
            dropped = min(skip, batch.num_rows)
            batch, skip = batch.slice(dropped), skip - dropped
            if left is not None:
                batch, left = batch.slice(0, left), left - min(left, batch.num_rows)
            if batch.num_rows:
                yield batch
    except pa.ArrowException as exc:  # parse and conversion errors, invalid UTF-8, ...
        raise NotClear(str(exc)) from None


def numpy_view(values: pa.Array, dtype) -> np.ndarray:
    """A primitive array without nulls as a read-only numpy view of its buffer (``Array.to_numpy`` would import
    pandas, ~0.6 CPU-s)."""
    dtype = np.dtype(dtype)
    if values.null_count or values.type.bit_width != 8 * dtype.itemsize:
        raise ValueError(f"not a null-free {dtype} array: {values.type}")
    return np.frombuffer(values.buffers()[1], dtype=dtype, count=len(values), offset=values.offset * dtype.itemsize)


def from_numpy(values: np.ndarray) -> pa.Array:
    """A float64 or int64 numpy array as an Arrow array over the same memory (``pa.array`` imports pandas)."""
    values = np.ascontiguousarray(values)
    kind = {np.dtype(np.float64): pa.float64(), np.dtype(np.int64): pa.int64()}[values.dtype]
    return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(values)])


def _offsets(ids: pa.Array) -> np.ndarray:
    """The string array's len + 1 offsets into its data buffer."""
    return np.frombuffer(ids.buffers()[1], dtype=np.int32)[ids.offset:ids.offset + len(ids) + 1]


def _header(path: Path) -> list[str]:
    """The names on the first line (``csv`` rules), or NotClear for anything pandas might read otherwise: no
    file, no header, a byte-order mark, not UTF-8 (a quoted line break in a name shows as a mismatch with
    Arrow's names)."""
    try:
        with open(path, "rb") as fh:
            first = fh.readline(1 << 20)
        names = next(csv.reader([first.decode("utf-8")]), [])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise NotClear(str(exc)) from None
    if first.startswith(codecs.BOM_UTF8) or not names:
        raise NotClear("header")
    return names


def _has_line_break(values: pa.Array) -> bool:
    """Whether a string array's bytes hold a CR or LF (its whole data buffer: at worst a needless NotClear)."""
    data = values.buffers()[2]
    raw = data.to_pybytes() if data is not None else b""
    return b"\n" in raw or b"\r" in raw


def _level_codes(values: pa.Array, levels: list[str]) -> LevelCodes:
    """Each user's index into ``levels``; NotClear for a value that is not a level (or missing)."""
    encoded = values.dictionary_encode()
    index = {level: i for i, level in enumerate(levels)}
    try:
        lookup = np.array([index[v] for v in encoded.dictionary.to_pylist()], dtype=np.intp)
    except KeyError:
        raise NotClear("unseen level") from None
    if encoded.null_count or "" in index:
        raise NotClear("missing level")
    return LevelCodes(lookup[numpy_view(encoded.indices, np.int32)])


def clear_columns(batch: pa.RecordBatch, spec: FeatureSpec) -> dict:
    """The features of ``batch`` as ``FeatureEncoder.transform`` takes them (float64 arrays, categoricals),
    when every check of ``data.validate_score_frame`` passes; else :class:`NotClear`."""
    if (np.diff(_offsets(batch.column(spec.id))) == 0).any():
        raise NotClear("missing id")
    columns = {}
    for col in spec.numeric:
        values = batch.column(col)
        if values.null_count:
            raise NotClear(f"missing {col}")
        values = numpy_view(values, np.float64)
        if not np.isfinite(values).all() or (col in spec.log1p and (values < 0).any()):
            raise NotClear(f"bad {col}")
        columns[col] = values
    if outside_training_range(columns, spec):
        raise NotClear("beyond the training range")
    for col in spec.categorical:
        columns[col] = _level_codes(batch.column(col), spec.levels[col])
    return columns


def id_hashes(ids: pa.Array) -> np.ndarray:
    """A 64-bit hash of each string of ``ids`` (no nulls), from Arrow's buffers: no Python string is made.

    Over 8-byte little-endian words (the last one zero-padded), word by word for all ids at once: xor into the
    state (the length to start), multiply, fold the high half down; then murmur3's finalizer. Each step is a
    bijection of the state, so ids of one length up to 8 bytes never collide; a repeated hash only sends the
    file to the pandas path, which compares ids exactly.
    """
    offsets = _offsets(ids)
    starts, lengths = offsets[:-1].astype(np.intp), np.diff(offsets)
    raw = ids.buffers()[2]
    padded = np.zeros((raw.size if raw is not None else 0) + 8, dtype=np.uint8)  # a word may run past the last id
    if raw is not None:
        padded[:raw.size] = np.frombuffer(raw, dtype=np.uint8)
    words = np.lib.stride_tricks.as_strided(padded, shape=(len(padded) - 7, 8), strides=(1, 1))  # a word at each byte
    out = lengths.astype(np.uint64) * _MIX
    rows = np.arange(len(ids))
    for j in range(0, int(lengths.max(initial=0)), 8):
        rows = rows[lengths[rows] > j]  # the ids with a word at byte j
        word = words[starts[rows] + j].view("<u8")[:, 0] & _WORD_MASKS[np.minimum(lengths[rows] - j, 8)]
        state = (out[rows] ^ word) * _STEP
        out[rows] = state ^ (state >> np.uint64(32))
    out ^= out >> np.uint64(33)
    out *= _MIX
    out ^= out >> np.uint64(33)
    return out


class IdHashes:
    """The Arrow path's duplicate-id check: every chunk's id hashes (8 bytes per user), sorted once at the end
    (one sort of all costs ~6x less than looking each chunk up in sorted runs as ``scoring.UniqueIds`` does to
    name a duplicate as soon as its chunk is read)."""

    def __init__(self):
        self._chunks: list[np.ndarray] = []

    def add(self, hashes: np.ndarray) -> None:
        self._chunks.append(hashes)

    def all_unique(self) -> bool:
        """Whether no hash repeats among all added (a repeat may be a collision: the pandas path compares)."""
        every = np.concatenate(self._chunks) if self._chunks else np.empty(0, dtype=np.uint64)
        self._chunks = [every]  # the chunks' memory freed before sorting in place
        every.sort()
        return not (every[1:] == every[:-1]).any()
