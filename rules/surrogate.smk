rule surrogate_model:
    # results/surrogate learns the delivered fit; results/evaluation/surrogate (split.refit_all only) the
    # train split's fit that the holdout evaluation scores (rules/common.smk).
    input:
        unpack(surrogate_counterfactuals),
        spec=rules.prepare.output.spec,
    output:
        checkpoint=results("{evaluation}surrogate", "surrogate_nn.pth"),
        feature_columns=results("{evaluation}surrogate", "feature_columns.pkl"),
        scaler=results("{evaluation}surrogate", "spend_scaler.pkl"),
        manifest=results("{evaluation}surrogate", "manifest.json"),
    params:
        surrogate=config["surrogate"],
    log:
        logs("{evaluation}surrogate_model"),
    threads: 1
    resources:
        **rule_resources("surrogate_model"),
    conda:
        "../envs/python.yaml"
    script:
        "../scripts/surrogate_model.py"


rule batch_uplift_shard:
    # Shard {shard} of `shards`: whole chunks of the score file, contiguous, so gathering them in order
    # gives exactly the unsharded output.
    input:
        manifest=delivered(rules.surrogate_model.output.manifest),
        users=config["data"]["score"],
        score_check=rules.check_score_file.output.marker,
    output:
        predictions=results("scoring", "shards", "uplift_predictions_{shard}.csv"),
    params:
        chunk_size=config["scoring"]["chunk_size"],
        policy=config["policy"],
        shards=SHARDS,
        stale_outputs=RESCORED_OUTPUTS,
        results_dir=results_folder,
    log:
        logs("batch_uplift_shard_{shard}"),
    threads: 1
    resources:
        **rule_resources("batch_uplift_shard"),
    conda:
        "../envs/python.yaml"
    script:
        "../scripts/batch_uplift.py"


rule batch_uplift:
    input:
        shards=shard_files(results("scoring", "shards", "uplift_predictions_{shard}.csv")),
    output:
        predictions=results("uplift_predictions.csv"),
    log:
        logs("batch_uplift"),
    threads: 1
    resources:
        **rule_resources("batch_uplift"),
    conda:
        "../envs/python.yaml"
    script:
        "../scripts/gather_predictions.py"


rule summary:
    input:
        ate=delivered(rules.counterfactuals.output.ate),
        diagnostics=delivered(rules.bayesian_model.output.diagnostics),
        evaluation_diagnostics=evaluated(rules.bayesian_model.output.diagnostics),
        manifest=delivered(rules.surrogate_model.output.manifest),
        predictions=rules.batch_uplift.output.predictions,
    output:
        summary=results("summary.json"),
    log:
        logs("summary"),
    threads: 1
    resources:
        **rule_resources("summary"),
    conda:
        "../envs/python.yaml"
    script:
        "../scripts/summary.py"
