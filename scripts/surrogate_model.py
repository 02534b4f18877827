from pathlib import Path

from bayeslift.entry import run_step
from bayeslift.surrogate import SurrogateConfig, train_surrogate_model

run_step(snakemake.log[0], train_surrogate_model, snakemake.input.train_data, snakemake.input.labels,
         snakemake.input.uplift, snakemake.input.spec, Path(snakemake.output.manifest).parent,
         SurrogateConfig(**snakemake.params.surrogate), threads=snakemake.threads)
