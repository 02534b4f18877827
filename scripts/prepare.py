from bayeslift.entry import run_step
from bayeslift.prepare import prepare_training_data

run_step(snakemake.log[0], prepare_training_data, snakemake.input.train, snakemake.params.columns,
         snakemake.params.split["holdout_fraction"], snakemake.params.split["seed"],
         snakemake.output.train, snakemake.output.holdout, snakemake.output.spec)
