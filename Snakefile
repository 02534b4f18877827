# bayeslift: Bayesian counterfactual spend (R) -> PyTorch surrogate -> batch uplift.
import sys
from pathlib import Path

from snakemake.utils import min_version

from bayeslift.config_check import ConfigError, load_config_file, load_schema, validate_config

min_version("9.0")

DEFAULT_CONFIG = Path(workflow.basedir, "config", "config.yaml")
CONFIG_SCHEMA = Path(workflow.basedir, "config", "config.schema.yaml")


# Snakemake has read each --configfile already, but says neither file nor line for a YAML syntax error in
# the default config, and keeps the later of two equal keys silently: read them all here first. A problem
# stops the run before any job with its message alone (sys.exit prints it; a raised error adds frames).
try:
    for path in [DEFAULT_CONFIG, *workflow.overwrite_configfiles]:
        load_config_file(path)
except ConfigError as exc:
    sys.exit(str(exc))


# Resolved from the Snakefile so --directory runs get the same defaults.
configfile: str(DEFAULT_CONFIG)


if not workflow.modifier.skip_validation:
    try:
        validate_config(config, load_schema(CONFIG_SCHEMA), set_default=True)
    except ConfigError as exc:
        sys.exit(str(exc))


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
