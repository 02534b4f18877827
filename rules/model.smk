rule bayesian_model:
    input:
        train=rules.prepare.output.train,
        spec=rules.prepare.output.spec,
        rlib=R_LIB,
    output:
        fit=results("model", "fit.rds"),
        diagnostics=results("model", "diagnostics.json"),
        parameters=results("model", "diagnostics_parameters.csv"),
    params:
        model=config["model"],
        diagnostics=config["diagnostics"],
    log:
        logs("bayesian_model"),
    threads: 2
    conda:
        "../envs/r.yaml"
    script:
        "../R/bayesian_model.R"


rule counterfactuals:
    input:
        fit=rules.bayesian_model.output.fit,
        train=rules.prepare.output.train,
        holdout=rules.prepare.output.holdout,
        spec=rules.prepare.output.spec,
        schema=BOUNDARY_SCHEMA,
        rlib=R_LIB,
    output:
        train_data=results("counterfactuals", "surrogate_train_data.csv"),
        labels=results("counterfactuals", "surrogate_labels.csv"),
        uplift=results("counterfactuals", "uplift_summary.csv"),
        ate=results("counterfactuals", "ate.json"),
    params:
        chunk_size=config["counterfactuals"]["chunk_size"],
    log:
        logs("counterfactuals"),
    threads: 1
    conda:
        "../envs/r.yaml"
    script:
        "../R/counterfactuals.R"
