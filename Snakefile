# bayeslift: Bayesian counterfactual spend (R) -> PyTorch surrogate -> batch uplift.
import sys
from pathlib import Path

from snakemake.utils import min_version

from bayeslift.config_check import ConfigError
from bayeslift.config_layers import checked_config, resolve_config

min_version("9.0")

DEFAULT_CONFIG = Path(workflow.basedir, "config", "config.yaml")
CONFIG_SCHEMA = Path(workflow.basedir, "config", "config.schema.yaml")


# Snakemake has merged the --configfile files over the defaults already, but says neither file nor line for
# a YAML syntax error in the default config, keeps the later of two equal keys silently and knows no presets
# or renamed keys: the config is built again here, layer by layer (bayeslift.config_layers). A problem stops
# the run before any job with its message alone (sys.exit prints it; a raised error adds frames).
try:
    _layers = (workflow.overwrite_configfiles, workflow.config_settings.config)
    if workflow.modifier.skip_validation:
        _resolved = resolve_config(DEFAULT_CONFIG, *_layers)
    else:
        _resolved = checked_config(DEFAULT_CONFIG, CONFIG_SCHEMA, *_layers)
except ConfigError as exc:
    sys.exit(str(exc))
for _note in _resolved.notes:
    print(_note, file=sys.stderr)


# Resolved from the Snakefile so --directory runs get the same defaults.
configfile: str(DEFAULT_CONFIG)


config.clear()
config.update(_resolved)


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
