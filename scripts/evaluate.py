from pathlib import Path

from bayeslift.entry import run_step
from bayeslift.evaluation import run_evaluation

run_step(snakemake.log[0], run_evaluation, snakemake.input.holdout, snakemake.input.spec, snakemake.input.uplift,
         Path(snakemake.input.manifest).parent, snakemake.input.baselines, dict(snakemake.output.items()),
         snakemake.params.evaluation, snakemake.params.policy, truth_csv=snakemake.input.get("truth"))
