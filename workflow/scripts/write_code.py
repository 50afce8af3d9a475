import sys

# The job runs in the process Snakemake started only: vLLM starts its engine process with spawn
# (always on CPU), which imports this file again as the main module.
if __name__ == "__main__":
    from evovlm.jobs import start_engine_job

    job = start_engine_job(snakemake)  # the log, the GPUs, the policy's engine

    from evovlm.methods.mmzero import stages as mmzero
    from evovlm.schema import PROGRAMS, PROPOSALS, write_parquet
    from evovlm.tables import read_or_exit

    p = job.params
    frame = mmzero.write_code(
        job.engine,
        read_or_exit(snakemake.input.proposals, PROPOSALS),
        round_=job.round,
        k=p.k,
        languages=p.languages,
        sampling=p.sampling,
        seed=p.seed,
        shard=job.shard,
    )
    write_parquet(frame, snakemake.output.programs, PROGRAMS)
    print(f"{frame.height} programs", file=sys.stderr)
