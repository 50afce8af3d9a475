# The job runs in the process Snakemake started only: vLLM starts its engine process with spawn
# (always on CPU), which imports this file again as the main module.
if __name__ == "__main__":
    from evovlm.jobs import run_stage

    run_stage(
        snakemake,
        "evovlm.methods.evolmm.stages:answer_questions",
        tables={"images": "images", "questions": "questions"},
        output=("answers", "evolmm_answers"),
        params=("sampling", "seed"),
    )
