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
        split=config["split"],
    log:
        logs("prepare"),
    threads: 1
    conda:
        "../envs/python.yaml"
    script:
        "../scripts/prepare.py"


rule check_score_file:
    # The users to score against the training spec, before any fit (bayesian_chain waits for the marker):
    # a bad score file fails in seconds. Earlier predictions, summary and scoring shards go first.
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
