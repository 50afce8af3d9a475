rule summarize_round:
    """metrics.json: counts at each funnel step, parse and render error classes, reward mean
    and spread per role, agreement histograms, training summary and seconds per stage.
    """
    input:
        proposals="results/round_{round}/proposals.parquet",
        programs="results/round_{round}/programs.parquet",
        renders="results/round_{round}/renders.parquet",
        answers="results/round_{round}/answers.parquet",
        rewards=expand("results/round_{{round}}/rewards/{role}.parquet", role=ROLES),
        train=expand("results/round_{{round}}/train/{lineage}.json", lineage=LINEAGES),
    output:
        metrics="results/round_{round}/metrics.json",
    log:
        "logs/summarize_round/round_{round}.log",
    conda:
        "../../envs/evovlm.yaml"
    script:
        "../../scripts/summarize_round.py"
