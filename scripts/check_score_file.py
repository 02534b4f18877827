"""Snakemake entry of `check_score_file`: the score file checked against the prepared spec before any fit."""
from bayeslift.entry import run_step
from bayeslift.score_check import check_score_file

run_step(snakemake.log[0], check_score_file, snakemake.input.spec, snakemake.input.users, snakemake.output.marker,
         int(snakemake.params.chunk_size), stale_outputs=snakemake.params.stale_outputs,
         results_dir=snakemake.params.results_dir)
