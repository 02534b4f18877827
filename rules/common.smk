# Paths and helpers shared by the rules; rules never build paths by string concatenation.
from pathlib import Path

RESULTS = "results"
LOGS = "logs"
R_LIB = sorted(str(p) for p in Path(workflow.basedir, "R", "bayeslift", "R").glob("*.R"))  # the R package's sources
BOUNDARY_SCHEMA = str(Path(workflow.basedir, "python", "bayeslift", "boundary.yaml"))
SIMULATED = {
    "history": "data/simulated/history.csv",
    "new_users": "data/simulated/new_users.csv",
    "history_truth": "data/simulated_truth/history_truth.csv",
    "new_users_truth": "data/simulated_truth/new_users_truth.csv",
}


def results(*parts):
    return str(Path(RESULTS, *parts))


# Built from the score file: removed when check_score_file or a scoring shard runs (both rebuild them),
# so a failed re-score leaves no earlier run's predictions or summary (bayeslift.score_check).
RESCORED_OUTPUTS = [results("uplift_predictions.csv"), results("summary.json")]


def results_folder(wildcards, output):
    """The results folder above a rule's first output: the only place remove_stale_outputs may remove from."""
    return str(next(p for p in Path(output[0]).parents if p.name == RESULTS))


def logs(name):
    return str(Path(LOGS, f"{name}.log"))


# Scatter/gather (issue 6): MCMC chains and shards of users as separate jobs.
SHARDS = int(config.get("shards", 1))
# What the chain jobs fit, as their params: a change of model.checks or model.intervals must not refit them.
MODEL_FIT = {k: v for k, v in config["model"].items() if k not in ("checks", "intervals")}
# Variational inference (model.inference.algorithm meanfield/fullrank) is one job: ADVI has no chains.
INFERENCE = config["model"]["inference"]
CHAINS = int(INFERENCE["chains"]) if INFERENCE["algorithm"] == "sampling" else 1

# Which fit is delivered (split.refit_all, issue 23). The holdout evaluation always scores the fit on the train
# split (results/model, results/counterfactuals), so its numbers stay out-of-sample. With refit_all the model
# rules run a second time on every row, into results/delivered/ (wildcard `delivered`: "" or "delivered/"),
# the delivered surrogate (results/surrogate) learns that fit, and the evaluation gets its own surrogate of the
# train-split fit (results/evaluation/surrogate; wildcard `evaluation`: "" or "evaluation/").
REFIT_ALL = bool(config["split"]["refit_all"])
FOLDERS = {
    "delivered": {"delivered": "delivered/" if REFIT_ALL else "", "evaluation": ""},
    "evaluated": {"delivered": "", "evaluation": "evaluation/" if REFIT_ALL else ""},
}

wildcard_constraints:
    chain=r"[1-9][0-9]*",
    shard=r"[1-9][0-9]*",
    delivered=r"(delivered/)?",
    evaluation=r"(evaluation/)?",


def delivered(pattern):
    """A model, counterfactuals or surrogate output ``pattern`` of the delivered fit, as a path."""
    return pattern.format(**FOLDERS["delivered"])


def evaluated(pattern):
    """The same output of the fit the holdout evaluation scores (the train split's), as a path."""
    return pattern.format(**FOLDERS["evaluated"])


def fit_rows(wildcards):
    """The prepared splits a fit is fitted on: the train split, and for the delivered refit the holdout too."""
    prepared = rules.prepare.output
    return [prepared.train, prepared.holdout] if wildcards.delivered else [prepared.train]


def shape_pick(wildcards):
    """Under shape auto's pick, the file whose LOO choice a fit keeps (R ``kept_model_config``): for the train
    split, rule shape_choice's (made on a capped subsample; it keeps nothing for a history within the cap),
    and for the delivered refit the train split's diagnostics, so that the delivered model has the evaluated
    shape."""
    shape, combine = config["model"]["effect"]["shape"], config["model"]["combine"]
    if shape != "auto" or combine != "pick":
        return {}
    if wildcards.delivered:
        return {"pick": rules.bayesian_model.output.diagnostics.format(delivered="")}
    return {"pick": rules.shape_choice.output.choice}


def fitted_on(wildcards):
    return "all" if wildcards.delivered else "train"


def chain_fits(wildcards):
    """The per-chain fits that `bayesian_model` combines, chain 1 first."""
    return expand(rules.bayesian_chain.output.fit, delivered=wildcards.delivered, chain=range(1, CHAINS + 1))


def counterfactual_shards(wildcards):
    """The shards that `counterfactuals` gathers, in order."""
    return expand(rules.counterfactuals_shard.output.shard, delivered=wildcards.delivered, shard=range(1, SHARDS + 1))


def surrogate_counterfactuals(wildcards):
    """The counterfactual tables a surrogate learns: the delivered fit's, or (evaluation/) the train split's."""
    tables = evaluated if wildcards.evaluation else delivered
    out = rules.counterfactuals.output
    return {key: tables(getattr(out, key)) for key in ("train_data", "labels", "uplift")}


def shard_files(pattern):
    """``pattern`` (with ``{shard}``) for shards 1..``shards``, in the order they are gathered."""
    return [pattern.format(shard=s) for s in range(1, SHARDS + 1)]


# Default threads, memory (MB) and runtime (minutes) per rule; config `resources: {rule: {...}}` overrides
# them, and a cluster profile's `set-resources` overrides both.
DEFAULT_RESOURCES = {
    "shape_choice": {"mem_mb": 4000, "runtime": 60},
    "bayesian_chain": {"mem_mb": 2000, "runtime": 120},
    "bayesian_model": {"mem_mb": 4000, "runtime": 30},
    "interval_calibration": {"mem_mb": 4000, "runtime": 240},
    "counterfactuals_shard": {"mem_mb": 4000, "runtime": 60},
    "counterfactuals": {"mem_mb": 4000, "runtime": 30},
    "surrogate_model": {"mem_mb": 4000, "runtime": 60},
    "check_score_file": {"mem_mb": 2000, "runtime": 30},
    "batch_uplift_shard": {"mem_mb": 2000, "runtime": 60},
    "batch_uplift": {"mem_mb": 1000, "runtime": 30},
    "summary": {"mem_mb": 1000, "runtime": 10},
}


def rule_resources(rule_name):
    """Resources of ``rule_name``: the defaults above updated with config ``resources``."""
    out = dict(DEFAULT_RESOURCES.get(rule_name, {}))
    out.update((config.get("resources") or {}).get(rule_name) or {})
    return out


def interval_calibration_input(wildcards):
    """The interval scale the counterfactuals apply, when model.intervals.calibrate asks for one."""
    if not config["model"]["intervals"]["calibrate"]:
        return {}
    return {"calibration": rules.interval_calibration.output.calibration.format(delivered=wildcards.delivered)}


def evaluation_truth(wildcards):
    truth = config["evaluation"]["truth"]
    # The simulator's truth (the default) belongs to the simulated history only: with your own data it is
    # ignored rather than simulated and compared against the wrong users.
    if truth == SIMULATED["history_truth"] and config["data"]["train"] != SIMULATED["history"]:
        return {}
    return {"truth": truth} if truth else {}
