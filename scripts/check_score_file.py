"""Snakemake entry of `check_score_file` and `check_score_file_before_fit`: the score file checked against
the prepared spec. The latter declares no score file (a new one must not refit): it reads the config's."""
from bayeslift.entry import run_step
from bayeslift.score_check import check_score_file

users = snakemake.input.get("users", snakemake.config["data"]["score"])
run_step(snakemake.log[0], check_score_file, snakemake.input.spec, users, snakemake.output.marker,
         int(snakemake.params.get("chunk_size", snakemake.config["scoring"]["chunk_size"])), stale_outputs=snakemake.params.stale_outputs,
         results_dir=snakemake.params.results_dir)
