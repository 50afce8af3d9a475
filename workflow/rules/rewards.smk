rule score_rewards:
    """Score every sample of the round: one Parquet per role, one row per sample with its
    group id, reward and each reward component in its own column."""
    input:
        proposals="results/round_{round}/proposals.parquet",
        programs="results/round_{round}/programs.parquet",
        renders="results/round_{round}/renders.parquet",
        answers="results/round_{round}/answers.parquet",
    output:
        proposer="results/round_{round}/rewards/proposer.parquet",
        coder="results/round_{round}/rewards/coder.parquet",
        solver="results/round_{round}/rewards/solver.parquet",
    log:
        "logs/score_rewards/round_{round}.log",
    benchmark:
        "logs/benchmarks/score_rewards/round_{round}.tsv"
    conda:
        "../../envs/evovlm.yaml"
    params:
        rewards=config["rewards"]["mmzero"],
    script:
        "../../scripts/score_rewards.py"
