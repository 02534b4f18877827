# bayeslift: Bayesian counterfactual spend (R) -> PyTorch surrogate -> batch uplift.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "config/config.schema.yaml", set_default=True)


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/model.smk"
include: "rules/surrogate.smk"


rule all:
    input:
        predictions=results("uplift_predictions.csv"),
        summary=results("summary.json"),
    default_target: True
