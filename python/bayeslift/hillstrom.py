"""The Hillstrom MineThatData e-mail test (64,000 customers) turned into a bayeslift campaign history.

The raw file has ``segment`` as text ("Mens E-Mail", "Womens E-Mail", "No E-Mail") and no id. This step
derives ``customer_id`` (the 1-based row number of the raw file) and ``treatment`` (0/1, or the arm's name):

* ``any``    any e-mail (mens or womens) = 1, no e-mail = 0 (all 64,000 rows);
* ``mens``   Mens E-Mail = 1 vs No E-Mail = 0 (the womens arm is dropped);
* ``womens`` Womens E-Mail = 1 vs No E-Mail = 0 (the mens arm is dropped);
* ``arms``   the segment's name: "mens", "womens" or "none" (all 64,000 rows), three arms with
  ``columns.control: none``.

Outcome: ``spend`` (dollars in the two weeks after the e-mail). Features kept: recency, history, mens,
womens, newbie (numeric), zip_code and channel (categorical); ``history_segment`` is a binned copy of
``history`` and ``visit``/``conversion`` are outcomes, so they are dropped.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from .data import DataValidationError, read_csv, require_columns
from .io import write_csv_atomic

log = logging.getLogger("bayeslift")
SEGMENTS = {"mens": "Mens E-Mail", "womens": "Womens E-Mail", "none": "No E-Mail"}
FEATURES = ["recency", "history", "mens", "womens", "newbie", "zip_code", "channel"]
COLUMNS = {"id": "customer_id", "treatment": "treatment", "outcome": "spend",
           "numeric": ["recency", "history", "mens", "womens", "newbie"], "categorical": ["zip_code", "channel"],
           "log1p": ["history"]}


def hillstrom_history(raw: pd.DataFrame, treatment: str = "any", sample_n: int | None = None, seed: int = 1,
                      source: str = "hillstrom") -> pd.DataFrame:
    """Raw Hillstrom frame -> customer_id, treatment, spend and the features (optionally a stratified sample).

    Only ~0.9% of customers buy, so a sample needs several thousand rows for the hurdle model to see
    buyers in both arms of both the train and the holdout split (8,000 gives ~15 control buyers).
    """
    require_columns(raw, ["segment", "spend", *FEATURES], source)
    unknown = sorted(set(raw["segment"].astype(str)) - set(SEGMENTS.values()))
    if unknown:
        raise DataValidationError(f"{source}: column 'segment' has unknown values {unknown[:3]}; "
                                  f"expected {list(SEGMENTS.values())}")
    frame = raw.copy()
    frame.insert(0, "customer_id", np.arange(1, len(raw) + 1))
    if treatment in ("any", "arms"):
        keep = np.ones(len(frame), dtype=bool)
    elif treatment in ("mens", "womens"):
        keep = frame["segment"].isin([SEGMENTS[treatment], SEGMENTS["none"]]).to_numpy()
    else:
        raise DataValidationError(f"hillstrom.treatment must be any, mens, womens or arms, got {treatment!r}")
    frame = frame[keep]
    if sample_n is not None and sample_n < len(frame):
        # Stratified by segment and by buying (spend > 0): the same share from each arm (and e-mail
        # version), and the rare buyers (~1%) keep their share so both arms have some.
        strata = [frame["segment"], frame["spend"].gt(0)]
        parts = [g.sample(n=max(1, int(round(sample_n * len(g) / len(frame)))), random_state=seed)
                 for _, g in frame.groupby(strata, sort=True)]
        frame = pd.concat(parts).sort_values("customer_id")
    if treatment == "arms":
        arm = frame["segment"].map({segment: name for name, segment in SEGMENTS.items()}).to_numpy(dtype=object)
    else:
        arm = (frame["segment"] != SEGMENTS["none"]).astype(int).to_numpy()
    out = pd.DataFrame({"customer_id": frame["customer_id"].to_numpy(), "treatment": arm,
                        "spend": frame["spend"].to_numpy(dtype=float)})
    for c in FEATURES:
        out[c] = frame[c].to_numpy()
    return out


def prepare_hillstrom(raw_csv, out_csv, treatment: str = "any", sample_n: int | None = None, seed: int = 1) -> pd.DataFrame:
    """The ``prepare_hillstrom`` step: read the raw CSV, derive id and treatment, write ``out_csv``."""
    out = hillstrom_history(read_csv(raw_csv), treatment, sample_n, seed, str(raw_csv))
    write_csv_atomic(out, out_csv)
    treated = ~out["treatment"].isin([0, "none"])  # 0/1, or the arm's name (treatment arms)
    log.info("hillstrom (%s vs no e-mail): %d customers, %d treated, mean spend %.3f", treatment, len(out),
             int(treated.sum()), out["spend"].mean())
    return out
