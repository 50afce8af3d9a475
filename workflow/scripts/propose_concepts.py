# The job runs in the process Snakemake started only: vLLM starts its engine process with spawn
# (always on CPU), which imports this file again as the main module.
if __name__ == "__main__":
    from evovlm.jobs import run_stage

    run_stage(
        snakemake,
        "evovlm.methods.mmzero.stages:propose",
        output=("proposals", "proposals"),
        params=("prompts_per_topic", "sampling", "seed"),
        through={"topics": "seed_topics"},  # the configured topics, or MM-Zero's defaults
    )
