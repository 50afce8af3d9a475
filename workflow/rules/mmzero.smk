# MM-Zero generation stages. Each generation rule runs once per shard ({scatteritem} =
# "i-of-n", config key `shards`); gather_shards concatenates the shards in id order, so the
# gathered table does not depend on the shard count.


rule propose_concepts:
    """Proposer: n concepts (caption, easy and hard question with answers) per seed prompt."""
    input:
        policy=get_policy("proposer"),
    output:
        proposals="results/round_{round}/shards/mmzero/proposals/{scatteritem}.parquet",
    log:
        "logs/propose_concepts/round_{round}.{scatteritem}.log",
    benchmark:
        "logs/benchmarks/propose_concepts/round_{round}.{scatteritem}.tsv"
    conda:
        "../../envs/evovlm-gpu.yaml"
    resources:
        gpu=generation_gpus(),
    params:
        policy=get_policy_folder("proposer"),
        topics=config["mmzero"]["seed_topics"],
        prompts_per_topic=config["mmzero"]["prompts_per_topic"],
        sampling=config["mmzero"]["proposer"],
        seed=config["seed"],
        dtype=config["model"]["dtype"],
    script:
        "../scripts/propose_concepts.py"


rule write_code:
    """Coder: k programs (SVG or matplotlib) per valid proposal."""
    input:
        policy=get_policy("coder"),
        proposals="results/round_{round}/proposals.parquet",
    output:
        programs="results/round_{round}/shards/mmzero/programs/{scatteritem}.parquet",
    log:
        "logs/write_code/round_{round}.{scatteritem}.log",
    benchmark:
        "logs/benchmarks/write_code/round_{round}.{scatteritem}.tsv"
    conda:
        "../../envs/evovlm-gpu.yaml"
    resources:
        gpu=generation_gpus(),
    params:
        policy=get_policy_folder("coder"),
        k=config["mmzero"]["coder"]["k"],
        languages=config["mmzero"]["coder"]["languages"],
        sampling=config["mmzero"]["coder"],
        seed=config["seed"],
        dtype=config["model"]["dtype"],
    script:
        "../scripts/write_code.py"


rule sample_answers:
    """Solver: m answers per (rendered image, easy/hard question)."""
    input:
        policy=get_policy("solver"),
        proposals="results/round_{round}/proposals.parquet",
        programs="results/round_{round}/programs.parquet",
        renders="results/round_{round}/renders.parquet",
    output:
        answers="results/round_{round}/shards/mmzero/answers/{scatteritem}.parquet",
    log:
        "logs/sample_answers/round_{round}.{scatteritem}.log",
    benchmark:
        "logs/benchmarks/sample_answers/round_{round}.{scatteritem}.tsv"
    conda:
        "../../envs/evovlm-gpu.yaml"
    resources:
        gpu=generation_gpus(),
    params:
        policy=get_policy_folder("solver"),
        m=config["mmzero"]["solver"]["m"],
        sampling=config["mmzero"]["solver"],
        seed=config["seed"],
        dtype=config["model"]["dtype"],
    script:
        "../scripts/sample_answers.py"
