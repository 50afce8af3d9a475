# The toy method's one generation rule (tests/toy_plugin/toy_method.py).


rule toy_reply:
    """Speaker: n replies per prompt (a GRPO group per prompt)."""
    input:
        policy=get_policy("speaker"),
    output:
        replies="results/round_{round}/shards/toy/replies/{scatteritem}.parquet",
    log:
        "logs/toy_reply/round_{round}.{scatteritem}.log",
    benchmark:
        "logs/benchmarks/toy_reply/round_{round}.{scatteritem}.tsv"
    conda:
        "../../envs/evovlm-gpu.yaml"
    resources:
        gpu=1,
    params:
        policy=get_policy_folder("speaker"),
        sampling=config["toy"]["speaker"],
        prompts=config["toy"]["prompts"],
        seed=config["seed"],
        dtype=config["model"]["dtype"],
    script:
        "scripts/toy_reply.py"
