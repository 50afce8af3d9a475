# The job runs in the process Snakemake started only: vLLM starts its engine process with spawn
# (always on CPU), which imports this file again as the main module.
if __name__ == "__main__":
    from evovlm.jobs import run_stage

    run_stage(
        snakemake,
        "evovlm.methods.mmzero.stages:sample_answers",
        tables={"proposals": "proposals", "programs": "programs", "renders": "renders"},
        output=("answers", "answers"),
        params=("m", "sampling", "seed"),
    )
