from bayeslift.entry import run_step
from bayeslift.summary import write_summary

run_step(snakemake.log[0], write_summary, snakemake.input.ate, snakemake.input.diagnostics,
         snakemake.input.manifest, snakemake.input.predictions, snakemake.output.summary,
         evaluation_diagnostics_json=snakemake.input.evaluation_diagnostics)
