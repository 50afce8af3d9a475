import sys

# The job runs in the process Snakemake started only: vLLM starts its engine process with spawn
# (always on CPU), which imports this file again as the main module.
if __name__ == "__main__":
    from evovlm.jobs import start_engine_job

    job = start_engine_job(snakemake)  # the log, the GPUs, the policy's engine

    from evovlm.methods.mmzero import stages as mmzero
    from evovlm.schema import PROPOSALS, write_parquet

    p = job.params
    frame = mmzero.propose(
        job.engine,
        round_=job.round,
        topics=mmzero.seed_topics(p.topics),
        prompts_per_topic=p.prompts_per_topic,
        sampling=p.sampling,
        seed=p.seed,
        shard=job.shard,
    )
    write_parquet(frame, snakemake.output.proposals, PROPOSALS)
    print(f"{frame.height} proposals, {frame['parse_ok'].sum()} parsed", file=sys.stderr)
