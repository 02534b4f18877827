rule simulate_data:
    # Embedded demo data. The truth goes to its own folder, which no model rule reads.
    output:
        history=SIMULATED["history"],
        new_users=SIMULATED["new_users"],
        history_truth=SIMULATED["history_truth"],
        new_users_truth=SIMULATED["new_users_truth"],
    params:
        simulation=config["simulation"],
    log:
        logs("simulate_data"),
    threads: 1
    conda:
        "../envs/python.yaml"
    script:
        "../scripts/simulate_data.py"


rule prepare:
    input:
        train=config["data"]["train"],
    output:
        train=results("prepared", "train.csv"),
        holdout=results("prepared", "holdout.csv"),
        spec=results("prepared", "feature_spec.json"),
    params:
        columns=config["columns"],
        # not split.refit_all: which fit is delivered does not change the split
        split={k: config["split"][k] for k in ("holdout_fraction", "seed")},
    log:
        logs("prepare"),
    threads: 1
    conda:
        "../envs/python.yaml"
    script:
        "../scripts/prepare.py"



rule check_score_file:
    # The users to score against the training spec, whenever either changes; scoring waits for it. The
    # predictions, summary and scoring shards of an earlier run are removed first.
    input:
        users=config["data"]["score"],
        spec=rules.prepare.output.spec,
    output:
        marker=results("prepared", "score_check.json"),
    params:
        chunk_size=config["scoring"]["chunk_size"],
        stale_outputs=[*RESCORED_OUTPUTS, results("scoring")],
        results_dir=results_folder,
    log:
        logs("check_score_file"),
    threads: 1
    resources:
        **rule_resources("check_score_file"),
    conda:
        "../envs/python.yaml"
    script:
        "../scripts/check_score_file.py"


rule check_score_file_before_fit:
    # The same check once per feature spec, so that a bad score file fails in seconds, before the MCMC
    # (bayesian_chain waits for it). The score file is read from the config, not declared as input: a new
    # one must not refit (check_score_file checks it for scoring). ancient() cannot say that: Snakemake
    # 9 then skips the other reasons (params, code) of every job below a check that reruns.
    input:
        spec=rules.prepare.output.spec,
    output:
        marker=results("prepared", "score_check_before_fit.json"),
    params:
        # no chunk_size: a params change would refit every chain (the script reads the config's)
        stale_outputs=[],
        results_dir=results_folder,
    log:
        logs("check_score_file_before_fit"),
    threads: 1
    resources:
        **rule_resources("check_score_file"),
    conda:
        "../envs/python.yaml"
    script:
        "../scripts/check_score_file.py"
