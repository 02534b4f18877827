"""The error bad input raises, and how its messages name CSV lines.

Apart from data.py so that arms.py (which data.py uses) can raise the same error without a cycle.
"""
from __future__ import annotations

import numpy as np

MAX_ROWS_SHOWN = 5


class DataValidationError(ValueError):
    """A user's input file breaks one of bayeslift's data rules."""


def format_lines(numbers, noun: str = "line") -> str:
    """'line 5' / 'lines 5, 9 and 3 more' for CSV line numbers (``noun`` "row": for row positions)."""
    count = len(numbers)
    shown = ", ".join(str(i) for i in numbers[:MAX_ROWS_SHOWN])
    more = f" and {count - MAX_ROWS_SHOWN} more" if count > MAX_ROWS_SHOWN else ""
    return f"{noun}{'s' if count > 1 else ''} {shown}{more}"


def line_numbers(mask, offset: int = 0, header_lines: int = 1) -> np.ndarray:
    """CSV line numbers of the rows in ``mask`` (an array or Series); ``offset``: data rows before this frame."""
    return np.flatnonzero(np.asarray(mask)) + offset + header_lines + 1


def _lines(mask, header_lines: int = 1, offset: int = 0) -> str:
    return format_lines(line_numbers(mask, offset, header_lines))


def _examples(values, n: int = 3) -> str:
    """The first ``n`` of ``values`` (a Series or array), for a message."""
    import pandas as pd

    return ", ".join(repr(v) for v in pd.Series(values).iloc[:n].tolist())
