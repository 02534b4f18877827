# Under shape auto, `shape_choice` first keeps one candidate shape. The model is fitted one MCMC chain per
# job (`bayesian_chain`, wildcard `chain`), then `bayesian_model`
# combines the chains and checks the diagnostics across them (R-hat needs every chain). Counterfactuals
# are computed `shards` groups of users per job (`counterfactuals_shard`) and gathered in order by
# `counterfactuals`. The default run goes through the same jobs (`shards: 1`), so content never depends
# on the sharding. Every rule here runs for the train split's fit (wildcard `delivered` empty: results/model,
# results/counterfactuals) and, with split.refit_all, again for the delivered fit on every row
# (`delivered/`: results/delivered/...); rules/common.smk says which fit each consumer reads.


# Shape auto (model.effect.shape) with combine pick: PSIS-LOO's choice between the linear and flexible
# candidates, on a stratified subsample of at most model.effect.shape_subsample train users; the chain jobs
# fit the kept one (or, for a history within the cap, compare both themselves).
rule shape_choice:
    input:
        train=rules.prepare.output.train,
        spec=rules.prepare.output.spec,
        score_check=rules.check_score_file_before_fit.output.marker,
        rlib=R_LIB,
    output:
        choice=results("model", "shape_choice.json"),
    params:
        model=MODEL_FIT,
    log:
        logs("shape_choice"),
    threads: CHAINS
    resources:
        **rule_resources("shape_choice"),
    conda:
        "../envs/r.yaml"
    script:
        "../R/shape_choice.R"


rule bayesian_chain:
    input:
        unpack(shape_pick),
        train=fit_rows,
        spec=rules.prepare.output.spec,
        # The score file is checked before the MCMC (once per spec: a new score file does not refit).
        score_check=rules.check_score_file_before_fit.output.marker,
        rlib=R_LIB,
    output:
        fit=results("{delivered}model", "chains", "chain_{chain}.rds"),
    params:
        model=MODEL_FIT,
    log:
        logs("{delivered}bayesian_chain_{chain}"),
    threads: 1
    resources:
        **rule_resources("bayesian_chain"),
    conda:
        "../envs/r.yaml"
    script:
        "../R/bayesian_chain.R"


rule bayesian_model:
    input:
        unpack(shape_pick),
        chains=chain_fits,
        train=fit_rows,
        spec=rules.prepare.output.spec,
        rlib=R_LIB,
    output:
        fit=results("{delivered}model", "fit.rds"),
        diagnostics=results("{delivered}model", "diagnostics.json"),
        parameters=results("{delivered}model", "diagnostics_parameters.csv"),
    params:
        model=MODEL_FIT,
        checks=config["model"]["checks"],
        fitted_on=fitted_on,  # recorded in diagnostics.json: "train" (the train split) or "all" (every row)
    log:
        logs("{delivered}bayesian_model"),
    # Failed checks refit every chain in this job, side by side (model.checks.extend_minutes).
    threads: CHAINS
    resources:
        **rule_resources("bayesian_model"),
    conda:
        "../envs/r.yaml"
    script:
        "../R/bayesian_model.R"


rule interval_calibration:
    input:
        unpack(shape_pick),
        fit=rules.bayesian_model.output.fit,
        train=fit_rows,
        spec=rules.prepare.output.spec,
        rlib=R_LIB,
    output:
        calibration=results("{delivered}model", "interval_calibration.json"),
    params:
        model=MODEL_FIT,
        intervals=config["model"]["intervals"],
    log:
        logs("{delivered}interval_calibration"),
    # Each replicate refits every chain; they run side by side.
    threads: CHAINS
    resources:
        **rule_resources("interval_calibration"),
    conda:
        "../envs/r.yaml"
    script:
        "../R/interval_calibration.R"


rule counterfactuals_shard:
    input:
        unpack(interval_calibration_input),
        fit=rules.bayesian_model.output.fit,
        train=rules.prepare.output.train,
        holdout=rules.prepare.output.holdout,
        spec=rules.prepare.output.spec,
        rlib=R_LIB,
    output:
        shard=results("{delivered}counterfactuals", "shards", "shard_{shard}.rds"),
    params:
        chunk_size=config["counterfactuals"]["chunk_size"],
        shards=SHARDS,
        # margin and cost give each user's exact posterior P(profit > 0) (uplift_summary's prob_profit)
        policy={k: config["policy"][k] for k in ("margin", "cost_per_contact", "arms")},
    log:
        logs("{delivered}counterfactuals_shard_{shard}"),
    threads: 1
    resources:
        **rule_resources("counterfactuals_shard"),
    conda:
        "../envs/r.yaml"
    script:
        "../R/counterfactuals.R"


rule counterfactuals:
    input:
        shards=counterfactual_shards,
        spec=rules.prepare.output.spec,
        schema=BOUNDARY_SCHEMA,
        rlib=R_LIB,
    output:
        train_data=results("{delivered}counterfactuals", "surrogate_train_data.csv"),
        labels=results("{delivered}counterfactuals", "surrogate_labels.csv"),
        uplift=results("{delivered}counterfactuals", "uplift_summary.csv"),
        ate=results("{delivered}counterfactuals", "ate.json"),
    log:
        logs("{delivered}counterfactuals"),
    threads: 1
    resources:
        **rule_resources("counterfactuals"),
    conda:
        "../envs/r.yaml"
    script:
        "../R/counterfactuals.R"
