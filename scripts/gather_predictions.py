"""Snakemake entry of `batch_uplift`: concatenate the shards' prediction CSVs, in shard order, into one
CSV (the first shard's header, then every shard's rows), written atomically: a missing or failed shard
leaves no gathered file."""
import logging
import shutil

from bayeslift.data import DataValidationError
from bayeslift.entry import run_step
from bayeslift.io import atomic_path

log = logging.getLogger("bayeslift")


def gather_csv(parts, output):
    header = None
    rows = 0
    with atomic_path(output) as tmp, open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as src:
                first = src.readline()
                if header is None:
                    header = first
                    out.write(first)
                elif first != header:
                    raise DataValidationError(f"{part}: header {first!r} differs from the first shard's {header!r}")
                for block in iter(lambda: src.read(1 << 24), b""):
                    rows += block.count(b"\n")
                    out.write(block)
        if rows == 0:
            raise DataValidationError(f"no users scored in any of {len(parts)} shard(s)")
    log.info("gathered %d rows from %d shard(s) into %s", rows, len(parts), output)
    return rows


run_step(snakemake.log[0], gather_csv, list(snakemake.input.shards), snakemake.output.predictions)
