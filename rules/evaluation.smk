# Evaluation (issue 4): baselines fitted on the train split, every model scored on the holdout, an HTML report.
# Hillstrom: a preprocessing rule that derives treatment 0/1 and an id column from the raw e-mail file.


_unknown_segments = sorted(
    set(config["evaluation"]["segments"] or [])
    - set(config["columns"]["numeric"]) - set(config["columns"]["categorical"])
)
if _unknown_segments:
    raise ValueError(
        f"config evaluation.segments names {_unknown_segments}, which are not model features "
        f"(columns.numeric + columns.categorical); nothing was run"
    )


if config["hillstrom"]["raw"]:

    rule prepare_hillstrom:
        # Raw Hillstrom file -> customer_id, treatment 0/1 (per hillstrom.treatment), spend, features.
        # A relative hillstrom.raw is taken relative to the repository root (where the Snakefile is).
        input:
            raw=str(Path(workflow.basedir, config["hillstrom"]["raw"])),
        output:
            data=results("hillstrom", "hillstrom.csv"),
        params:
            hillstrom=config["hillstrom"],
        log:
            logs("prepare_hillstrom"),
        threads: 1
        conda:
            "../envs/python.yaml"
        script:
            "../scripts/prepare_hillstrom.py"


rule baselines:
    input:
        train=rules.prepare.output.train,
        holdout=rules.prepare.output.holdout,
        spec=rules.prepare.output.spec,
    output:
        predictions=results("baselines", "holdout_predictions.csv"),
        bundle=results("baselines", "t_learner_lightgbm.joblib"),
    params:
        evaluation=config["evaluation"],
    log:
        logs("baselines"),
    threads: 2
    conda:
        "../envs/python.yaml"
    script:
        "../scripts/baselines.py"


rule evaluate:
    input:
        unpack(evaluation_truth),
        holdout=rules.prepare.output.holdout,
        spec=rules.prepare.output.spec,
        # the train split's fit and its surrogate: the holdout is out-of-sample for both (split.refit_all)
        uplift=evaluated(rules.counterfactuals.output.uplift),
        manifest=evaluated(rules.surrogate_model.output.manifest),
        baselines=rules.baselines.output.predictions,
    output:
        summary=results("evaluation", "evaluation.json"),
        metrics=results("evaluation", "metrics.csv"),
        policy=results("evaluation", "policy.csv"),
    params:
        evaluation=config["evaluation"],
        policy=config["policy"],
        out_dir=lambda wildcards, output: str(Path(output.summary).parent),
    log:
        logs("evaluate"),
    threads: 2
    conda:
        "../envs/python.yaml"
    script:
        "../scripts/evaluate.py"


rule report:
    input:
        evaluation=rules.evaluate.output.summary,
        diagnostics=evaluated(rules.bayesian_model.output.diagnostics),
        delivered_diagnostics=delivered(rules.bayesian_model.output.diagnostics),
        ate=delivered(rules.counterfactuals.output.ate),
    output:
        html=results("report", "index.html"),
    params:
        title=config["report"]["title"],
    log:
        logs("report"),
    threads: 1
    conda:
        "../envs/python.yaml"
    script:
        "../scripts/report.py"
