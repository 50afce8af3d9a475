rule build_tiny_model:
    """The embedded default: a tiny randomly initialised Qwen2.5-VL with a tokenizer trained
    on the shipped corpus. Same spec, same bytes."""
    output:
        model=directory("resources/tiny-base"),
    log:
        "logs/build_tiny_model.log",
    benchmark:
        "logs/benchmarks/build_tiny_model.tsv"
    params:
        spec=config["tiny"],
    script:
        "../../scripts/build_tiny_model.py"
