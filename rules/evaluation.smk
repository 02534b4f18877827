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
    # Several campaign arms: the multi-arm learners, one prediction row per holdout user and arm (docs/evaluation.md).
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
    # Every model on the holdout: the summary and one table per output (bayeslift.evaluation.OUTPUTS);
    # the report draws the figures from the tables. Several campaign arms: the same files, per arm
    # (bayeslift.evaluation_arms; policy_curve.csv is the multi-arm budget curve).
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
        ate=results("evaluation", "ate.csv"),
        metrics=results("evaluation", "metrics.csv"),
        curves=results("evaluation", "curves.csv"),
        calibration=results("evaluation", "calibration.csv"),
        policy=results("evaluation", "policy.csv"),
        policy_curve=results("evaluation", "policy_curve.csv"),
        segments=results("evaluation", "segments.csv"),
        predictions=results("evaluation", "predictions.csv"),
    params:
        evaluation=config["evaluation"],
        policy=config["policy"],
    log:
        logs("evaluate"),
    threads: 2
    conda:
        "../envs/python.yaml"
    script:
        "../scripts/evaluate.py"


rule report:
    # One self-contained page (the figures embedded); the figures are also kept as PNG files
    # (bayeslift.report.FIGURES), each drawn from the evaluation's tables.
    input:
        evaluation=rules.evaluate.output.summary,
        ate=rules.evaluate.output.ate,
        metrics=rules.evaluate.output.metrics,
        curves=rules.evaluate.output.curves,
        calibration=rules.evaluate.output.calibration,
        policy=rules.evaluate.output.policy,
        policy_curve=rules.evaluate.output.policy_curve,
        segments=rules.evaluate.output.segments,
        predictions=rules.evaluate.output.predictions,
        diagnostics=evaluated(rules.bayesian_model.output.diagnostics),
        delivered_diagnostics=delivered(rules.bayesian_model.output.diagnostics),
        posterior_ate=delivered(rules.counterfactuals.output.ate),
    output:
        html=results("report", "index.html"),
        qini=results("report", "figures", "qini.png"),
        calibration=results("report", "figures", "calibration.png"),
        policy_curve=results("report", "figures", "policy_curve.png"),
        segments=results("report", "figures", "segments.png"),
        surrogate_vs_bayesian=results("report", "figures", "surrogate_vs_bayesian.png"),
    params:
        title=config["report"]["title"],
    log:
        logs("report"),
    threads: 1
    conda:
        "../envs/python.yaml"
    script:
        "../scripts/report.py"
