# bayeslift: Bayesian counterfactual spend (R) -> PyTorch surrogate -> batch uplift.
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")


# Resolved from the Snakefile so --directory runs get the same defaults.
configfile: str(Path(workflow.basedir, "config", "config.yaml"))


validate(config, str(Path(workflow.basedir, "config", "config.schema.yaml")), set_default=True)


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/model.smk"
include: "rules/surrogate.smk"
include: "rules/evaluation.smk"


rule all:
    input:
        predictions=results("uplift_predictions.csv"),
        summary=results("summary.json"),
        report=results("report", "index.html"),
    default_target: True
