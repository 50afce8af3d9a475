# The method-independent end of a round: scoring and the round summary. The method plug-in
# (src/evovlm/methods/, chosen by config["method"]) names the tables and does the work.


rule score_rewards:
    """Score every sample of the round: one Parquet per role, one row per sample with its
    group id, reward and each reward component in its own column."""
    input:
        unpack(get_round_tables),
    output:
        rewards=expand("results/round_{{round}}/rewards/{role}.parquet", role=ROLES),
    log:
        "logs/score_rewards/round_{round}.log",
    benchmark:
        "logs/benchmarks/score_rewards/round_{round}.tsv"
    conda:
        "../../envs/evovlm.yaml"
    params:
        rewards=config["rewards"][METHOD],
    script:
        "../scripts/score_rewards.py"


rule summarize_round:
    """metrics.json: counts at each funnel step, the per-round rates, error classes, reward
    mean and spread per role, agreement histograms, training summary and seconds per stage.
    """
    input:
        unpack(get_round_tables),
        unpack(get_summary_files),
        rewards=expand("results/round_{{round}}/rewards/{role}.parquet", role=ROLES),
        train=expand("results/round_{{round}}/train/{lineage}.json", lineage=LINEAGES),
    output:
        metrics="results/round_{round}/metrics.json",
    log:
        "logs/summarize_round/round_{round}.log",
    conda:
        "../../envs/evovlm.yaml"
    script:
        "../scripts/summarize_round.py"
