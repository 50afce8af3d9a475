# GRPO policy updates from the round's scored samples (TRL GRPOTrainer, completions replayed).


rule train_policy:
    """Train one lineage (proposer | coder | solver, or one shared policy) for a round; the
    checkpoint is a plain HF folder (LoRA merged), or a copy of the previous policy when no
    group has reward variance."""
    input:
        unpack(get_round_tables),
        collapse_check=get_collapse_check,
        policy=get_policy(),
        rewards=get_lineage_rewards,
        steps_from=get_steps_from,
    output:
        # The folder's config.json, not directory(): Snakemake would leave .snakemake_timestamp in it.
        config="results/round_{round}/checkpoint/{lineage}/config.json",
        summary="results/round_{round}/train/{lineage}.json",
    log:
        "logs/train_policy/round_{round}.{lineage}.log",
    benchmark:
        "logs/benchmarks/train_policy/round_{round}.{lineage}.tsv"
    conda:
        "../../envs/evovlm-gpu.yaml"
    resources:
        gpu=train_gpus(),
    params:
        # Logging and resume keys reach the job through config (workflow/scripts/train_policy.py).
        train=experiment_record.result_params(config, "train"),
        temperatures={role: config[METHOD][role]["temperature"] for role in ROLES},
        sample_options=sample_options(),
        policy=get_policy_folder(),
        work_dir=lambda w: f"results/round_{w.round}/train/{w.lineage}_trl",
    script:
        "../scripts/train_policy.py"
