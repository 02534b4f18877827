from bayeslift.entry import run_step
from bayeslift.hillstrom import prepare_hillstrom

h = snakemake.params.hillstrom
run_step(snakemake.log[0], prepare_hillstrom, snakemake.input.raw, snakemake.output.data, treatment=h["treatment"],
         sample_n=h["sample_n"], seed=h["seed"])
