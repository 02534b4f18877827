rule surrogate_model:
    input:
        train_data=rules.counterfactuals.output.train_data,
        labels=rules.counterfactuals.output.labels,
        uplift=rules.counterfactuals.output.uplift,
        spec=rules.prepare.output.spec,
    output:
        checkpoint=results("surrogate", "surrogate_nn.pth"),
        feature_columns=results("surrogate", "feature_columns.pkl"),
        scaler=results("surrogate", "spend_scaler.pkl"),
        manifest=results("surrogate", "manifest.json"),
    params:
        surrogate=config["surrogate"],
    log:
        logs("surrogate_model"),
    threads: 1
    conda:
        "../envs/python.yaml"
    script:
        "../scripts/surrogate_model.py"


rule batch_uplift:
    input:
        manifest=rules.surrogate_model.output.manifest,
        users=config["data"]["score"],
    output:
        predictions=results("uplift_predictions.csv"),
    params:
        chunk_size=config["scoring"]["chunk_size"],
        policy=config["policy"],
    log:
        logs("batch_uplift"),
    threads: 1
    conda:
        "../envs/python.yaml"
    script:
        "../scripts/batch_uplift.py"


rule summary:
    input:
        ate=rules.counterfactuals.output.ate,
        diagnostics=rules.bayesian_model.output.diagnostics,
        manifest=rules.surrogate_model.output.manifest,
        predictions=rules.batch_uplift.output.predictions,
    output:
        summary=results("summary.json"),
    log:
        logs("summary"),
    threads: 1
    conda:
        "../envs/python.yaml"
    script:
        "../scripts/summary.py"
