# EvoLMM stages: images from a folder, Proposer questions, Solver answers.


rule sample_images:
    """A deterministic draw of images from evolmm.image_dir (corrupt files skipped, counted)."""
    input:
        folder=evolmm_image_dir(),
    output:
        images="results/round_{round}/images.parquet",
        stats="results/round_{round}/images.json",
    log:
        "logs/sample_images/round_{round}.log",
    conda:
        "../../envs/evovlm.yaml"
    params:
        n_images=config["evolmm"]["images_per_round"],
        seed=config["seed"],
    script:
        "../scripts/sample_images.py"


rule ask_questions:
    """Proposer: n questions per image (a GRPO group per image)."""
    input:
        policy=get_policy("proposer"),
        images="results/round_{round}/images.parquet",
    output:
        questions="results/round_{round}/shards/evolmm/questions/{scatteritem}.parquet",
    log:
        "logs/ask_questions/round_{round}.{scatteritem}.log",
    benchmark:
        "logs/benchmarks/ask_questions/round_{round}.{scatteritem}.tsv"
    conda:
        "../../envs/evovlm-gpu.yaml"
    resources:
        gpu=generation_gpus(),
    params:
        policy=get_policy_folder("proposer"),
        sampling=config["evolmm"]["proposer"],
        seed=config["seed"],
        dtype=config["model"]["dtype"],
    script:
        "../scripts/ask_questions.py"


rule answer_questions:
    """Solver: N answers per valid question (a GRPO group per question)."""
    input:
        policy=get_policy("solver"),
        images="results/round_{round}/images.parquet",
        questions="results/round_{round}/questions.parquet",
    output:
        answers="results/round_{round}/shards/evolmm/answers/{scatteritem}.parquet",
    log:
        "logs/answer_questions/round_{round}.{scatteritem}.log",
    benchmark:
        "logs/benchmarks/answer_questions/round_{round}.{scatteritem}.tsv"
    conda:
        "../../envs/evovlm-gpu.yaml"
    resources:
        gpu=generation_gpus(),
    params:
        policy=get_policy_folder("solver"),
        sampling=config["evolmm"]["solver"],
        seed=config["seed"],
        dtype=config["model"]["dtype"],
    script:
        "../scripts/answer_questions.py"
