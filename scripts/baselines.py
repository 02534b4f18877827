from bayeslift.evaluation import run_baselines
from bayeslift.entry import run_step

ev = snakemake.params.evaluation
run_step(snakemake.log[0], run_baselines, snakemake.input.train, snakemake.input.holdout, snakemake.input.spec,
         snakemake.output.predictions, snakemake.output.bundle, names=ev["baselines"], n_jobs=ev["n_jobs"],
         seed=ev["seed"], segments=ev["segments"])
