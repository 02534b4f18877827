"""Snakemake entry of `batch_uplift_shard`: score shard {shard} of `shards` (whole chunks, contiguous)."""
import os
from pathlib import Path

from bayeslift.data import DataValidationError
from bayeslift.entry import run_step
from bayeslift.policy import PolicyConfig
from bayeslift.score_check import remove_stale_outputs
from bayeslift.scoring import count_data_rows, score_file, shard_chunks


def score_shard(model_dir, users, output, chunk_size, shard, shards, policy, stale_outputs, results_dir):
    remove_stale_outputs(stale_outputs, results_dir)  # a failed shard leaves no earlier run's predictions
    chunks = shard_chunks(count_data_rows(users), chunk_size, shard, shards) if shards > 1 else None
    # Fault-injection hook for the scaling tests: this shard fails as bad input would.
    if os.environ.get("BAYESLIFT_FAIL_SHARD") == str(shard):
        raise DataValidationError(f"BAYESLIFT_FAIL_SHARD={shard}: shard {shard} fails on purpose")
    return score_file(model_dir, users, output, chunk_size=chunk_size, policy=policy, chunks=chunks)


run_step(snakemake.log[0], score_shard, Path(snakemake.input.manifest).parent, snakemake.input.users,
         snakemake.output.predictions, int(snakemake.params.chunk_size), int(snakemake.wildcards.shard),
         int(snakemake.params.shards), PolicyConfig.from_config(snakemake.params.policy),
         snakemake.params.stale_outputs, snakemake.params.results_dir)
