from bayeslift.entry import run_step
from bayeslift.evaluation import TABLES
from bayeslift.report import FIGURES, build_report

run_step(snakemake.log[0], build_report, snakemake.input.evaluation, {n: snakemake.input[n] for n in TABLES},
         snakemake.input.diagnostics, snakemake.input.posterior_ate, snakemake.output.html,
         title=snakemake.params.title, delivered_diagnostics_json=snakemake.input.delivered_diagnostics,
         figures={n: snakemake.output[n] for n in FIGURES})
