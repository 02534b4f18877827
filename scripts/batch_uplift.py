from pathlib import Path

from bayeslift.entry import run_step
from bayeslift.policy import PolicyConfig
from bayeslift.scoring import score_file

run_step(snakemake.log[0], score_file, Path(snakemake.input.manifest).parent, snakemake.input.users,
         snakemake.output.predictions, chunk_size=snakemake.params.chunk_size,
         policy=PolicyConfig.from_config(snakemake.params.policy))
