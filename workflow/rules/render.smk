rule render_images:
    """Render every program in the sandbox (cairosvg for SVG, warm matplotlib workers for
    Python); one row per program with a status from a fixed set."""
    input:
        programs="results/round_{round}/programs.parquet",
    output:
        renders="results/round_{round}/renders.parquet",
    log:
        "logs/render_images/round_{round}.log",
    benchmark:
        "logs/benchmarks/render_images/round_{round}.tsv"
    conda:
        "../../envs/evovlm.yaml"
    threads: workflow.cores
    params:
        render=config["render"],
    script:
        "../scripts/render_images.py"
