from bayeslift.entry import run_step
from bayeslift.report import build_report

run_step(snakemake.log[0], build_report, snakemake.input.evaluation, snakemake.input.diagnostics, snakemake.input.ate,
         snakemake.output.html, title=snakemake.params.title,
         delivered_diagnostics_json=snakemake.input.delivered_diagnostics)
