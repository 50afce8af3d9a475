rule build_tiny_model:
    """The embedded default: a tiny randomly initialised Qwen2.5-VL with a tokenizer trained
    on the shipped corpus. Same spec, same bytes."""
    output:
        model=directory(TINY_BASE),
    log:
        "logs/build_tiny_model.log",
    benchmark:
        "logs/benchmarks/build_tiny_model.tsv"
    conda:
        "../../envs/evovlm.yaml"
    params:
        spec=config["tiny"],
    script:
        "../scripts/build_tiny_model.py"


rule warmup_tiny_model:
    """Teach the tiny model the output formats: a short supervised fine-tune (TRL SFT) on
    procedurally generated examples of every role. The embedded default's base policy.
    """
    input:
        base=TINY_BASE,
    output:
        model=directory(TINY_WARM),
    log:
        "logs/warmup_tiny_model.log",
    benchmark:
        "logs/benchmarks/warmup_tiny_model.tsv"
    conda:
        "../../envs/evovlm.yaml"
    threads: workflow.cores
    params:
        warmup=config["warmup"],
        method=config["method"],
    script:
        "../scripts/warmup_tiny_model.py"


rule build_demo_images:
    """EvoLMM's embedded image folder: procedural charts rendered by the sandbox (used when
    evolmm.image_dir is 'embedded')."""
    output:
        folder=directory("resources/demo-images"),
    log:
        "logs/build_demo_images.log",
    conda:
        "../../envs/evovlm.yaml"
    params:
        n_images=config["evolmm"]["demo_images"],
        seed=config["seed"],
    script:
        "../scripts/build_demo_images.py"


rule fetch_base_model:
    """A hub id as model.base: downloaded once (huggingface_hub.snapshot_download) into
    resources/hub/; every job then reads that local folder."""
    output:
        model=directory(f"{RESOURCES}/hub/{{name}}"),
    log:
        "logs/fetch_base_model/{name}.log",
    conda:
        "../../envs/evovlm.yaml"
    params:
        repo_id=config["model"]["base"],
        revision=config["model"]["revision"],
    script:
        "../scripts/fetch_base_model.py"
