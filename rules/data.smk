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
